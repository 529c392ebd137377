"""The checks for 07_settle: ``settle_all`` keeps every outcome, ``split`` loses none.

``settle_all`` gets fresh jobs per case: each sleeps on the loop's clock, then
returns a value or raises. Its outcomes are compared with labkit's ``settle``
on the same jobs, and its duration tells whether the jobs ran together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from ..batch import Outcome, partition, settle
from ..client import RateLimitError
from ..pool import QueueCleared
from ..retry import RetriesExhausted
from ._engine import Case, Mistake, Observed, call_safely, check_signature
from ._virtual import close_unstarted, observe_async, timed

reference_settle = settle
reference_split = partition


@dataclass(frozen=True)
class Job:
    """One job: its record id, how long it takes, and how it ends."""

    record_id: str
    seconds: float
    ends: str  # a value, or "RetriesExhausted", "ValueError", "QueueCleared"

    async def run(self) -> str:
        await asyncio.sleep(self.seconds)
        if self.ends == "RetriesExhausted":
            last = RateLimitError("429 rate_limit_exceeded")
            raise RetriesExhausted(4, 3, last) from last
        if self.ends == "ValueError":
            raise ValueError("the record has no note")
        if self.ends == "QueueCleared":
            raise QueueCleared("cleared from the pool's queue before it started")
        return self.ends


def _describe(jobs: Sequence[Job]) -> str:
    parts = [f"{j.record_id!r}: {j.ends} after {j.seconds:g} s" for j in jobs]
    return "settle_all({" + ", ".join(parts) + "})"


def observe_settle(fn: Callable[..., Any], jobs: Sequence[Job]) -> Observed:
    """Run ``fn`` on fresh jobs; note the outcomes' gist and the duration."""

    async def scenario() -> Observed:
        coroutines = {job.record_id: job.run() for job in jobs}
        try:
            check_signature(fn, dict(coroutines))
            seen = await timed(fn(dict(coroutines)))
        finally:
            close_unstarted(coroutines.values())
        # Noted before the gist reads it: a generator would be used up by then.
        kind = type(seen.value).__name__
        is_list = isinstance(seen.value, list)
        gist = _gist(seen.value)
        shown = f"returned {_gist_text(gist)}" if gist is not None else None
        if shown is not None and not is_list:
            shown = f"returned a {kind} of {_gist_text(gist)}"
        return seen.noting(gist=gist, shown=shown, is_list=is_list, kind=kind)

    return observe_async(scenario)


def _gist(outcomes: Any) -> list[tuple[Any, ...]] | None:
    """What matters in each outcome: id, status, value and error type."""
    if outcomes is None or isinstance(outcomes, str | bytes | dict):
        return None  # not a sequence of outcomes, whatever iterating it gives
    try:
        return [(o.record_id, o.status, o.value, o.error_type) for o in outcomes]
    except Exception:  # noqa: BLE001 - whatever it is, it is not outcomes
        return None


def _gist_text(gist: list[tuple[Any, ...]]) -> str:
    parts = []
    for record_id, status, value, error_type in gist:
        ending = repr(value) if status == "succeeded" else f"({error_type})"
        parts.append(f"{record_id} {status} {ending}")
    return "[" + ", ".join(parts) + "]"


SETTLE_JOBS = [
    (Job("CR-1", 1.0, "alpha"),),
    (Job("CR-1", 1.0, "alpha"), Job("CR-2", 0.5, "RetriesExhausted"),
     Job("CR-3", 1.0, "gamma")),
    (Job("CR-1", 1.0, "alpha"), Job("CR-2", 0.2, "gamma"),
     Job("CR-3", 0.5, "ValueError"), Job("CR-4", 0.1, "QueueCleared")),
]
MIXED = SETTLE_JOBS[1]


def _settle_case(jobs: Sequence[Job]) -> Case:
    want = observe_settle(reference_settle, jobs)
    expected = f"{_gist_text(want.facts['gist'])}, in {want.facts['took']:g} s"

    def right(seen: Observed) -> bool:
        return (
            seen.error is None
            and seen.facts["is_list"]  # the report reads outcomes more than once
            and seen.facts["gist"] == want.facts["gist"]
            and abs(seen.facts["took"] - want.facts["took"]) < 1e-6
        )

    return Case(_describe(jobs), expected, lambda fn: observe_settle(fn, jobs), right)


@cache
def settle_cases() -> list[Case]:
    """The cases for ``settle_all``, built on first use."""
    return [_settle_case(jobs) for jobs in SETTLE_JOBS]


def _mixed(fn: Callable[..., Any]) -> Observed:
    return observe_settle(fn, MIXED)


def _gists(fn: Callable[..., Any]) -> tuple[Any, Any]:
    want = observe_settle(reference_settle, MIXED)
    return _mixed(fn).facts["gist"], want.facts["gist"]


def _lost_failures(fn: Callable[..., Any]) -> bool:
    got, want = _gists(fn)
    return got is not None and len(got) < len(want)


def _order_differs(fn: Callable[..., Any]) -> bool:
    got, want = _gists(fn)
    return got is not None and sorted(got) == sorted(want) and got != want


def _ids_mixed_up(fn: Callable[..., Any]) -> bool:
    got, want = _gists(fn)
    if got is None or len(got) != len(want):
        return False
    same_ids = [g[0] for g in got] == [w[0] for w in want]
    results, wanted = [g[1:] for g in got], [w[1:] for w in want]
    return same_ids and results != wanted and sorted(map(repr, results)) == sorted(
        map(repr, wanted)
    )


SETTLE_MISTAKES = [
    Mistake(
        "fail-fast-taskgroup",
        lambda fn, seen: seen.raised(BaseExceptionGroup),
        "A TaskGroup cancels every other job when one fails (like "
        "`Promise.all`). Settling needs them all to finish: "
        "`asyncio.gather(*jobs.values(), return_exceptions=True)`.",
    ),
    Mistake(
        "fail-fast-gather",
        lambda fn, seen: seen.error is not None and seen.raised(
            RetriesExhausted | ValueError | QueueCleared
        ),
        "One job's error escaped settle_all, and the other records were lost "
        "with it. `asyncio.gather(*jobs.values(), return_exceptions=True)` "
        "hands each error back as that job's result (a plain `gather` fails "
        "fast).",
    ),
    Mistake(
        "not-outcomes",
        lambda fn, seen: seen.error is None and seen.facts["gist"] is None,
        "Return a list of Outcome, one per job: "
        "`Outcome.from_result(record_id, result, attempts=0)`.",
    ),
    Mistake(
        "not-a-list",
        lambda fn, seen: seen.error is None and seen.facts["gist"] is not None
        and not seen.facts["is_list"],
        lambda fn, seen: (
            f"Your function returned a {seen.facts['kind']}, not a list. Return "
            "a list of Outcome (a list comprehension, `[... for ...]`): a "
            "generator can be read only once, and the report reads the "
            "outcomes more than once."
        ),
    ),
    Mistake(
        "failures-dropped",
        lambda fn, seen: _lost_failures(fn),
        "Records went missing: only the successes came back. Every job gets an "
        "Outcome, failures included, so the report can say why each one failed.",
    ),
    Mistake(
        "finish-order",
        lambda fn, seen: _order_differs(fn),
        "The outcomes came back in the order the jobs finished. Keep the jobs' "
        "order: `gather` returns results in the order it was given them.",
    ),
    Mistake(
        "ids-mixed-up",
        lambda fn, seen: _ids_mixed_up(fn),
        "Some records got another record's result. Pair each result with its own "
        "id: `zip(jobs, results)` (a dict keeps its insertion order).",
    ),
    Mistake(
        "one-after-another",
        lambda fn, seen: _mixed(fn).facts["took"] > 1.0 + 1e-6,
        "The jobs ran one after another, so the batch took as long as all of "
        "them added up. Start them together with `asyncio.gather`.",
    ),
    Mistake(
        "exception-as-value",
        lambda fn, seen: any(isinstance(g[2], BaseException)
                             for g in (_mixed(fn).facts["gist"] or [])),
        "A failed job was recorded as succeeded, with the error as its value. "
        "`Outcome.from_result` tells a value from an exception for you.",
    ),
]


def _outcome(record_id: str, status: str, value: str | None = None) -> Outcome:
    reason = None if status == "succeeded" else f"{status}: something went wrong"
    return Outcome(record_id, status, value=value, reason=reason)


A = _outcome("CR-1", "succeeded", "alpha")
B = _outcome("CR-2", "failed")
C = _outcome("CR-3", "not_attempted")
D = _outcome("CR-4", "succeeded", "")
SPLIT_INPUTS: list[tuple[Outcome, ...]] = [(), (A,), (A, B), (B, A, C, D)]


def _names(outcomes: Any) -> str:
    return "[" + ", ".join(getattr(o, "record_id", repr(o)) for o in outcomes) + "]"


def _split_case(outcomes: tuple[Outcome, ...]) -> Case:
    succeeded, others = partition(outcomes)
    described = ", ".join(f"{o.record_id} {o.status}"
                          + (f" {o.value!r}" if o.ok else "") for o in outcomes)

    def right(seen: Observed) -> bool:
        try:
            got_ok, got_others = seen.value
        except (TypeError, ValueError):
            return False
        # Lists, not generators: the notebook reads each part more than once.
        return (isinstance(got_ok, list) and isinstance(got_others, list)
                and got_ok == succeeded and got_others == others)

    return Case(
        call=f"split([{described}])",
        expected=f"({_names(succeeded)}, {_names(others)})",
        probe=lambda fn: _split_shown(call_safely(fn, list(outcomes))),
        right=right,
    )


def _split_shown(seen: Observed) -> Observed:
    try:
        first, second = seen.value
    except Exception:  # noqa: BLE001 - not a pair: shown as it is
        return seen
    kinds = (type(first).__name__, type(second).__name__)
    if kinds != ("list", "list"):
        return seen.noting(shown=f"returned a pair of {kinds[0]} and {kinds[1]}",
                           kinds=kinds)
    try:
        return seen.noting(shown=f"returned ({_names(first)}, {_names(second)})")
    except Exception:  # noqa: BLE001 - parts that cannot be listed: shown as is
        return seen


def split_cases() -> list[Case]:
    """The cases for ``split``, smallest input first."""
    return [_split_case(outcomes) for outcomes in SPLIT_INPUTS]


def _split_of(fn: Callable[..., Any], outcomes: Sequence[Outcome]) -> tuple[list, list]:
    seen = call_safely(fn, list(outcomes))
    if seen.error is not None:
        raise seen.error
    got_ok, got_others = seen.value
    return list(got_ok), list(got_others)


FULL = SPLIT_INPUTS[-1]

SPLIT_MISTAKES = [
    Mistake(
        "nothing-returned",
        lambda fn, seen: seen.error is None and seen.value is None,
        "Your function returned None: return a pair of lists, "
        "(succeeded, everything else).",
    ),
    Mistake(
        "not-lists",
        lambda fn, seen: "kinds" in seen.facts,
        lambda fn, seen: (
            f"You returned a {seen.facts['kinds'][0]} and a "
            f"{seen.facts['kinds'][1]}: return two lists, (succeeded, everything "
            "else). A generator can be read only once."
        ),
    ),
    Mistake(
        "swapped",
        lambda fn, seen: _split_of(fn, [A, B]) == ([B], [A]),
        "The two lists are swapped: succeeded first, then the rest.",
    ),
    Mistake(
        "duplicated",
        lambda fn, seen: sum(map(len, _split_of(fn, FULL))) > len(FULL),
        "Some outcome landed in both lists. Each goes into exactly one.",
    ),
    Mistake(
        "not-attempted-lost",
        lambda fn, seen: C not in _split_of(fn, FULL)[1],
        "CR-3 was never attempted (its status is 'not_attempted') and it went "
        "missing. The second list is everything that did not succeed, not only "
        "status 'failed': test `outcome.ok`.",
    ),
    Mistake(
        "truthy-value",
        lambda fn, seen: D in _split_of(fn, FULL)[1],
        "CR-4 succeeded with an empty answer, and you put it with the failures. "
        "Decide on the status (`outcome.ok`), not on whether the value looks empty.",
    ),
    Mistake(
        "order-lost",
        lambda fn, seen: _split_of(fn, FULL) != partition(FULL)
        and sorted(map(repr, [*_split_of(fn, FULL)[0], *_split_of(fn, FULL)[1]]))
        == sorted(map(repr, FULL)),
        "Every outcome is there, but not in input order. Keep the order the "
        "outcomes came in (append in one pass; a set has no order).",
    ),
]
