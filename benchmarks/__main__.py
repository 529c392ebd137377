"""Run every ``benchmarks/bench_*.py`` module's ``main()``, or the ones named.

    python -m benchmarks            # all of them
    python -m benchmarks pipeline   # only bench_pipeline
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import benchmarks


def main(names: list[str]) -> None:
    found = sorted(
        info.name.removeprefix("bench_")
        for info in pkgutil.iter_modules(benchmarks.__path__)
        if info.name.startswith("bench_")
    )
    unknown = sorted(set(names) - set(found))
    if unknown:
        sys.exit(f"unknown benchmark(s) {', '.join(unknown)}; have {', '.join(found)}")

    for name in names or found:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        importlib.import_module(f"benchmarks.bench_{name}").main()
        print(f"   ({time.perf_counter() - started:.1f}s of wall time)\n", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
