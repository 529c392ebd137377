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


class CheckStopped(Exception):
    """The check itself stopped the learner's code; the message says why.

    Not the learner's error, so the learner reads the message alone, and the
    check diagnoses it before any module's mistakes (whose probes would only
    run the stuck code again, and whose facts were never gathered).
    """


class StillRunning(CheckStopped):
    """The learner's code was still busy after the loop-time limit."""


class ClockStuck(CheckStopped):
    """The learner's code kept the loop busy, so the virtual clock never moved."""


class WrongSignature(TypeError):
    """The learner's function cannot be called the way the exercise calls it.

    A TypeError, as Python itself would raise, but told apart from a TypeError
    raised inside the body, which is a different mistake.
    """


def safe_repr(value: Any) -> str:
    """``repr(value)``, or a stand-in when the learner's ``__repr__`` fails."""
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not crash a check
        return f"<a {type(value).__name__} that cannot be shown>"


def safe_str(error: BaseException) -> str:
    """``str(error)``, or its type's name when the learner's ``__str__`` fails."""
    try:
        return str(error)
    except Exception:  # noqa: BLE001 - a broken __str__ must not crash a check
        return type(error).__name__


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
        if isinstance(self.error, CheckStopped):
            text = safe_str(self.error)  # the check's words, not a learner error
        elif self.error is not None:
            lines = safe_str(self.error).splitlines()
            message = lines[0] if lines else ""
            text = f"raised {type(self.error).__name__}: {message}".rstrip(": ")
        elif self.shown is not None:
            text = self.shown
        elif isinstance(self.value, float):
            text = f"returned {self.value:.6g}"  # 0.15, not 0.15000000000000002
        else:
            text = f"returned {safe_repr(self.value)}"
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
        if not judged_right(case, observed):
            name, hint = diagnose(fn, observed, mistakes)
            return Verdict(exercise, WRONG, len(cases), call=case.call,
                           expected=case.expected, got=str(observed),
                           mistake=name, hint=hint)

    return Verdict(exercise, PASSED, len(cases))


def judged_right(case: Case, observed: Observed) -> bool:
    """``case.right(observed)``, counting a judge that crashes as wrong.

    Judges compare learner values (whose ``==`` may raise) and read facts that
    a stopped run never gathered; either way the answer is not right, and the
    check must still give a verdict rather than a traceback.
    """
    try:
        return bool(case.right(observed))
    except Exception:  # noqa: BLE001 - see above: a crash in judging is "wrong"
        return False


# Checked before any exercise's own mistakes: when the check had to stop the
# learner's code, or could not even call it, those mistakes' facts are missing
# and their probes would only run the same stuck or uncallable code again.
GENERIC_MISTAKES: tuple[tuple[str, type[BaseException], str], ...] = (
    ("clock-stuck", ClockStuck,
     "Your code never lets the clock move: it spins on `await asyncio.sleep(0)` "
     "(or another busy loop) instead of waiting. Wait for what you need "
     "instead: a pool slot (`pool.run`), an `asyncio.Event`, or "
     "`await asyncio.sleep(seconds)`."),
    ("never-finishes", StillRunning,
     "Your function never finished: it waits for something that never happens "
     "(an event nobody sets, a loop with no way out, an `except` that retries "
     "forever). Make sure every path ends with a return or a raise."),
    ("signature", WrongSignature,
     "The signature is wrong: {error}. Keep the parameters exactly as the "
     "exercise gives them: the same names, in the same order, with no `*` added."),
)


def diagnose(
    fn: Callable[..., Any],
    observed: Observed,
    mistakes: Sequence[Mistake],
) -> tuple[str, str]:
    """The first known mistake that matches, or a plain hint when none does."""
    for name, kind, hint in GENERIC_MISTAKES:
        if observed.raised(kind):
            return name, hint.replace("{error}", safe_str(observed.error))
    for mistake in mistakes:
        try:
            if mistake.spot(fn, observed):
                return mistake.name, mistake.hint_for(fn, observed)
        except Exception:  # noqa: BLE001 - a probe (or a hint quoting the
            continue  # learner's value) that fails is simply no match

    message = safe_str(observed.error) if observed.error is not None else ""
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


def check_signature(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Raise ``WrongSignature`` when ``fn`` cannot take these arguments.

    Binding first tells "cannot be called like this" (the learner changed the
    parameters, e.g. made them keyword-only) from a TypeError in the body.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # no signature to read (some builtins): let the call decide
    try:
        signature.bind(*args, **kwargs)
    except TypeError as error:
        keywords = (f"{key}={safe_repr(value)}" for key, value in kwargs.items())
        shown = ", ".join([*map(safe_repr, args), *keywords])
        raise WrongSignature(f"it cannot be called with ({shown}): {error}") from None


def call_safely(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Observed:
    """Call a synchronous ``fn`` and capture its value or its error."""
    try:
        check_signature(fn, *args, **kwargs)
        value = fn(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the error is the observation
        return Observed(error=error)

    if inspect.iscoroutine(value):
        value.close()
        return Observed(error=TypeError(
            "it is an `async def` function; this exercise wants a plain `def`"
        ))
    return Observed(value=value)
