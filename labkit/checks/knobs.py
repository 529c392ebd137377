"""The check for 01_config: ``validate_knobs`` refuses what the batch cannot use."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from ..config import Config
from ._engine import Case, Mistake, Observed, call_safely, safe_str

NAMES = ("max_concurrency", "max_retries", "base_delay_ms", "max_delay_ms")
DEFAULTS = (9, 10, 200, 2000)


def reference(
    max_concurrency: int,
    max_retries: int,
    base_delay_ms: int,
    max_delay_ms: int,
) -> None:
    """labkit's answer: ``Config`` checks these knobs (and a few more)."""
    Config(
        max_concurrency=max_concurrency,
        max_retries=max_retries,
        base_delay_ms=base_delay_ms,
        max_delay_ms=max_delay_ms,
    )


def _call_text(values: tuple[Any, ...]) -> str:
    args = ", ".join(f"{name}={value!r}" for name, value in zip(NAMES, values))
    return f"validate_knobs({args})"


def observe(values: tuple[Any, ...], fn: Callable[..., Any]) -> Observed:
    """Call ``fn`` with one row of knob values; note the row for the judges."""
    return call_safely(fn, *values).noting(knobs=dict(zip(NAMES, values)))


def _valid(values: tuple[Any, ...]) -> Case:
    return Case(
        call=_call_text(values),
        expected="no error (these values are all allowed)",
        probe=partial(observe, values),
        right=lambda seen: seen.error is None and seen.value is None,
    )


def _invalid(values: tuple[Any, ...], knob: str) -> Case:
    return Case(
        call=_call_text(values),
        expected=f"ValueError whose message names {knob.upper()}",
        probe=partial(observe, values),
        right=lambda seen: seen.raised(ValueError) and _names(seen.error, knob),
    )


def _names(error: BaseException | None, knob: str) -> bool:
    message = safe_str(error).lower() if error is not None else ""
    return knob in message or knob.replace("_", " ") in message


def _with(**changes: Any) -> tuple[Any, ...]:
    values = dict(zip(NAMES, DEFAULTS))
    values.update(changes)
    return tuple(values[name] for name in NAMES)


CASES = [
    _valid(DEFAULTS),
    _valid(_with(max_retries=0)),
    _valid(_with(max_delay_ms=200)),
    _valid(_with(base_delay_ms=0)),
    _valid(_with(max_concurrency=1)),
    _invalid(_with(max_concurrency=0), "max_concurrency"),
    _invalid(_with(max_retries=-1), "max_retries"),
    _invalid(_with(base_delay_ms=-1), "base_delay_ms"),
    _invalid(_with(max_delay_ms=100), "max_delay_ms"),
    _invalid(_with(max_concurrency=2.5), "max_concurrency"),
]


def _row(seen: Observed, **values: Any) -> bool:
    """True when the failing row is the defaults changed by ``values``."""
    return seen.facts["knobs"] == dict(zip(NAMES, _with(**values)))


def _refused(**values: Any) -> Callable[[Callable[..., Any], Observed], bool]:
    return lambda fn, seen: _row(seen, **values) and seen.error is not None


def _accepted(**values: Any) -> Callable[[Callable[..., Any], Observed], bool]:
    return lambda fn, seen: _row(seen, **values) and seen.error is None


MISTAKES = [
    Mistake(
        "returns-instead-of-raising",
        lambda fn, seen: seen.error is None and seen.value is not None,
        "Your function returned a value. Raise ValueError for a bad knob instead: "
        "a returned False is easy to ignore, an exception is not.",
    ),
    Mistake(
        "wrong-error-type",
        lambda fn, seen: seen.error is not None and not seen.raised(ValueError),
        "Raise ValueError (a value outside its range), not another error type. "
        "An `assert` is no good either: `python -O` removes asserts.",
    ),
    Mistake(
        "defaults-refused",
        _refused(),
        "Your function refused the lab's defaults (9, 10, 200, 2000), which are "
        "all fine. Check the direction of each comparison.",
    ),
    Mistake(
        "retries-must-be-positive",
        _refused(max_retries=0),
        "MAX_RETRIES=0 is allowed: it means one try and no retry. "
        "Only negative numbers are wrong (compare with `< 0`).",
    ),
    Mistake(
        "cap-equal-to-base-refused",
        _refused(max_delay_ms=200),
        "A cap equal to the base delay is fine (every retry waits the same). "
        "Refuse MAX_DELAY_MS only when it is below BASE_DELAY_MS (`<`, not `<=`).",
    ),
    Mistake(
        "zero-base-refused",
        _refused(base_delay_ms=0),
        "BASE_DELAY_MS=0 is allowed (retry at once); only negative delays are wrong.",
    ),
    Mistake(
        "pool-of-one-refused",
        _refused(max_concurrency=1),
        "A pool of 1 is allowed: one record at a time. Refuse only values below 1.",
    ),
    Mistake(
        "pool-of-zero-accepted",
        _accepted(max_concurrency=0),
        "MAX_CONCURRENCY=0 got through: a pool of 0 never runs anything, so the "
        "batch would hang. It must be at least 1.",
    ),
    Mistake(
        "negative-retries-accepted",
        _accepted(max_retries=-1),
        "MAX_RETRIES=-1 got through: a negative retry budget means nothing. "
        "It must be at least 0.",
    ),
    Mistake(
        "negative-base-accepted",
        _accepted(base_delay_ms=-1),
        "BASE_DELAY_MS=-1 got through: nobody can wait less than no time. "
        "It must be at least 0.",
    ),
    Mistake(
        "cap-below-base-accepted",
        _accepted(max_delay_ms=100),
        "A cap of 100 ms under a base delay of 200 ms got through: the cap "
        "would cut every delay below where backoff starts. Check "
        "MAX_DELAY_MS >= BASE_DELAY_MS.",
    ),
    Mistake(
        "fraction-accepted",
        _accepted(max_concurrency=2.5),
        "MAX_CONCURRENCY=2.5 got through: there is no half a slot. Check that "
        "each knob is a whole number: `isinstance(value, int)`.",
    ),
    Mistake(
        "knob-not-named",
        lambda fn, seen: seen.raised(ValueError),
        "Right error, but the message does not name the knob. Say which one "
        "(for example MAX_CONCURRENCY), its value and what is allowed, so the "
        "reader knows what to fix.",
    ),
]
