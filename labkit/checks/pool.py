"""The check for 03_pool: ``run_all`` gates every record through one pool.

The job handed to the learner's function sleeps on the loop's clock and counts
how many jobs run at once, so the check sees the ceiling, the order of the
results and how long the whole took.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..pool import Pool
from ._engine import Case, Mistake, Observed, check_signature, plural
from ._virtual import observe_async, timed


async def reference(
    records: Sequence[Any],
    job: Callable[..., Any],
    concurrency: int,
) -> list[Any]:
    """labkit's answer: one pool, every job started, results in input order."""
    pool = Pool(concurrency)
    return list(await asyncio.gather(*(pool.run(job, record) for record in records)))


@dataclass(frozen=True)
class Scenario:
    """Records (each a name), how long each one's job takes, and the ceiling."""

    durations: dict[str, float]
    concurrency: int

    @property
    def records(self) -> list[str]:
        return list(self.durations)

    def describe(self) -> str:
        jobs = ", ".join(f"{name}: {s:g} s" for name, s in self.durations.items())
        return (
            f"run_all({self.records!r}, job, concurrency={self.concurrency}) "
            f"where each job sleeps ({jobs}) and returns its record in capitals"
        )


class CountingJob:
    """A job that sleeps its record's duration and counts jobs running at once."""

    def __init__(self, durations: dict[str, float]) -> None:
        self.durations = durations
        self.running = 0
        self.most = 0
        self.started: list[str] = []

    async def __call__(self, record: str) -> str:
        self.started.append(record)
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(self.durations[record])
        finally:
            self.running -= 1
        return record.upper()


def observe(fn: Callable[..., Any], scenario: Scenario) -> Observed:
    """Run ``fn`` on a scenario; note the results, the peak and the duration."""

    async def run() -> Observed:
        job = CountingJob(scenario.durations)
        check_signature(fn, scenario.records, job, scenario.concurrency)
        seen = await timed(fn(scenario.records, job, scenario.concurrency))
        return seen.noting(f"at most {plural(job.most, 'job')} at once", most=job.most,
                           started=list(job.started), scenario=scenario)

    return observe_async(run)


def expect(scenario: Scenario) -> Observed:
    """What labkit's answer does on ``scenario``."""
    return observe(reference, scenario)


def _as_list(value: Any) -> list | None:
    return list(value) if isinstance(value, list | tuple) else None


def _case(scenario: Scenario) -> Case:
    want = expect(scenario)
    expected = (
        f"returns {want.value!r}, at most {want.facts['most']} at once, "
        f"in {want.facts['took']:g} s"
    )

    def right(seen: Observed) -> bool:
        return (
            seen.error is None
            and _as_list(seen.value) == want.value
            and seen.facts["most"] == want.facts["most"]
            and abs(seen.facts["took"] - want.facts["took"]) < 1e-6
        )

    return Case(scenario.describe(), expected, lambda fn: observe(fn, scenario), right)


SCENARIOS = [
    Scenario({"a": 1.0}, 1),
    Scenario({"a": 1.0, "b": 1.0, "c": 1.0}, 1),
    Scenario({"a": 0.3, "b": 0.1, "c": 0.2, "d": 0.1, "e": 0.3, "f": 0.2}, 3),
    Scenario({"a": 1.0, "b": 0.5}, 5),
]


@cache
def cases() -> list[Case]:
    """The cases, built on first use (each runs labkit's answer once)."""
    return [_case(scenario) for scenario in SCENARIOS]


def _scenario(seen: Observed) -> Scenario:
    return seen.facts["scenario"]


def _peak_allowed(seen: Observed) -> int:
    """How many jobs the right answer runs at once on this scenario."""
    return min(_scenario(seen).concurrency, len(_scenario(seen).records))


def _finish_order(seen: Observed) -> bool:
    got = _as_list(seen.value)
    want = [record.upper() for record in _scenario(seen).records]
    return got is not None and sorted(got) == sorted(want) and got != want


MISTAKES = [
    Mistake(
        "job-called-too-early",
        lambda fn, seen: "coroutine" in str(seen.error),
        "Hand the pool the function and its argument, `pool.run(job, record)`; "
        "`pool.run(job(record))` starts the job outside the pool.",
    ),
    Mistake(
        "nothing-returned",
        lambda fn, seen: seen.error is None and seen.value is None,
        "Your function returned None: return the list of results.",
    ),
    Mistake(
        "not-a-list",
        lambda fn, seen: seen.error is None and seen.value is not None
        and _as_list(seen.value) is None,
        lambda fn, seen: (
            f"Your function returned a {type(seen.value).__name__}, not a list. "
            "Return the results as a list (`asyncio.gather` gives one; wrap a "
            "generator in `list(...)`): a generator can be read only once."
        ),
    ),
    Mistake(
        "records-missing",
        lambda fn, seen: len(seen.facts["started"]) < len(_scenario(seen).records),
        "Some records never ran: every record must go through the pool, not only "
        "the first `concurrency` of them; the pool makes the rest wait.",
    ),
    Mistake(
        "over-the-ceiling",
        lambda fn, seen: seen.facts["most"] > _scenario(seen).concurrency,
        "More jobs ran at once than the ceiling allows. Send every job through "
        "one shared `Pool(concurrency)`: a pool made per record, or no pool at "
        "all, caps nothing.",
    ),
    Mistake(
        "one-at-a-time",
        lambda fn, seen: seen.facts["most"] == 1 < _peak_allowed(seen),
        "Only one job ran at a time, so the batch took as long as all jobs added "
        "up. Start every job at once (`asyncio.gather`) and let the pool hold "
        "back all but `concurrency` of them.",
    ),
    Mistake(
        "under-the-ceiling",
        lambda fn, seen: seen.facts["most"] < _peak_allowed(seen),
        "Fewer jobs ran at once than the ceiling allows: make the pool "
        "`Pool(concurrency)`, exactly.",
    ),
    Mistake(
        "finish-order",
        lambda fn, seen: _finish_order(seen),
        "The results came back in the order the jobs finished. Return them in "
        "the order of the records (`asyncio.gather` keeps that order).",
    ),
]
