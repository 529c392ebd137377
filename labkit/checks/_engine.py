"""How every exercise check works: cases, smallest first, then a diagnosis.

A check runs the learner's function on a short table of cases ordered from the
smallest input to the largest. The first case it gets wrong is the one shown.
Then a list of known mistakes, each a rule that may probe the function on other
inputs, names what went wrong; the first rule that matches gives the hint.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from types import UnionType
from typing import Any

PASSED, NOT_ATTEMPTED, WRONG = "passed", "not attempted yet", "wrong"

# Set by `make test`: "passed" for the solved notebooks, "not-attempted" for the
# shipped ones, so a check that says anything else stops the notebook run.
EXPECT_VARIABLE = "LABKIT_EXPECT"


@dataclass(frozen=True)
class Observed:
    """What the learner's function did on one input: its value or its error.

    ``facts`` are for judging and spotting mistakes; ``notes`` are shown to the
    learner after the value; ``shown`` replaces the value's repr when a short
    summary reads better (a list of outcomes, say).
    """

    value: Any = None
    error: BaseException | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    shown: str | None = None

    def __str__(self) -> str:
        if self.error is not None:
            message = str(self.error).splitlines()[0] if str(self.error) else ""
            text = f"raised {type(self.error).__name__}: {message}".rstrip(": ")
        elif self.shown is not None:
            text = self.shown
        elif isinstance(self.value, float):
            text = f"returned {self.value:.6g}"  # 0.15, not 0.15000000000000002
        else:
            text = f"returned {self.value!r}"
        return "; ".join([text, *self.notes])

    def noting(self, *notes: str, shown: str | None = None, **facts: Any) -> Observed:
        """A copy with more notes (shown to the learner) and facts (for judges)."""
        return replace(
            self,
            notes=self.notes + notes,
            facts={**self.facts, **facts},
            shown=shown if shown is not None else self.shown,
        )

    def raised(self, kind: type[BaseException] | UnionType | tuple[type, ...]) -> bool:
        """True when the function raised an error of ``kind``."""
        return isinstance(self.error, kind)


@dataclass(frozen=True)
class Case:
    """One input: how it reads, what is expected, how to run it, how to judge it."""

    call: str
    expected: str
    probe: Callable[[Callable[..., Any]], Observed]
    right: Callable[[Observed], bool]


Hint = str | Callable[[Callable[..., Any], Observed], str]


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer: a short name, how to spot it, and the hint to give.

    ``spot(fn, observed)`` looks at what happened on the failing input and may
    call ``fn`` on other inputs; a spot that raises counts as no match. The
    hint is text, or a function of ``(fn, observed)`` that can quote evidence.
    """

    name: str
    spot: Callable[[Callable[..., Any], Observed], bool]
    hint: Hint

    def hint_for(self, fn: Callable[..., Any], observed: Observed) -> str:
        """The hint's text for this answer."""
        return self.hint if isinstance(self.hint, str) else self.hint(fn, observed)


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: passed, not attempted yet, or wrong (and why)."""

    exercise: str
    status: str
    cases: int
    call: str | None = None
    expected: str | None = None
    got: str | None = None
    mistake: str | None = None
    hint: str | None = None

    @property
    def passed(self) -> bool:
        """True when every case gave the expected answer."""
        return self.status == PASSED

    def __str__(self) -> str:
        if self.status == PASSED:
            return (
                f"{self.exercise}: passed ({plural(self.cases, 'case')}). "
                f"From here on the notebook uses your {self.exercise}."
            )
        if self.status == NOT_ATTEMPTED:
            return (
                f"{self.exercise}: not attempted yet (it still raises "
                "NotImplementedError).\nThe notebook goes on with labkit's "
                "version; come back to the exercise whenever you like."
            )
        return "\n".join([
            f"{self.exercise}: wrong.",
            f"  input:    {self.call}",
            f"  expected: {self.expected}",
            f"  got:      {self.got}",
            f"  hint:     {self.hint}",
            "Until it passes, the notebook goes on with labkit's version.",
        ])


def plural(count: int, word: str) -> str:
    """``1 case``, ``2 cases``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def grade(
    exercise: str,
    fn: Callable[..., Any],
    cases: Sequence[Case],
    mistakes: Sequence[Mistake],
) -> Verdict:
    """Run ``fn`` through ``cases`` and say passed, not attempted, or wrong."""
    if not callable(fn):
        return Verdict(exercise, WRONG, 0, call=f"{exercise} itself",
                       expected="a function", got=repr(fn), mistake="not-callable",
                       hint="Define it with `def` (or `async def`), keeping its name.")

    for case in cases:
        observed = case.probe(fn)
        if observed.raised(NotImplementedError):
            return Verdict(exercise, NOT_ATTEMPTED, len(cases))
        if not case.right(observed):
            name, hint = diagnose(fn, observed, mistakes)
            return Verdict(exercise, WRONG, len(cases), call=case.call,
                           expected=case.expected, got=str(observed),
                           mistake=name, hint=hint)

    return Verdict(exercise, PASSED, len(cases))


def diagnose(
    fn: Callable[..., Any],
    observed: Observed,
    mistakes: Sequence[Mistake],
) -> tuple[str, str]:
    """The first known mistake that matches, or a plain hint when none does."""
    for mistake in mistakes:
        try:
            if mistake.spot(fn, observed):
                return mistake.name, mistake.hint_for(fn, observed)
        except Exception:  # noqa: BLE001 - a probe that fails is simply no match
            continue

    message = str(observed.error)
    if observed.raised(TypeError) and "async def" in message:
        return "async-def", "Write it as a plain `def`: nothing in it needs to await."
    if observed.raised(TypeError) and "await" in message:
        return "not-async", (
            "This exercise must be an `async def` function, so that it can "
            "await the endpoint, the pool or the clock."
        )
    if observed.raised(TypeError):
        return "signature", (
            "It crashed with a TypeError: keep the parameters as the exercise "
            "gives them, and check what you pass to each call."
        )
    return "unknown", "Compare what you got with what was expected on this input."


def conclude(
    verdict: Verdict,
    fn: Callable[..., Any],
    reference: Callable[..., Any],
) -> Callable[..., Any]:
    """Print the verdict, then hand back the function the notebook should use.

    That is the learner's function once it passes, and labkit's reference until
    then. Under ``LABKIT_EXPECT`` (set by ``make test``) a verdict other than
    the expected one raises ``AssertionError``, so the notebook run fails.
    """
    print(verdict)
    expected = os.environ.get(EXPECT_VARIABLE, "").replace("-", " ").strip()
    if expected and not verdict.status.startswith(expected):
        raise AssertionError(
            f"{EXPECT_VARIABLE}={expected!r} but the check of "
            f"{verdict.exercise} said: {verdict.status}"
        )
    return fn if verdict.passed else reference


def call_safely(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Observed:
    """Call a synchronous ``fn`` and capture its value or its error."""
    try:
        value = fn(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the error is the observation
        return Observed(error=error)

    if inspect.iscoroutine(value):
        value.close()
        return Observed(error=TypeError(
            "it is an `async def` function; this exercise wants a plain `def`"
        ))
    return Observed(value=value)
