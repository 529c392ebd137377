"""The check for 04_counters: ``watch`` samples the pool's counts, on the loop's clock.

Five jobs of 0.9 s go through a pool of 2 while the learner's watcher samples
every 0.25 s. At any moment the right counts are known: (2 active, 3 pending)
until 0.9 s, then (2, 1), then (1, 0) from 1.8 s, then (0, 0) from 2.7 s. The
watcher is cancelled at 3.1 s, as a batch cancels its watcher when it ends.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from itertools import pairwise
from typing import Any

from ..pool import Pool
from ..timeline import Timeline
from ._engine import Case, Mistake, Observed, check_signature
from ._virtual import Blocked, Runaway, observe_async

EVERY = 0.25
JOB_SECONDS = 0.9
CANCEL_AT = 3.1
CONCURRENCY, JOBS = 2, 5
# A watcher that appends this many samples without the clock moving never waits.
RUNAWAY_SAMPLES = 1_000


async def reference(pool: Pool, timeline: Timeline, every: float) -> None:
    """labkit's answer: sleep, sample, repeat, until cancelled."""
    while True:
        await asyncio.sleep(every)
        timeline.emit("pool", active=pool.active_count, pending=pool.pending_count)


def counts_at(moment: float) -> tuple[int, int]:
    """The (active, pending) counts the scenario has at ``moment`` seconds."""
    finished = int(moment / JOB_SECONDS + 1e-9) * CONCURRENCY
    left = max(JOBS - finished, 0)
    return min(left, CONCURRENCY), max(left - CONCURRENCY, 0)


class SampleLog:
    """Stands in for a Timeline: keeps each event with its loop time."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.start = self.loop.time()
        self.events: list[tuple[float, str, dict[str, Any]]] = []

    def emit(self, kind: str, **fields: Any) -> None:
        """Keep one event; refuse to go on if the clock never moves."""
        moment = self.loop.time() - self.start
        self.events.append((moment, kind, fields))
        recent = self.events[-RUNAWAY_SAMPLES:]
        if len(recent) == RUNAWAY_SAMPLES and recent[0][0] == moment:
            raise Runaway(f"{RUNAWAY_SAMPLES} samples at t={moment:g} s")

    def samples(self) -> list[tuple[float, Any, Any]]:
        """The pool samples as (seconds, active, pending)."""
        return [
            (round(t, 6), fields.get("active"), fields.get("pending"))
            for t, kind, fields in self.events
            if kind == "pool"
        ]


def observe(fn: Callable[..., Any]) -> Observed:
    """Run the scenario with ``fn`` as the watcher and note what it sampled."""
    return observe_async(lambda: _scenario(fn))


async def _scenario(fn: Callable[..., Any]) -> Observed:
    pool = Pool(CONCURRENCY)
    jobs = [asyncio.create_task(pool.run(asyncio.sleep, JOB_SECONDS))
            for _ in range(JOBS)]
    for _ in range(3):
        await asyncio.sleep(0)  # let every job take a slot or join the queue

    log = SampleLog()
    try:
        check_signature(fn, pool, log, EVERY)
    except TypeError:
        await asyncio.gather(*jobs)  # leave the pool empty, as a run would
        raise
    started = fn(pool, log, EVERY)
    if not inspect.iscoroutine(started):
        await asyncio.gather(*jobs)
        return Observed(error=TypeError("watch must be an `async def` function"))
    watcher = asyncio.create_task(started)
    await asyncio.wait([watcher], timeout=CANCEL_AT)
    ended_early = watcher.done()
    watcher.cancel()
    await asyncio.wait([watcher], timeout=1.0)
    await asyncio.gather(*jobs)
    return _conclusion(watcher, log, ended_early)


def _conclusion(
    watcher: asyncio.Task[Any],
    log: SampleLog,
    ended_early: bool,
) -> Observed:
    error = None
    if watcher.done() and not watcher.cancelled():
        error = watcher.exception()
    samples = log.samples()
    shown = ", ".join(f"t={t:g}: {a}/{p}" for t, a, p in samples[:6])
    more = f" ... ({len(samples)} samples)" if len(samples) > 6 else ""
    ending = "stopped by itself" if ended_early else "ran until cancelled"
    if not watcher.done():
        ending = "was still running after cancel()"
    seen = Observed(value=None, error=error, shown=f"the watcher {ending}")
    return seen.noting(
        f"samples (active/pending): {shown or 'none'}{more}",
        samples=samples,
        kinds={kind for _, kind, _ in log.events},
        ended_early=ended_early,
        still_running=not watcher.done(),
    )


def _right(seen: Observed) -> bool:
    samples = seen.facts.get("samples", [])
    expected_times = [round(EVERY * k, 6) for k in range(1, int(CANCEL_AT / EVERY) + 1)]
    times = [t for t, _, _ in samples if t > 0]
    return (
        seen.error is None
        and not seen.facts["ended_early"]
        and not seen.facts["still_running"]
        and times == expected_times
        and all((a, p) == counts_at(t) for t, a, p in samples)
    )


def cases() -> list[Case]:
    """The one scenario the check runs."""
    expected = (
        f"a 'pool' sample every {EVERY} s until cancelled: "
        + ", ".join(f"t={t:g}: {'/'.join(map(str, counts_at(t)))}"
                    for t in (0.25, 1.0, 2.0, 3.0))
        + " (active/pending)"
    )
    call = (
        f"watch(pool, timeline, every={EVERY}) while {JOBS} jobs of "
        f"{JOB_SECONDS} s run through a pool of {CONCURRENCY}; cancelled at "
        f"{CANCEL_AT} s"
    )
    return [Case(call, expected, observe, _right)]


def _samples(seen: Observed) -> list[tuple[float, Any, Any]]:
    return seen.facts.get("samples", [])


def _gaps(seen: Observed) -> set[float]:
    times = [t for t, _, _ in _samples(seen)]
    return {round(b - a, 6) for a, b in pairwise(times)}


def _swapped(seen: Observed) -> bool:
    pairs = [(p, a) == counts_at(t) for t, a, p in _samples(seen)]
    return bool(pairs) and all(pairs)


def _stuck_at_ceiling(seen: Observed) -> bool:
    return bool(_samples(seen)) and all(a == CONCURRENCY for _, a, _ in _samples(seen))


MISTAKES = [
    Mistake(
        "blocking-sleep",
        lambda fn, seen: seen.raised(Blocked),
        "`time.sleep` blocks the whole event loop: while it sleeps, no job runs "
        "and no other task gets a turn. Use `await asyncio.sleep(every)`, which "
        "lets everything else run while the watcher waits.",
    ),
    Mistake(
        "never-sleeps",
        lambda fn, seen: seen.raised(Runaway),
        f"Your watcher took {RUNAWAY_SAMPLES} samples without the clock moving. "
        "`await asyncio.sleep(every)` inside the loop lets time pass (and lets "
        "the jobs run) between samples.",
    ),
    Mistake(
        "keeps-running-after-cancel",
        lambda fn, seen: seen.facts["still_running"],
        "Your watcher kept going after it was cancelled. Let CancelledError "
        "through: don't catch it, or raise it again after cleaning up.",
    ),
    Mistake(
        "no-loop",
        lambda fn, seen: seen.facts["ended_early"] and len(_samples(seen)) <= 1,
        "Your watcher took one sample and stopped. Sample in a loop "
        "(`while True:`) that runs until the watcher is cancelled.",
    ),
    Mistake(
        "stops-when-idle",
        lambda fn, seen: seen.facts["ended_early"],
        "Your watcher stopped by itself when the pool emptied. Keep sampling "
        "until cancelled: a quiet pool can fill up again, and the batch cancels "
        "the watcher when it is done.",
    ),
    Mistake(
        "wrong-kind",
        lambda fn, seen: not _samples(seen) and bool(seen.facts["kinds"]),
        "Your events are not of kind 'pool'. Write "
        "`timeline.emit('pool', active=..., pending=...)`, which the plots read.",
    ),
    Mistake(
        "milliseconds",
        lambda fn, seen: not _samples(seen) and not seen.facts["kinds"],
        "No sample at all before the cancel at 3.1 s. `every` is in seconds: "
        "`await asyncio.sleep(every)`, not `every * 1000`.",
    ),
    Mistake(
        "wrong-spacing",
        lambda fn, seen: _gaps(seen) and _gaps(seen) != {EVERY},
        f"Your samples are not {EVERY} s apart. Sleep exactly `every` seconds "
        "between samples.",
    ),
    Mistake(
        "swapped",
        lambda fn, seen: _swapped(seen),
        "Your active and pending counts are swapped: active is "
        "`pool.active_count` (running now), pending is `pool.pending_count` "
        "(waiting for a slot).",
    ),
    Mistake(
        "ceiling-not-active",
        lambda fn, seen: _stuck_at_ceiling(seen),
        "Active stayed at 2 even after every job had finished: that is the pool's "
        "ceiling (`pool.concurrency`). `pool.active_count` is how many run now.",
    ),
]
