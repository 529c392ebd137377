"""The check for 05_backoff: ``backoff`` is capped, exponential, with equal jitter.

The random source handed to the learner's function always draws the same
number, so every case has one right answer: for retry ``n`` the capped delay is
``d = min(cap, base * 2 ** (n - 1))`` and the wait is ``d/2 + d/2 * draw``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..backoff import backoff_delay
from ._engine import Case, Mistake, Observed, call_safely, safe_repr


class FixedDraw:
    """A random source whose every draw is ``value`` (0 to 1)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        """The fixed draw, as ``random.Random.random`` would give a number."""
        return self.value

    def uniform(self, low: float, high: float) -> float:
        """The point ``value`` of the way from ``low`` to ``high``."""
        return low + (high - low) * self.value

    def __repr__(self) -> str:
        return f"an rng that always draws {self.value:g}"


def reference(retry: int, base: float, cap: float, rng: Any) -> float:
    """labkit's answer: ``backoff_delay`` with equal jitter."""
    return backoff_delay(retry, base=base, cap=cap, jitter="equal", rng=rng)


def expected(retry: int, base: float, cap: float, draw: float) -> float:
    """The right wait for these inputs, worked out by hand."""
    capped = min(cap, base * 2 ** min(retry - 1, 64))
    return capped / 2 + capped / 2 * draw


def probe(fn: Callable[..., Any], retry: int, base: float, cap: float,
          draw: float) -> Observed:
    """Call ``fn`` once with a fixed draw."""
    return call_safely(fn, retry, base, cap, FixedDraw(draw))


def is_seconds(answer: object) -> bool:
    """True for a wait the loop can use: a real, finite number, 0 or more.

    Checked before any arithmetic on the learner's answer, which could be text
    ("0.1"), None, a bool, NaN or a negative number.
    """
    return (
        isinstance(answer, int | float)
        and not isinstance(answer, bool)
        and math.isfinite(answer)
        and answer >= 0
    )


def value(fn: Callable[..., Any], retry: int, base: float, cap: float,
          draw: float) -> float:
    """``fn``'s answer, or an error when it raised or gave no usable wait.

    Raising on an answer that is not seconds makes every probing mistake
    below a no-match, so "0.1" is never mistaken for, say, missing jitter.
    """
    seen = probe(fn, retry, base, cap, draw)
    if seen.error is not None:
        raise seen.error
    if not is_seconds(seen.value):
        raise TypeError(f"not a number of seconds: {safe_repr(seen.value)}")
    return float(seen.value)


def _case(retry: int, base: float, cap: float, draw: float) -> Case:
    want = expected(retry, base, cap, draw)

    def right(seen: Observed) -> bool:
        return (
            seen.error is None
            and is_seconds(seen.value)
            and math.isclose(seen.value, want, rel_tol=1e-9, abs_tol=1e-12)
        )

    return Case(
        call=f"backoff(retry={retry}, base={base}, cap={cap}, rng draws {draw})",
        expected=f"{want:g} (seconds)",
        probe=lambda fn: probe(fn, retry, base, cap, draw),
        right=right,
    )


CASES = [
    _case(1, 0.1, 2.0, 0.5),
    _case(1, 0.1, 2.0, 0.0),
    _case(3, 0.1, 2.0, 0.5),
    _case(10, 0.1, 2.0, 0.0),
    _case(10, 0.1, 0.5, 1.0),
    _case(1025, 0.5, 60.0, 0.5),
    _case(1025, 1, 60, 0.5),
    _case(10_000, 0.5, 60.0, 0.25),
]


def cases() -> list[Case]:
    """The cases, smallest input first."""
    return CASES


def _near(got: float, want: float) -> bool:
    return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12)


def _varies(fn: Callable[..., Any]) -> bool:
    answers = {value(fn, 1, 0.1, 2.0, 0.5) for _ in range(5)}
    return len(answers) > 1


MISTAKES = [
    Mistake(
        "overflow",
        lambda fn, seen: seen.raised(OverflowError),
        "At a huge retry number, 2 to that power no longer fits in a float. "
        "Cap the exponent before raising 2 to it (for example "
        "`min(retry - 1, 64)`): any exponent past that is over the cap anyway.",
    ),
    Mistake(
        "nothing-returned",
        lambda fn, seen: seen.error is None and seen.value is None,
        "Your function returned None: return the delay in seconds.",
    ),
    Mistake(
        "not-seconds",
        lambda fn, seen: seen.error is None and not is_seconds(seen.value),
        lambda fn, seen: (
            f"Your function returned {safe_repr(seen.value)}: return a number of "
            "seconds, never negative (a float such as 0.1, not text), which "
            "`asyncio.sleep` can wait."
        ),
    ),
    Mistake(
        "global-random",
        lambda fn, seen: _varies(fn),
        "Calling it twice with the same rng gave different delays: the "
        "randomness must come from `rng` (`rng.random()`), not from the random "
        "module, so that a seed repeats a run.",
    ),
    Mistake(
        "no-cap",
        lambda fn, seen: value(fn, 10, 0.1, 2.0, 0.0) > 2.0,
        "The delay grew past the cap: clamp it with `min(cap, ...)` before "
        "adding jitter.",
    ),
    Mistake(
        "jitter-past-cap",
        lambda fn, seen: value(fn, 10, 0.1, 0.5, 1.0) > 0.5 + 1e-9,
        "Jitter pushed the delay past the cap. Apply jitter to the capped delay "
        "so that the wait stays between d/2 and d, never above the cap.",
    ),
    Mistake(
        "no-jitter",
        lambda fn, seen: _near(value(fn, 1, 0.1, 2.0, 0.0),
                               value(fn, 1, 0.1, 2.0, 1.0)),
        "The draw changes nothing, so records that fail together would all "
        "come back together. Add equal jitter: `d / 2 + d / 2 * rng.random()`.",
    ),
    Mistake(
        "jitter-before-cap",
        lambda fn, seen: _near(value(fn, 10, 0.1, 2.0, 0.0), 2.0),
        "Past the cap every draw gives exactly the cap: you jittered first and "
        "clamped after, so all late retries pile onto the cap together. Clamp "
        "first, then jitter the capped delay.",
    ),
    Mistake(
        "full-jitter",
        lambda fn, seen: _near(value(fn, 1, 0.1, 2.0, 0.0), 0.0),
        "With a draw of 0 your wait is 0: that is full jitter (anywhere from 0 "
        "to d). This exercise asks for equal jitter, which keeps half the delay: "
        "`d / 2 + d / 2 * rng.random()`.",
    ),
    Mistake(
        "exponent-off-by-one",
        lambda fn, seen: _near(value(fn, 1, 0.1, 2.0, 1.0), 0.2),
        "The first retry waited twice the base. Retry 1 should wait about "
        "`base`: the exponent is `retry - 1`, not `retry`.",
    ),
    Mistake(
        "linear",
        lambda fn, seen: _near(value(fn, 3, 0.1, 2.0, 1.0), 0.3),
        "Retry 3 waited 3 times the base: the delay should double each time "
        "(`base * 2 ** (retry - 1)`), not grow by one base.",
    ),
]
