"""The retry loop: try, and on a failure worth retrying, wait and try again.

A policy decides what is worth retrying. The lab's policy retries rate limits
only; the production policy, like the official LLM SDKs, also retries
timeouts, dropped connections, 408, 409 and 5xx. Neither retries a spent
quota or a bad request, and both give up with ``RetriesExhausted`` once the
retry budget is used.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .backoff import backoff_delay
from .client import (
    BadRequestError,
    ConnectionLostError,
    EndpointError,
    LabkitError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
)
from .timeline import Timeline

__all__ = ["with_retry", "RetriesExhausted", "RetryPolicy", "LAB", "PRODUCTION"]

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
    """Which errors are worth another try. ``LAB`` and ``PRODUCTION`` are ready."""

    name: str
    retry_transient_failures: bool

    def should_retry(self, error: Exception) -> bool:
        """True when waiting and sending the same request again may succeed."""
        if isinstance(error, RateLimitError):
            return not error.quota_exhausted
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
            hint = getattr(error, "retry_after", None)
            if honour_hint and hint is not None:
                delay = max(delay, hint)
            tell("wait", attempt=number, delay=delay)
            await asyncio.sleep(delay)
            continue

        tell("response", attempt=number)
        return result

    raise AssertionError("unreachable: the loop returns or raises")


def describe(error: BaseException) -> str:
    """A one-line reason for a report: the error's type and message."""
    return f"{type(error).__name__}: {error}"


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
