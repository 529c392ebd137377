"""Checks for the notebooks' exercises.

Each exercise in the notebooks is a function you complete; the cell after it
calls the check of the same name, which runs your function on a few inputs,
smallest first, and prints one of three things:

- passed: the rest of the notebook uses your function;
- not attempted yet: your function still raises ``NotImplementedError``, and
  the notebook goes on with labkit's version;
- wrong: the smallest input it got wrong, what was expected, what it did, and
  a hint about the likely mistake; the notebook goes on with labkit's version.

Each check returns the function the notebook should use from then on::

    backoff = checks.backoff(backoff)

Async exercises are run on labkit's virtual clock in a worker thread, so a
check never waits in real time. Code that waits forever is stopped after 600 s
of loop time; code that spins on ``await asyncio.sleep(0)`` (so the clock never
moves) is stopped after a few seconds of real time; Ctrl-C stops a check too.
A learner's function that loops forever without ever awaiting cannot be
stopped from outside: the check gives up on it, but its thread keeps running
until the kernel restarts (see ``_virtual``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import backoff as _backoff
from . import call as _call
from . import counters as _counters
from . import knobs as _knobs
from . import pool as _pool
from . import retry as _retry
from . import settle as _settle
from ._engine import NOT_ATTEMPTED, PASSED, WRONG, Case, Mistake, Verdict, conclude
from ._engine import grade as _grade
from ._virtual import wall_guard as _wall_guard

__all__ = [
    "EXERCISES",
    "NOT_ATTEMPTED",
    "PASSED",
    "WRONG",
    "Verdict",
    "backoff",
    "call_endpoint",
    "grade",
    "retry",
    "run_all",
    "settle_all",
    "split",
    "validate_knobs",
    "watch",
]


@dataclass(frozen=True)
class Exercise:
    """An exercise's cases, its known mistakes and labkit's answer to it."""

    notebook: str
    cases: Callable[[], Sequence[Case]]
    mistakes: Sequence[Mistake]
    reference: Callable[..., Any]


EXERCISES: dict[str, Exercise] = {
    "validate_knobs": Exercise("01_config", lambda: _knobs.CASES, _knobs.MISTAKES,
                               _knobs.reference),
    "call_endpoint": Exercise("02_client", lambda: _call.CASES, _call.MISTAKES,
                              _call.reference),
    "run_all": Exercise("03_pool", _pool.cases, _pool.MISTAKES, _pool.reference),
    "watch": Exercise("04_counters", _counters.cases, _counters.MISTAKES,
                      _counters.reference),
    "backoff": Exercise("05_backoff", _backoff.cases, _backoff.MISTAKES,
                        _backoff.reference),
    "retry": Exercise("06_retry", _retry.cases, _retry.MISTAKES, _retry.reference),
    "settle_all": Exercise("07_settle", _settle.settle_cases,
                           _settle.SETTLE_MISTAKES, _settle.reference_settle),
    "split": Exercise("07_settle", _settle.split_cases, _settle.SPLIT_MISTAKES,
                      _settle.reference_split),
}


def grade(
    exercise: str,
    fn: Callable[..., Any],
    *,
    wall_guard: float | None = None,
) -> Verdict:
    """Run ``fn`` through the named exercise's cases and return the verdict.

    Unlike the check functions, this prints nothing and never raises (but
    Ctrl-C still stops it). ``wall_guard`` is how many seconds of real time
    the virtual clock may stand still before the code is called stuck (None:
    the default, generous enough for a busy machine).
    """
    spec = EXERCISES[exercise]
    # Built before the guard applies: the cases run labkit's own answer once
    # and are cached, so a tight guard must never cut them short.
    cases = spec.cases()
    with _wall_guard(wall_guard):
        return _grade(exercise, fn, cases, spec.mistakes)


def _check(exercise: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    verdict = grade(exercise, fn)
    return conclude(verdict, fn, EXERCISES[exercise].reference)


def validate_knobs(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Check 01's ``validate_knobs``; returns the function to use from here on."""
    return _check("validate_knobs", fn)


def call_endpoint(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Check 02's ``call_endpoint``; returns the function to use from here on."""
    return _check("call_endpoint", fn)


def run_all(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Check 03's ``run_all``; returns the function to use from here on."""
    return _check("run_all", fn)


def watch(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Check 04's ``watch``; returns the function to use from here on."""
    return _check("watch", fn)


def backoff(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Check 05's ``backoff``; returns the function to use from here on."""
    return _check("backoff", fn)


def retry(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Check 06's ``retry``; returns the function to use from here on."""
    return _check("retry", fn)


def settle_all(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Check 07's ``settle_all``; returns the function to use from here on."""
    return _check("settle_all", fn)


def split(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Check 07's ``split``; returns the function to use from here on."""
    return _check("split", fn)
