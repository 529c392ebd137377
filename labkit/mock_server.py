"""An in-process stand-in for a rate-limited LLM endpoint, mounted under httpx.

``MockEndpoint`` is an async request handler behind ``httpx.MockTransport``,
so the client code that talks to it is the code that would talk to a real
server. It accepts ``limit`` requests per fixed ``window`` (the grid starts at
its first request) and answers the overflow with HTTP 429 and the headers real
providers send. Everything random (latency, faults) comes from its own seed.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from .config import Config

__all__ = [
    "MockEndpoint",
    "Faults",
    "FAULT_KINDS",
    "WindowLoad",
    "transform_note",
    "CHAT_PATH",
]

CHAT_PATH = "/v1/chat/completions"
BASE_URL = "http://mock-llm.local"
MAX_NOTE_CHARS = 4_000

# A hair of tolerance so a request timed exactly on a window boundary lands in
# the new window despite floating-point error in the loop's clock.
_BOUNDARY_EPSILON = 1e-9


# The faults the endpoint can inject, in the order one draw tests them.
FAULT_KINDS = ("quota", "server_error", "timeout", "malformed", "disconnect", "spike")


@dataclass(frozen=True)
class Faults:
    """Seeded fault injection: each rate is the chance per accepted request.

    ``server_error`` answers 500/502/503; ``timeout`` never answers (the
    client's deadline fires); ``malformed`` answers 200 with a body that is not
    a completion; ``disconnect`` drops the connection; ``spike`` adds
    ``spike_seconds`` of latency; ``quota`` answers 429 with the code that
    says the quota is spent, which no wait will fix. The rates add up to at
    most 1, since one draw picks at most one fault per request.

    ``should_retry`` puts an ``x-should-retry`` header (``true`` or
    ``false``) on every injected error answer, as some providers do; ``None``
    sends none.

    >>> Faults.parse("server_error=0.1,timeout=0.02").server_error
    0.1
    """

    server_error: float = 0.0
    timeout: float = 0.0
    malformed: float = 0.0
    disconnect: float = 0.0
    spike: float = 0.0
    quota: float = 0.0
    spike_seconds: float = 5.0
    should_retry: bool | None = None

    def __post_init__(self) -> None:
        for name in FAULT_KINDS:
            rate = getattr(self, name)
            if not _is_number(rate) or not 0.0 <= rate <= 1.0:
                raise ValueError(
                    f"fault rate {name}={rate!r} is not allowed; "
                    "allowed: a number from 0 to 1"
                )
        if self.total > 1.0 + 1e-9:
            raise ValueError(
                f"fault rates add up to {self.total:g}; allowed: at most 1 "
                "(one draw picks at most one fault per request)"
            )
        if not _is_number(self.spike_seconds) or not 0 <= self.spike_seconds < 1e6:
            raise ValueError(
                f"spike_seconds={self.spike_seconds!r} is not allowed; "
                "allowed: a number of seconds from 0 to 1000000"
            )
        if self.should_retry not in (None, True, False):
            raise ValueError(
                f"should_retry={self.should_retry!r} is not allowed; "
                "allowed: True, False or None"
            )

    @property
    def total(self) -> float:
        """The chance that a request meets some fault."""
        return sum(getattr(self, name) for name in FAULT_KINDS)

    def draw(self, rng: random.Random) -> str | None:
        """The fault for one request, or ``None``; one draw per request."""
        roll = rng.random()
        for name in FAULT_KINDS:
            rate = getattr(self, name)
            if roll < rate:
                return name
            roll -= rate
        return None

    @classmethod
    def parse(cls, spec: str) -> Faults:
        """Faults from text like ``"server_error=0.05,timeout=0.01"`` (the CLI's form).

        Names are the fault kinds plus ``spike_seconds`` and ``should_retry``
        (``true`` or ``false``). Raises ``ValueError`` naming the part at
        fault and what is allowed.
        """
        values: dict[str, object] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, equals, text = (piece.strip() for piece in part.partition("="))
            if not equals or not text:
                raise ValueError(f"{part!r} is not name=value; e.g. timeout=0.05")
            if name in values:
                raise ValueError(f"{name!r} is given twice")
            values[name] = _parse_fault_value(name, text)
        return cls(**values)  # type: ignore[arg-type]


def _parse_fault_value(name: str, text: str) -> object:
    if name == "should_retry":
        flag = {"true": True, "false": False}.get(text.lower())
        if flag is None:
            raise ValueError(f"should_retry={text!r}; allowed: true or false")
        return flag

    allowed = (*FAULT_KINDS, "spike_seconds")
    if name not in allowed:
        raise ValueError(
            f"unknown fault {name!r}; allowed: {', '.join(allowed)}, should_retry"
        )
    try:
        return float(text)
    except ValueError:
        unit = "seconds" if name == "spike_seconds" else "a rate from 0 to 1"
        raise ValueError(f"{name}={text!r} is not a number; allowed: {unit}") from None


def _is_number(value: object) -> bool:
    # NaN passes no range check, and True is not a rate anyone means.
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not math.isnan(value)
    )


@dataclass
class WindowLoad:
    """What one fixed window saw: requests served and requests refused."""

    served: int = 0
    rejected: int = 0


@dataclass
class EndpointStats:
    """Everything the endpoint saw, for plots and tests."""

    requests: int = 0
    served: int = 0
    rate_limited: int = 0
    bad_requests: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    windows: dict[int, WindowLoad] = field(default_factory=dict)
    served_ids: Counter[str] = field(default_factory=Counter)

    @property
    def peak_served(self) -> int:
        """The most requests served in any one window."""
        return max((w.served for w in self.windows.values()), default=0)


class MockEndpoint:
    """A chat-completions endpoint that enforces ``limit`` requests per window.

    Use ``endpoint.client()`` for an ``httpx.AsyncClient`` wired to it. The
    endpoint must be used from one event loop, since it reads that loop's clock.

    >>> endpoint = MockEndpoint(limit=10, window=1.0)
    """

    def __init__(
        self,
        *,
        limit: int = 10,
        window: float = 1.0,
        latency: float = 0.0,
        latency_sigma: float = 0.0,
        faults: Faults | None = None,
        seed: int = 0,
    ) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit={limit!r} must be a whole number >= 1")
        if not 0 < window < math.inf:
            raise ValueError(f"window={window} must be a positive, finite number")
        if not (0 <= latency < math.inf and 0 <= latency_sigma < math.inf):
            raise ValueError(
                f"latency={latency} and latency_sigma={latency_sigma} must be "
                "finite and >= 0"
            )

        self.limit = limit
        self.window = window
        self.latency = latency
        self.latency_sigma = latency_sigma
        self.faults = faults or Faults()
        self.stats = EndpointStats()
        self._rng = random.Random(seed)
        self._grid_start: float | None = None

    @classmethod
    def for_config(cls, config: Config, **options: Any) -> MockEndpoint:
        """The endpoint whose limit and window a ``Config`` describes.

        ``options`` are the other keywords (``latency``, ``faults``, ``seed``).
        """
        return cls(limit=config.rate_limit, window=config.rate_window, **options)

    @property
    def transport(self) -> httpx.MockTransport:
        """An httpx transport that delivers every request to this endpoint."""
        return httpx.MockTransport(self.handle)

    def client(self, **kwargs: object) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` whose requests reach this endpoint."""
        return httpx.AsyncClient(
            transport=self.transport,
            base_url=BASE_URL,
            **kwargs,  # type: ignore[arg-type]
        )

    async def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request: 429 over the limit, 400 if unusable, else 200."""
        self.stats.requests += 1
        index, reset = self._window_at(asyncio.get_running_loop().time())
        load = self.stats.windows.setdefault(index, WindowLoad())

        if load.served >= self.limit:
            load.rejected += 1
            self.stats.rate_limited += 1
            return self._rate_limited(reset, "rate_limit_exceeded")

        # Only an accepted request uses up the window, as on real gateways.
        load.served += 1
        headers = self._limit_headers(self.limit - load.served, reset)
        return await self._serve(request, headers, reset)

    async def _serve(
        self,
        request: httpx.Request,
        headers: dict[str, str],
        reset: float,
    ) -> httpx.Response:
        fault = self.faults.draw(self._rng)
        if fault:
            self.stats.faults[fault] += 1

        await asyncio.sleep(self._draw_latency(fault))
        if fault == "quota":
            return self._with_retry_header(
                self._rate_limited(reset, "insufficient_quota")
            )
        if fault == "server_error":
            status = self._rng.choice([500, 502, 503])
            return self._with_retry_header(
                _error(status, "server_error", "the model is overloaded", headers)
            )
        if fault == "timeout":
            await asyncio.Future()  # never answers; the client's deadline fires
        if fault == "disconnect":
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )

        try:
            record_id, note = _read_chat_request(request)
        except ValueError as error:
            self.stats.bad_requests += 1
            return _error(400, "invalid_request_error", str(error), headers)

        if fault == "malformed":
            return httpx.Response(200, headers=headers, text='{"choices": [')
        self.stats.served_ids[record_id] += 1
        self.stats.served += 1
        return httpx.Response(200, headers=headers, json=_completion(record_id, note))

    def _with_retry_header(self, response: httpx.Response) -> httpx.Response:
        # Only injected faults carry the header: a plain 429 means "wait".
        if self.faults.should_retry is not None:
            value = "true" if self.faults.should_retry else "false"
            response.headers["x-should-retry"] = value
        return response

    def _window_at(self, now: float) -> tuple[int, float]:
        """The index of the window holding ``now`` and seconds until it resets."""
        if self._grid_start is None:
            self._grid_start = now
        elapsed = now - self._grid_start
        index = math.floor(elapsed / self.window + _BOUNDARY_EPSILON)
        reset = (index + 1) * self.window - elapsed
        return index, max(reset, 0.0)

    def _draw_latency(self, fault: str | None) -> float:
        latency = self.latency
        if self.latency_sigma and latency:
            # Lognormal with the given median: LLM latencies have a long tail.
            latency = self._rng.lognormvariate(math.log(latency), self.latency_sigma)
        if fault == "spike":
            latency += self.faults.spike_seconds
        return latency

    def _limit_headers(self, remaining: int, reset: float) -> dict[str, str]:
        return {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(max(remaining, 0)),
            "x-ratelimit-reset-requests": f"{math.ceil(reset * 1000)}ms",
        }

    def _rate_limited(self, reset: float, code: str) -> httpx.Response:
        headers = self._limit_headers(0, reset)
        if code == "rate_limit_exceeded":
            # Milliseconds until the next slot frees; seconds rounded up, never 0.
            headers["retry-after-ms"] = str(math.ceil(reset * 1000))
            headers["retry-after"] = str(max(1, math.ceil(reset)))
            message = f"Rate limit of {self.limit} requests per {self.window:g}s"
        else:
            message = "You exceeded your current quota"
        return _error(429, code, message, headers)


def transform_note(note: str) -> str:
    """The mock LLM's answer for a note: a ticket line, the same every time.

    >>> transform_note("Invoice 12 was charged twice. Help!")
    'billing: Invoice 12 was charged twice.'
    """
    text = " ".join(note.split())
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    if len(first) > 80:
        first = first[:77].rstrip() + "..."
    return f"{_category(text)}: {first}"


_CATEGORIES = {
    "billing": ("invoice", "charged", "refund", "payment"),
    "shipping": ("order", "transit", "delivery", "address", "arrived"),
    "account": ("log in", "password", "account"),
    "care": ("oil", "clean", "how do i"),
}


def _category(text: str) -> str:
    lowered = text.lower()
    for category, words in _CATEGORIES.items():
        if any(word in lowered for word in words):
            return category
    return "general"


def _read_chat_request(request: httpx.Request) -> tuple[str, str]:
    """The record id and note of a chat request, or ``ValueError`` saying why not."""
    if request.url.path != CHAT_PATH:
        raise ValueError(f"unknown path {request.url.path}; use {CHAT_PATH}")
    try:
        body = json.loads(request.content)
    except ValueError:
        raise ValueError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")

    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    user = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    note = user[-1].get("content") if user else None
    if not isinstance(note, str) or not note.strip():
        raise ValueError("the last user message needs non-empty text 'content'")
    if len(note) > MAX_NOTE_CHARS:
        raise ValueError(
            f"the note is {len(note)} characters; at most {MAX_NOTE_CHARS}"
        )

    metadata = body.get("metadata") or {}
    return str(metadata.get("record_id", "")), note


def _completion(record_id: str, note: str) -> dict[str, object]:
    answer = transform_note(note)
    return {
        "id": f"chatcmpl-{record_id}",
        "object": "chat.completion",
        "model": "carvedrock-mock",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": len(note.split()),
            "completion_tokens": len(answer.split()),
        },
    }


def _error(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str],
) -> httpx.Response:
    kind = "rate_limit_error" if status == 429 else code
    body = {"error": {"message": message, "type": kind, "code": code}}
    return httpx.Response(status, headers=headers, json=body)
