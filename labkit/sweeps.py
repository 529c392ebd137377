"""Sweeps: turn one knob through its values, run the batch for each, tabulate.

``sweep("max_concurrency", [1, 5, 9, 20])`` runs the whole pipeline once per
value and per seed on the virtual clock and returns a tidy pandas DataFrame,
one row per run. The knob may be any field of ``Config`` (``max_retries``,
``jitter``, ``honour_hint``, ...) or a knob of the world around it: the
mock's latency (``latency_ms``, ``latency_sigma``) or the pacer (``pacing``).
A run depends on nothing but its knobs and its seed, so a row repeats exactly.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .batch import BatchRun, Report
from .config import Config
from .mock_server import Faults, MockEndpoint
from .pacing import PACERS, make_pacer
from .records import Record, load_records
from .runner import run_virtual
from .timeline import Event, Timeline

if TYPE_CHECKING:
    import pandas

__all__ = ["Scenario", "sweep", "run_scenario", "floor_seconds", "COLUMNS"]

# What every row holds besides the knobs, in this order.
COLUMNS = (
    "seed",
    "duration_s",
    "requests",
    "rate_limited",
    "retries",
    "succeeded",
    "failed",
    "peak_pending",
    "wasted_per_record",
)

CONFIG_KNOBS = tuple(f.name for f in dataclasses.fields(Config))
WORLD_KNOBS = ("latency_ms", "latency_sigma", "pacing", "faults")


@dataclass(frozen=True)
class Scenario:
    """Everything a run depends on besides its records and its seed.

    ``config`` holds the client's knobs. The rest is the world it meets: the
    mock's median latency in milliseconds and the spread of its lognormal
    tail (``latency_sigma``, 0 for a fixed latency), the pacer in front of the
    pool (``"none"``, ``"bucket"`` or ``"window"``) and injected faults.

    >>> slow = Scenario().with_knobs(max_concurrency=20, latency_ms=300)
    >>> slow.config.max_concurrency, slow.latency_ms
    (20, 300)
    """

    config: Config = field(default_factory=Config)
    latency_ms: float = 0.0
    latency_sigma: float = 0.0
    pacing: str = "none"
    faults: Faults | None = None

    def __post_init__(self) -> None:
        if self.pacing not in PACERS:
            choices = ", ".join(PACERS)
            raise ValueError(f"pacing={self.pacing!r} is not one of {choices}")
        if not self.latency_ms >= 0 or not self.latency_sigma >= 0:
            raise ValueError("latency_ms and latency_sigma must be 0 or more")

    def with_knobs(self, **knobs: Any) -> Scenario:
        """A copy with some knobs changed, in ``config`` or around it."""
        knobs = {_knob_name(name): value for name, value in knobs.items()}
        world = {k: v for k, v in knobs.items() if k in WORLD_KNOBS}
        client = {k: v for k, v in knobs.items() if k in CONFIG_KNOBS}
        config = self.config.replace(**client)
        return dataclasses.replace(self, config=config, **world)

    def knob(self, name: str) -> Any:
        """The current value of one knob, by the name ``with_knobs`` takes."""
        name = _knob_name(name)
        return getattr(self if name in WORLD_KNOBS else self.config, name)


def run_scenario(
    scenario: Scenario,
    records: Sequence[Record],
    seed: int = 0,
) -> dict[str, Any]:
    """Run the batch once on the virtual clock and return its row of figures.

    The row holds the seed, the simulated duration in seconds, the requests
    sent, the 429s met, the retries waited, the records that succeeded and
    failed, the most records ever waiting for a pool slot, and the wasted
    requests per record (requests that brought back no value).
    """
    report, peak_pending = run_virtual(_run, scenario, records, seed)
    return _row(report, peak_pending, seed, len(records))


def sweep(
    knob: str,
    values: Iterable[Any],
    *,
    seeds: Iterable[int] = (0, 1, 2),
    records: Sequence[Record] | None = None,
    scenario: Scenario | None = None,
    **fixed: Any,
) -> pandas.DataFrame:
    """Run the batch for every value of ``knob`` and every seed: a row per run.

    ``fixed`` sets other knobs for the whole sweep (``latency_ms=300``); they
    get a column too, so sweeps made with different fixed knobs can be
    concatenated and still be told apart. The records default to the 100
    shipped ones. Every run is on the virtual clock: 30 runs over the 100
    records take a few seconds of wall time, and ``frame.attrs["wall_s"]``
    says how many.

    >>> frame = sweep("max_concurrency", [1, 9, 50], seeds=[0])  # doctest: +SKIP
    >>> frame[["max_concurrency", "duration_s", "rate_limited"]]  # doctest: +SKIP
    """
    knob = _knob_name(knob)
    records = list(records) if records is not None else load_records()
    base = (scenario or Scenario()).with_knobs(**fixed)
    seeds = list(seeds)

    import pandas  # here, so that importing labkit stays quick for the CLI

    started = time.perf_counter()
    rows = []
    for value in values:
        run = base.with_knobs(**{knob: value})
        for seed in seeds:
            rows.append(_labels(run, knob, fixed) | run_scenario(run, records, seed))

    frame = pandas.DataFrame(rows)
    frame.attrs["wall_s"] = time.perf_counter() - started
    frame.attrs["floor_s"] = floor_seconds(len(records), base.config)
    return frame


def floor_seconds(records: int, config: Config) -> float:
    """The least time the limit allows: the last window opens and is served.

    With fixed windows whose grid starts at the first request, ``records``
    requests need ``ceil(records / limit)`` windows, and the last one opens
    ``ceil(records / limit) - 1`` windows after the first: 9.0 s for the 100.
    """
    return (math.ceil(records / config.rate_limit) - 1) * config.rate_window


async def _run(
    scenario: Scenario,
    records: Sequence[Record],
    seed: int,
) -> tuple[Report, int]:
    config = scenario.config
    endpoint = MockEndpoint.for_config(
        config,
        latency=scenario.latency_ms / 1000,
        latency_sigma=scenario.latency_sigma,
        faults=scenario.faults,
        seed=seed,
    )
    peak = _PeakPending()
    batch = BatchRun(
        records,
        config,
        endpoint=endpoint,
        seed=seed,
        timeline=Timeline(keep_events=False),
        pacer=make_pacer(scenario.pacing, limit=config.rate_limit,
                         window=config.rate_window),
        # Each pool sample wakes the loop; one per second is a third cheaper
        # than the default, and the peak is read at every event anyway.
        sample_every=1.0,
    )
    peak.watch(batch)
    return await batch.run(), peak.most


class _PeakPending:
    """The most records waiting for a pool slot, read at every event."""

    def __init__(self) -> None:
        self.most = 0
        self.batch: BatchRun | None = None

    def watch(self, batch: BatchRun) -> None:
        self.batch = batch
        batch.timeline.subscribe(self.on_event)

    def on_event(self, event: Event) -> None:
        # Every event, not just the pool samples: the queue is longest just
        # before the first answer, long before the first sample is due.
        if self.batch is not None:
            self.most = max(self.most, self.batch.pending)


def _labels(run: Scenario, knob: str, fixed: dict[str, Any]) -> dict[str, Any]:
    names = [knob] + [_knob_name(name) for name in fixed]
    return {name: run.knob(name) for name in dict.fromkeys(names)}


def _row(
    report: Report,
    peak_pending: int,
    seed: int,
    count: int,
) -> dict[str, Any]:
    succeeded = len(report.succeeded)
    return {
        "seed": seed,
        "duration_s": round(report.duration, 6),
        "requests": report.requests,
        "rate_limited": report.rate_limited,
        "retries": report.retries,
        "succeeded": succeeded,
        "failed": len(report.failed),
        "peak_pending": peak_pending,
        "wasted_per_record": (report.requests - succeeded) / count,
    }


def _knob_name(name: str) -> str:
    lowered = name.lower()
    if lowered not in CONFIG_KNOBS + WORLD_KNOBS:
        known = ", ".join(CONFIG_KNOBS + WORLD_KNOBS)
        raise ValueError(f"unknown knob {name!r}; sweepable knobs: {known}")
    return lowered
