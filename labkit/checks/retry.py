"""The check for 06_retry: ``retry`` retries rate limits, and only them, on budget.

Each case hands the learner's function a scripted ``attempt``: its answers in
order (a value, or an error to raise), the last one repeating. The check notes
how many requests were made, every wait between them (on the loop's clock),
and what came out; labkit's ``with_retry`` on the same script says what is right.
The random source always draws 1, so every jitter mode waits the full delay.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from typing import Any

from ..client import EndpointError, RateLimitError
from ..retry import RetriesExhausted, with_retry
from ._engine import Case, Mistake, Observed, check_signature, plural
from ._virtual import Blocked, observe_async
from .backoff import FixedDraw

# A loop still retrying after this many requests would never stop on its own.
MAX_REQUESTS = 60


async def reference(
    attempt: Callable[[], Any],
    *,
    max_retries: int,
    base_delay: float,
    max_delay: float,
    rng: Any,
) -> Any:
    """labkit's answer: ``with_retry`` with equal jitter, honouring the hint."""
    return await with_retry(attempt, max_retries=max_retries, base_delay=base_delay,
                            max_delay=max_delay, rng=rng)


class TooManyRequests(BaseException):
    """Raised into the learner's loop to stop one that never gives up.

    A BaseException, so an ``except Exception`` in the loop does not retry it.
    """


@dataclass(frozen=True)
class Script:
    """What ``attempt`` answers, in order; the last answer repeats."""

    answers: tuple[str, ...]
    max_retries: int = 3
    base_delay: float = 0.1
    max_delay: float = 2.0

    def describe(self) -> str:
        shown = ", ".join(self.answers) + ", ..."
        return (
            f"retry(attempt, max_retries={self.max_retries}, base_delay="
            f"{self.base_delay}, max_delay={self.max_delay}, rng) where "
            f"attempt answers: {shown}"
        )


def make_error(answer: str) -> Exception:
    """A fresh error for one scripted answer."""
    if answer == "429":
        return RateLimitError("429 rate_limit_exceeded")
    if answer.startswith("429 hint "):
        seconds = float(answer.removeprefix("429 hint ").removesuffix(" s"))
        return RateLimitError("429 rate_limit_exceeded", retry_after=seconds)
    if answer == "400":
        return EndpointError("400 invalid_request_error", status=400)
    return ValueError("the record has no note")


class ScriptedAttempt:
    """An ``attempt`` that answers from a script and notes when it was called."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.loop = asyncio.get_running_loop()
        self.start = self.loop.time()
        self.calls: list[float] = []
        self.raised: list[Exception] = []

    async def __call__(self) -> str:
        self.calls.append(self.loop.time() - self.start)
        if len(self.calls) > MAX_REQUESTS:
            raise TooManyRequests(f"more than {MAX_REQUESTS} requests")
        answers = self.script.answers
        answer = answers[min(len(self.calls), len(answers)) - 1]
        if answer == "ok":
            return "done"
        error = make_error(answer)
        self.raised.append(error)
        raise error


def observe(fn: Callable[..., Any], script: Script) -> Observed:
    """Run ``fn`` on a script; note requests, waits and what came out."""
    return observe_async(lambda: _run(fn, script))


async def _run(fn: Callable[..., Any], script: Script) -> Observed:
    attempt = ScriptedAttempt(script)
    arguments: dict[str, Any] = {
        "max_retries": script.max_retries, "base_delay": script.base_delay,
        "max_delay": script.max_delay, "rng": FixedDraw(1.0),
    }
    try:
        check_signature(fn, attempt, **arguments)
        seen = Observed(value=await fn(attempt, **arguments))
    except (TooManyRequests, Blocked) as error:
        seen = Observed(error=error)
    except Exception as error:  # noqa: BLE001 - the error is the observation
        seen = Observed(error=error)
    return _noted(seen, attempt).noting(script=script)


def _requests_and_waits(requests: int, waits: list[float]) -> str:
    shown = ", ".join(f"{wait:g} s" for wait in waits) or "none"
    return f"{plural(requests, 'request')}, waits between them: {shown}"


def _noted(seen: Observed, attempt: ScriptedAttempt) -> Observed:
    end = attempt.loop.time() - attempt.start
    calls = attempt.calls
    waits = [round(b - a, 6) for a, b in pairwise(calls)]
    notes = [_requests_and_waits(len(calls), waits)]
    if calls and calls[0] > 0:
        notes.append(f"waited {calls[0]:g} s before the first request")
    if calls and end - calls[-1] > 1e-9:
        notes.append(f"then waited {end - calls[-1]:g} s after the last one")
    return seen.noting(
        *notes,
        requests=len(calls),
        waits=waits,
        before_first=round(calls[0], 6) if calls else None,
        after_last=round(end - calls[-1], 6) if calls else None,
        unchanged=any(seen.error is error for error in attempt.raised),
        cause_is_last=bool(attempt.raised) and seen.error is not None
        and seen.error.__cause__ is attempt.raised[-1],
    )


SCRIPTS = [
    Script(("ok",)),
    Script(("429", "ok")),
    Script(("429",), max_retries=0),
    Script(("400",)),
    Script(("ValueError",)),
    Script(("429",)),
    Script(("429 hint 1.5 s", "ok")),
    Script(("429 hint 0.05 s", "ok")),
    Script(("429",), max_retries=5, max_delay=0.5),
]


def _outcome(seen: Observed) -> tuple[Any, ...]:
    kind = type(seen.error).__name__ if seen.error is not None else None
    return (seen.value, kind, seen.facts["requests"], seen.facts["unchanged"],
            seen.facts["cause_is_last"], seen.facts["before_first"],
            seen.facts["after_last"])


def _same(seen: Observed, want: Observed) -> bool:
    # A run the check had to stop (never finished, clock stuck) has no counts:
    # it is wrong, and the engine's own diagnosis says why.
    if "waits" not in seen.facts:
        return False
    waits_match = len(seen.facts["waits"]) == len(want.facts["waits"]) and all(
        math.isclose(a, b, abs_tol=1e-6)
        for a, b in zip(seen.facts["waits"], want.facts["waits"])
    )
    return waits_match and _outcome(seen) == _outcome(want)


def _describe(want: Observed) -> str:
    if want.error is None:
        ending = f"returns {want.value!r}"
    elif isinstance(want.error, RetriesExhausted):
        ending = "raises RetriesExhausted from the last RateLimitError"
    else:
        ending = f"raises the {type(want.error).__name__} unchanged, at once"
    counts = _requests_and_waits(want.facts["requests"], want.facts["waits"])
    return f"{counts}; {ending}"


def _case(script: Script) -> Case:
    want = observe(reference, script)
    return Case(script.describe(), _describe(want), lambda fn: observe(fn, script),
                lambda seen: _same(seen, want))


@cache
def cases() -> list[Case]:
    """The cases, built on first use (each runs labkit's answer once)."""
    return [_case(script) for script in SCRIPTS]


def _script(seen: Observed) -> Script:
    return seen.facts["script"]


def _exhausting(seen: Observed) -> bool:
    """True when the failing script never succeeds: the budget must run out."""
    return _script(seen).answers == ("429",)


def _hint(seen: Observed) -> float | None:
    first = _script(seen).answers[0]
    return make_error(first).retry_after if first.startswith("429") else None


def _first_wait(seen: Observed) -> float | None:
    return seen.facts["waits"][0] if seen.facts["waits"] else None


def _when(test: Callable[[Observed], bool]) -> Callable[[Any, Observed], bool]:
    return lambda fn, seen: bool(test(seen))


MISTAKES: Sequence[Mistake] = [
    Mistake(
        "blocking-sleep",
        _when(lambda seen: seen.raised(Blocked)),
        "`time.sleep` blocks the whole event loop: while one record waits, "
        "every other record stands still too. Use `await asyncio.sleep(delay)`.",
    ),
    Mistake(
        "never-gives-up",
        _when(lambda seen: seen.raised(TooManyRequests)),
        f"Your loop was still retrying after {MAX_REQUESTS} requests. Stop once "
        "`max_retries` retries are used: `for number in range(1, max_retries + 2)`.",
    ),
    Mistake(
        "retry-numbered-from-zero",
        _when(lambda seen: "must be 1 or more" in str(seen.error)),
        "backoff_delay numbers retries from 1 (the first retry is retry 1); "
        "you passed 0.",
    ),
    Mistake(
        "sleeps-before-first-try",
        _when(lambda seen: (seen.facts["before_first"] or 0) > 0),
        "You waited before the first request. Wait only before a retry.",
    ),
    Mistake(
        "retries-a-400",
        _when(lambda seen: _script(seen).answers == ("400",)
              and seen.facts["requests"] > 1),
        "A 400 was sent again. A bad request stays bad however long you wait: "
        "retry only RateLimitError, and raise anything else at once.",
    ),
    Mistake(
        "retries-everything",
        _when(lambda seen: _script(seen).answers == ("ValueError",)
              and seen.facts["requests"] > 1),
        "A ValueError was retried. Only a rate limit is worth waiting for: catch "
        "RateLimitError, and let every other error go through unchanged.",
    ),
    Mistake(
        "wraps-other-errors",
        _when(lambda seen: _script(seen).answers in (("400",), ("ValueError",))
              and not seen.facts["unchanged"]),
        "This error came out as a different one. Raise an error you do not retry "
        "unchanged (a bare `raise`), so the report shows what really happened.",
    ),
    Mistake(
        "budget-one-short",
        _when(lambda seen: _exhausting(seen)
              and seen.facts["requests"] == _script(seen).max_retries),
        "One request too few. MAX_RETRIES counts retries after the first try: "
        "max_retries=N allows N + 1 requests (`range(1, max_retries + 2)`).",
    ),
    Mistake(
        "budget-one-over",
        _when(lambda seen: _exhausting(seen)
              and seen.facts["requests"] == _script(seen).max_retries + 2),
        "One request too many: the first try plus max_retries retries is "
        "max_retries + 1 requests.",
    ),
    Mistake(
        "exhaustion-swallowed",
        _when(lambda seen: _exhausting(seen) and seen.error is None),
        "When the budget ran out your function returned instead of raising. "
        "Raise RetriesExhausted, so the record is counted as failed.",
    ),
    Mistake(
        "no-wait",
        _when(lambda seen: seen.facts["waits"] and set(seen.facts["waits"]) == {0.0}),
        "Your retries went out with no wait in between, straight into the same "
        "full window. `await asyncio.sleep(delay)` before each retry.",
    ),
    Mistake(
        "waits-after-last-try",
        _when(lambda seen: _exhausting(seen) and (seen.facts["after_last"] or 0) > 0),
        "After the last request failed you still waited, then gave up. When no "
        "retry follows, give up at once: check the budget before sleeping.",
    ),
    Mistake(
        "exhaustion-not-reported",
        _when(lambda seen: _exhausting(seen) and type(seen.error) is RateLimitError),
        "When the budget runs out, raise RetriesExhausted(attempts, max_retries, "
        "error) from the last error, so the report says the budget ran out "
        "rather than showing one more 429.",
    ),
    Mistake(
        "cause-lost",
        _when(lambda seen: _exhausting(seen) and not seen.facts["cause_is_last"]),
        "RetriesExhausted must carry the last error as its cause: "
        "`raise RetriesExhausted(...) from error`.",
    ),
    Mistake(
        "hint-ignored",
        _when(lambda seen: (_hint(seen) or 0) > _script(seen).base_delay
              and (_first_wait(seen) or 0) < _hint(seen)),
        "The server said how long to wait (`error.retry_after`) and you waited "
        "less, so the retry hit the same full window. Wait at least the hint: "
        "`max(delay, error.retry_after)` when it is not None.",
    ),
    Mistake(
        "hint-replaces-backoff",
        _when(lambda seen: (_hint(seen) or 1) < _script(seen).base_delay
              and _first_wait(seen) == _hint(seen)),
        "The hint was shorter than your own backoff, and you waited only the "
        "hint. Wait the longer of the two: `max(delay, error.retry_after)`.",
    ),
    Mistake(
        "delay-not-capped",
        _when(lambda seen: max(seen.facts["waits"], default=0)
              > _script(seen).max_delay),
        "A wait went past max_delay. Use `backoff_delay(number, base=base_delay, "
        "cap=max_delay, rng=rng)` for each retry's delay.",
    ),
    Mistake(
        "wrong-exponent",
        _when(lambda seen: _first_wait(seen) == 2 * _script(seen).base_delay),
        "The first retry waited twice the base: pass the retry's own number to "
        "backoff_delay (1 for the first retry).",
    ),
]
