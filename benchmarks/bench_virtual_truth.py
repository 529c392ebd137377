"""Does the virtual clock tell the truth? Simulated durations against real runs.

For a few configs, the same batch (same seed, same endpoint) runs once on the
virtual clock and a few times in real time. Real runs differ from each other:
timers fire a little late and requests cost CPU time, which shifts who gets
which jitter draw, and now and then a retry lands a hair before a window's
reset instead of after it. The virtual run has none of that noise.

The real runs' noise is their spread (slowest minus fastest), and at least
``FLOOR_NOISE`` of their median for the lateness every real run shares. The
virtual duration agrees when it is within that noise of the real median.
"""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import dataclass, field

from labkit import Config, MockEndpoint, load_records, run_batch, simulate

FLOOR_NOISE = 0.01  # 1 % of the duration: 90 ms of a 9 s batch


@dataclass(frozen=True)
class Case:
    """One config, the endpoint it meets, and how many real runs to make."""

    label: str
    config: Config = field(default_factory=Config)
    latency: float = 0.0
    latency_sigma: float = 0.0
    real_runs: int = 3

    def endpoint(self) -> MockEndpoint:
        """A fresh endpoint: each run must start with an empty window grid."""
        return MockEndpoint(latency=self.latency, latency_sigma=self.latency_sigma)


CASES = (
    Case("default (hint honoured)"),
    Case("the lab's backoff alone", Config(honour_hint=False)),
    Case("answers take ~200 ms", latency=0.2, latency_sigma=0.5, real_runs=2),
)


def main() -> None:
    records = load_records()
    print(f"agreement: |virtual - real median| <= the real runs' spread, "
          f"and at least {FLOOR_NOISE:.0%} of the median")
    for case in CASES:
        virtual = simulate(records, case.config, endpoint=case.endpoint()).duration
        real = [
            asyncio.run(run_batch(records, case.config, endpoint=case.endpoint()))
            .duration
            for _ in range(case.real_runs)
        ]
        _print(case.label, virtual, real)


def _print(label: str, virtual: float, real: list[float]) -> None:
    median = statistics.median(real)
    noise = max(max(real) - min(real), FLOOR_NOISE * median)
    difference = virtual - median
    verdict = "agrees" if abs(difference) <= noise else "DISAGREES"
    runs = ", ".join(f"{duration:.3f}" for duration in real)
    print(
        f"  {label:<24} virtual {virtual:6.3f}s | real {runs} s | "
        f"difference {1000 * difference:+5.0f} ms, noise {1000 * noise:4.0f} ms: "
        f"{verdict}"
    )
