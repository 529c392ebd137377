"""Scale: 1 000, 10 000 and 100 000 records on the virtual clock, time and memory.

Each size runs in a fresh Python process, so one size's memory cannot hide in
another's peak. The records are generated into ``data/generated/`` (git
ignores it) and streamed from the file, never held as a list. The batch runs
the shipped config with the window pacer, so the cost read off is the
pipeline's own and not that of retrying 429s.

Printed per size: wall time, CPU time per 1 000 records (steadier than wall
time on a busy machine), the process's peak memory above what it used before
the batch, the size of the results alone (one ``Outcome`` per record), the
peak memory each record past the previous size added, the results' own size
per record, and the most asyncio tasks alive at once. Memory that grows by
about the results per record, and a task count that does not grow at all,
mean no record waits as a task or coroutine before its turn.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from labkit import Config, Timeline, WindowPacer
from labkit.batch import BatchRun, Outcome
from labkit.records import generate_records, iter_records, write_records
from labkit.runner import run_virtual

SIZES = (1_000, 10_000, 100_000)
GENERATED = Path(__file__).resolve().parent.parent / "data" / "generated"
TASK_SAMPLE_EVERY = 500  # counting live tasks walks all of them: do it now and then


def main() -> None:
    print(f"{'records':>8} {'wall':>8} {'cpu/1k':>7} {'peak memory':>12} "
          f"{'results':>9} {'added/rec':>10} {'results/rec':>12} {'live tasks':>11}")
    previous = None
    for size in SIZES:
        path = records_file(size)
        child = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_scale", str(path)],
            capture_output=True, text=True, check=True,
        )
        row = json.loads(child.stdout.splitlines()[-1])
        _print_row(row, previous)
        previous = row


def records_file(size: int) -> Path:
    """The generated records file of ``size`` records, written once."""
    path = GENERATED / f"records-{size}.jsonl"
    if not path.exists():
        GENERATED.mkdir(parents=True, exist_ok=True)
        write_records(generate_records(size, seed=size), path)
    return path


def measure(path: Path) -> dict[str, float]:
    """Run the batch over the records at ``path`` and return its costs."""
    live = _LiveTasks()
    batch = BatchRun(
        iter_records(path),
        Config(),
        timeline=Timeline(keep_events=False),
        pacer=WindowPacer(),
        on_outcome=live.on_outcome,
        sample_every=1.0,
    )
    before = _peak_rss_bytes()
    started, cpu_started = time.perf_counter(), time.process_time()
    report = run_virtual(batch.run)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started

    records = len(report.outcomes)
    return {
        "records": records,
        "succeeded": len(report.succeeded),
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_growth_bytes": _peak_rss_bytes() - before,
        "results_bytes": _results_bytes(report.outcomes),
        "live_tasks": live.most,
        "simulated_s": report.duration,
    }


class _LiveTasks:
    """The most asyncio tasks alive at once, counted every few settles."""

    def __init__(self) -> None:
        self.most = 0
        self.settled = 0

    def on_outcome(self, outcome: Outcome) -> None:
        self.settled += 1
        if self.settled % TASK_SAMPLE_EVERY == 1:
            self.most = max(self.most, len(asyncio.all_tasks()))


def _results_bytes(outcomes: tuple[Outcome, ...]) -> int:
    # The outcome objects, their strings and the tuple that holds them.
    strings = sum(sys.getsizeof(o.record_id) + sys.getsizeof(o.value) for o in outcomes)
    objects = sum(sys.getsizeof(o) for o in outcomes)
    return sys.getsizeof(outcomes) + objects + strings


def _peak_rss_bytes() -> int:
    # ru_maxrss is the process's peak resident size, in KiB on Linux (bytes on
    # macOS, where this overstates the peak 1 024 times). ``resource`` does not
    # exist on Windows, where this benchmark does not run.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _print_row(row: dict[str, float], previous: dict[str, float] | None) -> None:
    records = row["records"]
    growth, results = row["peak_growth_bytes"], row["results_bytes"]

    # What each record past the previous size added to the peak: the fixed
    # cost (the backlog's tasks, httpx, the loop) cancels out.
    added = "-"
    if previous is not None:
        extra = growth - previous["peak_growth_bytes"]
        added = f"{extra / (records - previous['records']):.0f} B"

    print(
        f"{records:>8,} {row['wall_s']:>7.1f}s {row['cpu_s'] / records * 1000:>6.2f}s "
        f"{growth / 2**20:>9.1f} MB {results / 2**20:>6.1f} MB {added:>10} "
        f"{results / records:>10.0f} B {row['live_tasks']:>11}"
    )


if __name__ == "__main__":
    print(json.dumps(measure(Path(sys.argv[1]))))
