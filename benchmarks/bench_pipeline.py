"""The default pipeline on the 100 records, in real time and on the virtual clock.

Each real run is printed as its duration divided by the floor that the limit
allows (100 records at 10 per 1 s fixed window: 9.0 s), with its 429s per
record. For reference, the original JavaScript lab measured 1.13-1.21 x the
floor with about one 429 per record on this kind of machine.
"""

from __future__ import annotations

import asyncio
import math
import time

from labkit import Config, load_records, run_batch, simulate

REAL_RUNS = 3


def floor_seconds(records: int, config: Config) -> float:
    """The least time fixed windows allow: the last window opens, it is served."""
    return (math.ceil(records / config.rate_limit) - 1) * config.rate_window


def main() -> None:
    records = load_records()
    for label, config in [
        ("labkit default (hint honoured)", Config()),
        ("the lab's backoff alone (HONOUR_HINT=false)", Config(honour_hint=False)),
    ]:
        floor = floor_seconds(len(records), config)
        print(f"{label}: floor {floor:.1f}s")
        for seed in range(REAL_RUNS):
            report = asyncio.run(run_batch(records, config, seed=seed))
            _print(f"  real    seed {seed}", report, floor, len(records))

        started = time.perf_counter()
        report = simulate(records, config)
        wall = time.perf_counter() - started
        _print("  virtual seed 0", report, floor, len(records))
        print(f"          simulated {report.duration:.2f}s in {wall:.3f}s of wall time")


def _print(label: str, report, floor: float, count: int) -> None:
    print(
        f"{label}: {report.duration:6.3f}s = {report.duration / floor:.3f} x floor, "
        f"{report.rate_limited / count:.2f} 429s/record, "
        f"succeeded {len(report.succeeded)}, failed {len(report.failed)}"
    )
