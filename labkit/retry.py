"""The retry loop: try, and on a failure worth retrying, wait and try again.

A policy decides what is worth retrying. The lab's policy retries rate limits
only; the production policy, like the official LLM SDKs, also retries
timeouts, dropped connections, 408, 409 and 5xx. Neither retries a spent
quota or a bad request, and both give up with ``RetriesExhausted`` once the
retry budget is used.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .backoff import backoff_delay, check_backoff
from .client import (
    MAX_HINT_SECONDS,
    BadRequestError,
    ConnectionLostError,
    EndpointError,
    LabkitError,
    MalformedResponseError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
)
from .pool import QueueCleared
from .timeline import Timeline

__all__ = [
    "with_retry",
    "RetriesExhausted",
    "RetryPolicy",
    "LAB",
    "PRODUCTION",
    "failure_kind",
    "failure_reason",
]

T = TypeVar("T")


class RetriesExhausted(LabkitError):
    """Every allowed request failed; ``__cause__`` is the last error."""

    def __init__(self, attempts: int, max_retries: int, last_error: Exception):
        super().__init__(
            f"retry budget exhausted: {attempts} requests "
            f"(MAX_RETRIES={max_retries}) all failed; last: {describe(last_error)}"
        )
        self.attempts = attempts
        self.max_retries = max_retries
        self.last_error = last_error


@dataclass(frozen=True)
class RetryPolicy:
    """Which errors are worth another try. ``LAB`` and ``PRODUCTION`` are ready.

    ``LAB`` retries rate limits only, as the lab's code does, and fails fast on
    everything else. ``PRODUCTION`` behaves like the official LLM SDKs: it
    also retries timeouts, lost connections, 408, 409 and 5xx, and obeys the
    server's ``x-should-retry`` header. Neither retries a spent quota or a
    request the server called bad, whatever the header says.
    """

    name: str
    retry_transient_failures: bool

    def should_retry(self, error: Exception) -> bool:
        """True when waiting and sending the same request again may succeed."""
        if isinstance(error, RateLimitError):
            return self._should_retry_rate_limit(error)
        if not self.retry_transient_failures or not isinstance(error, EndpointError):
            return False

        # A malformed request stays malformed, whatever the server says.
        if isinstance(error, BadRequestError) and error.status not in (408, 409):
            return False
        if error.should_retry is not None:
            return error.should_retry
        return isinstance(
            error, ServerError | RequestTimeoutError | ConnectionLostError
        ) or error.status in (408, 409)

    def _should_retry_rate_limit(self, error: RateLimitError) -> bool:
        # No wait refills a spent quota, so not even the server's header counts.
        if error.quota_exhausted:
            return False

        # The lab's loop never reads the header; production lets it say no.
        if self.retry_transient_failures and error.should_retry is False:
            return False
        return True


LAB = RetryPolicy("lab", retry_transient_failures=False)
PRODUCTION = RetryPolicy("production", retry_transient_failures=True)
POLICIES = {policy.name: policy for policy in (LAB, PRODUCTION)}


async def with_retry(
    attempt: Callable[[], Awaitable[T]],
    *,
    max_retries: int,
    base_delay: float,
    max_delay: float,
    jitter: str = "equal",
    honour_hint: bool = True,
    policy: RetryPolicy = LAB,
    rng: random.Random | None = None,
    timeline: Timeline | None = None,
    record_id: str | None = None,
) -> T:
    """Await ``attempt()`` until it succeeds or the retry budget runs out.

    ``max_retries`` counts retries after the first try, so at most
    ``max_retries + 1`` attempts are made. Before retry ``n`` it sleeps the
    backoff delay for ``n``, or the server's hint when that is longer and
    ``honour_hint`` is on. An error the policy does not retry is raised
    unchanged at once; when the budget is spent, ``RetriesExhausted`` is
    raised from the last error.
    """
    # Bad settings are refused before the first request, not after it.
    if isinstance(max_retries, bool) or not isinstance(max_retries, int):
        raise ValueError(f"max_retries={max_retries!r} must be a whole number")
    if max_retries < 0:
        raise ValueError(f"max_retries={max_retries} must be 0 or more")
    check_backoff(base=base_delay, cap=max_delay, jitter=jitter)

    tell = _Teller(timeline, record_id)
    for number in range(1, max_retries + 2):
        tell("request", attempt=number)
        try:
            result = await attempt()
        except Exception as error:
            tell.failure(error, number)
            if not policy.should_retry(error):
                raise
            if number > max_retries:
                raise RetriesExhausted(number, max_retries, error) from error

            delay = backoff_delay(
                number, base=base_delay, cap=max_delay, jitter=jitter, rng=rng
            )
            hint = _usable_hint(error) if honour_hint else None
            if hint is not None:
                delay = max(delay, hint)
            tell("wait", attempt=number, delay=delay)
            await asyncio.sleep(delay)
            continue

        tell("response", attempt=number)
        return result

    raise AssertionError("unreachable: the loop returns or raises")


def _usable_hint(error: Exception) -> float | None:
    """The error's wait hint, clamped like ``parse_retry_after`` clamps headers.

    A hint set by hand (``RateLimitError(retry_after=1e9)``) must not make a
    record sleep forever, so the same minute cap applies; NaN or a negative
    hint is no hint.
    """
    hint = getattr(error, "retry_after", None)
    if not isinstance(hint, int | float) or isinstance(hint, bool):
        return None
    if math.isnan(hint) or hint < 0:
        return None
    return min(float(hint), MAX_HINT_SECONDS)


def describe(error: BaseException) -> str:
    """A one-line reason for a report: the error's type and message."""
    return f"{type(error).__name__}: {error}"


def failure_kind(error: BaseException) -> str:
    """A short, stable name for what went wrong, for reports and results files.

    One of ``rate_limited``, ``quota_exhausted``, ``server_error``,
    ``timeout``, ``connection_lost``, ``malformed_response``,
    ``bad_request``, ``cleared`` or ``cancelled``; any other error is named
    by its class (``ValueError``). A ``RetriesExhausted`` is named after the
    last error, since that is what kept failing.

    >>> failure_kind(RateLimitError("429", code="insufficient_quota"))
    'quota_exhausted'
    """
    if isinstance(error, RetriesExhausted):
        return failure_kind(error.last_error)
    if isinstance(error, RateLimitError):
        return "quota_exhausted" if error.quota_exhausted else "rate_limited"
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    for kind, name in _KINDS:
        if isinstance(error, kind):
            return name
    return type(error).__name__


def failure_reason(error: BaseException, attempts: int = 0) -> str:
    """The reason a report gives for a failed record: its kind, its attempts, why.

    ``attempts`` is how many requests the record got; 0 means unknown and
    leaves the count out.

    >>> failure_reason(ServerError("503 server_error: overloaded"), 1)
    'server_error after 1 attempt, not retryable: 503 server_error: overloaded'
    """
    kind = failure_kind(error)
    if attempts < 1:
        return f"{kind}: {_message(error)}"

    tried = f"{kind} after {attempts} attempt{'' if attempts == 1 else 's'}"
    if isinstance(error, RetriesExhausted):
        return (
            f"{tried}, retry budget spent (MAX_RETRIES={error.max_retries}): "
            f"{_message(error.last_error)}"
        )
    # "after 2 attempts, not retried" would read as a contradiction: the
    # earlier attempts were retried, and it is the last failure that is not.
    last = "not retryable" if attempts == 1 else "and the last is not retryable"
    return f"{tried}, {last}: {_message(error)}"


def _message(error: BaseException) -> str:
    if isinstance(error, asyncio.CancelledError):
        return "cancelled while in flight"
    return str(error) or type(error).__name__


class _Teller:
    """Emits the retry loop's events, or nothing when there is no timeline."""

    def __init__(self, timeline: Timeline | None, record_id: str | None) -> None:
        self.timeline = timeline
        self.record_id = record_id

    def __call__(self, kind: str, **fields: object) -> None:
        if self.timeline is not None:
            self.timeline.emit(kind, record_id=self.record_id, **fields)

    def failure(self, error: Exception, number: int) -> None:
        if isinstance(error, RateLimitError) and not error.quota_exhausted:
            self("rate_limited", attempt=number, delay=error.retry_after)
        else:
            self("error", attempt=number, detail=describe(error))


# Checked in order, so a subclass is named before its parent.
_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (ServerError, "server_error"),
    (RequestTimeoutError, "timeout"),
    (ConnectionLostError, "connection_lost"),
    (MalformedResponseError, "malformed_response"),
    (BadRequestError, "bad_request"),
    (EndpointError, "endpoint_error"),
    (QueueCleared, "cleared"),
)
