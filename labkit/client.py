"""The client call: one request for one record, and the errors it can raise.

A 429 becomes a ``RateLimitError`` carrying the server's wait hint and its
error code; every other failure becomes an ``EndpointError`` subclass that the
retry policy can tell apart. The deadline is ``asyncio.timeout`` because an
in-process transport ignores httpx's own timeouts.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from email.utils import parsedate_to_datetime

import httpx

from .mock_server import CHAT_PATH
from .records import Record

__all__ = [
    "LabkitError",
    "RateLimitError",
    "EndpointError",
    "BadRequestError",
    "ServerError",
    "MalformedResponseError",
    "RequestTimeoutError",
    "ConnectionLostError",
    "call_llm",
    "chat_request",
    "parse_retry_after",
]

# The longest wait a hint may ask for; a larger one is clamped, not obeyed.
MAX_HINT_SECONDS = 60.0
QUOTA_CODES = frozenset({"insufficient_quota", "quota_exceeded"})


class LabkitError(Exception):
    """Base class of every error labkit raises on purpose."""


class RateLimitError(LabkitError):
    """HTTP 429: the endpoint refused the request because of a limit.

    ``retry_after`` is the server's wait hint in seconds (``None`` when it gave
    none); ``code`` is its error code. A spent quota (``quota_exhausted``) is a
    429 too, but waiting will not fix it.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        code: str = "rate_limit_exceeded",
        should_retry: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status = 429
        self.retry_after = retry_after
        self.code = code
        self.should_retry = should_retry

    @property
    def quota_exhausted(self) -> bool:
        """True when the code says the quota is spent: not worth retrying."""
        return self.code in QUOTA_CODES


class EndpointError(LabkitError):
    """A failure other than a rate limit; ``status`` is ``None`` with no answer."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        should_retry: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.should_retry = should_retry


class BadRequestError(EndpointError):
    """A 4xx other than 429: the request itself is wrong; retrying repeats it."""


class ServerError(EndpointError):
    """A 5xx: the server failed; often transient."""


class MalformedResponseError(EndpointError):
    """A 200 whose body is not a usable completion."""


class RequestTimeoutError(EndpointError):
    """No answer before the deadline."""


class ConnectionLostError(EndpointError):
    """The connection failed or dropped before an answer arrived."""


def chat_request(record: Record) -> dict[str, object]:
    """The chat-completions body that asks the LLM to transform one record."""
    return {
        "model": "carvedrock-mock",
        "messages": [
            {"role": "system", "content": "Turn the customer note into a ticket."},
            {"role": "user", "content": record.note},
        ],
        "metadata": {"record_id": record.id},
    }


async def call_llm(
    client: httpx.AsyncClient,
    record: Record,
    *,
    timeout: float = 10.0,
    pacer: AbstractAsyncContextManager[object] | None = None,
) -> str:
    """Send one record to the endpoint and return the completion's text.

    Raises ``RateLimitError`` on 429 (with the parsed wait hint), and an
    ``EndpointError`` subclass for every other failure, including no answer
    within ``timeout`` seconds.
    """
    try:
        async with pacer or nullcontext(), asyncio.timeout(timeout):
            response = await client.post(CHAT_PATH, json=chat_request(record))
    except TimeoutError:
        raise RequestTimeoutError(f"no answer within {timeout:g}s") from None
    except httpx.TransportError as error:
        raise ConnectionLostError(f"connection lost: {error}") from error

    if hasattr(pacer, "observe"):
        pacer.observe(response)  # type: ignore[union-attr]
    raise_for_status(response)
    return read_completion(response)


def raise_for_status(response: httpx.Response) -> None:
    """Turn a non-2xx response into the matching typed error."""
    if response.is_success:
        return

    code, message = _error_fields(response)
    should_retry = _should_retry_header(response.headers)
    if response.status_code == 429:
        raise RateLimitError(
            f"429 {code}: {message}",
            retry_after=parse_retry_after(response.headers),
            code=code,
            should_retry=should_retry,
        )

    kind = ServerError if response.status_code >= 500 else BadRequestError
    raise kind(
        f"{response.status_code} {code}: {message}",
        status=response.status_code,
        code=code,
        should_retry=should_retry,
    )


def read_completion(response: httpx.Response) -> str:
    """The assistant's text in a chat completion, or ``MalformedResponseError``."""
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise MalformedResponseError(
            "the 200 response is not a chat completion", status=response.status_code
        ) from None
    if not isinstance(content, str):
        raise MalformedResponseError("the completion has no text", status=200)
    return content


def parse_retry_after(
    headers: Mapping[str, str],
    *,
    now: float | None = None,
) -> float | None:
    """The server's wait hint in seconds, or ``None`` when there is no usable one.

    Prefers ``retry-after-ms`` (precise) over ``retry-after``, which may hold
    seconds or an HTTP date (``now`` is the wall-clock time to measure a date
    from). Garbage and negative values give ``None``, so the caller falls back
    to its own backoff; values over a minute are clamped to a minute.

    >>> parse_retry_after({"retry-after-ms": "250", "retry-after": "1"})
    0.25
    """
    # Header names are case-insensitive, also when a plain dict is passed.
    headers = httpx.Headers(headers)
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        text = headers.get(name)
        if text is None:
            continue
        seconds = _seconds(text.strip(), scale, now)
        if seconds is not None:
            return min(seconds, MAX_HINT_SECONDS)
    return None


def _seconds(text: str, scale: float, now: float | None) -> float | None:
    try:
        value = float(text) * scale
    except ValueError:
        value = _seconds_until_date(text, now) if scale == 1.0 else None
    if value is None or math.isnan(value) or value < 0:
        return None
    return value


def _seconds_until_date(text: str, now: float | None) -> float | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    # An HTTP date is wall-clock time, so it is measured against the wall clock.
    wall_now = time.time() if now is None else now
    return max(moment.timestamp() - wall_now, 0.0)


def _error_fields(response: httpx.Response) -> tuple[str, str]:
    try:
        error = response.json()["error"]
        return str(error.get("code") or "unknown"), str(error.get("message") or "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return "unknown", response.text[:200]


def _should_retry_header(headers: Mapping[str, str]) -> bool | None:
    value = headers.get("x-should-retry", "").strip().lower()
    return {"true": True, "false": False}.get(value)
