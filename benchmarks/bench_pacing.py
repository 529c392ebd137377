"""Pacing in real time: the 100 records against the 9.0 s floor, and their 429s.

labkit's target is the window pacer finishing within 2 % of the floor with
no 429 at all; the leaky bucket (aiolimiter) runs once beside it, for contrast.
Each run is a fresh real-time event loop, the way ``make run --pace`` runs.
"""

from __future__ import annotations

import asyncio

from labkit import (
    Config,
    Record,
    Report,
    floor_seconds,
    load_records,
    make_pacer,
    run_batch,
)

WINDOW_RUNS = 3
TARGET = 1.02  # within 2 % of the floor


def main() -> None:
    records = load_records()
    config = Config()
    floor = floor_seconds(len(records), config)
    print(f"100 records, pool of {config.max_concurrency}, floor {floor:.1f}s; "
          f"target: window pacer <= {TARGET:.2f} x floor with 0 429s")

    worst = 0.0
    rate_limited = 0
    for run in range(WINDOW_RUNS):
        report = _run(records, config, "window", seed=run)
        worst = max(worst, report.duration / floor)
        rate_limited += report.rate_limited
        _print(f"window pacer, run {run + 1}", report, floor)

    _print("leaky bucket (aiolimiter)", _run(records, config, "bucket"), floor)
    met = worst <= TARGET and rate_limited == 0
    print(f"window pacer: worst {worst:.3f} x floor, {rate_limited} 429s in "
          f"{WINDOW_RUNS} runs: {'target met' if met else 'TARGET MISSED'}")


def _run(records: list[Record], config: Config, pacing: str, seed: int = 0) -> Report:
    pacer = make_pacer(pacing, limit=config.rate_limit, window=config.rate_window)
    return asyncio.run(run_batch(records, config, seed=seed, pacer=pacer))


def _print(label: str, report: Report, floor: float) -> None:
    print(
        f"  {label:<27} {report.duration:6.3f}s = {report.duration / floor:.3f} "
        f"x floor, {report.rate_limited} 429s, succeeded {len(report.succeeded)}"
    )
