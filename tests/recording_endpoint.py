"""A mock endpoint that also writes down, in order, every request and its end.

The fault, property and interrupt tests judge the batch by what the endpoint
saw, not by what the batch says about itself: how many requests each record
got, what each one was answered, how many were inside the endpoint at once.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict

import httpx

from labkit import MockEndpoint

# The answers a retry policy may try again after, by policy. A 5xx may carry
# the server's x-should-retry header, so it is judged separately.
RETRYABLE = {
    "lab": {"rate_limit_exceeded"},
    "production": {"rate_limit_exceeded", "deadline", "dropped"},
}


class RecordingEndpoint(MockEndpoint):
    """``MockEndpoint`` plus ``log``: (record id, what happened) in order.

    What happened is ``sent``, then one of ``ok`` (a usable completion),
    ``malformed``, the error code of a 429 (``rate_limit_exceeded`` or
    ``insufficient_quota``), ``5xx``, ``dropped`` (connection lost) or
    ``deadline`` (the request was cancelled inside the endpoint: the client's
    deadline fired, or the batch was cancelled).
    """

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.log: list[tuple[str, str]] = []
        self.inside = 0
        self.peak_inside = 0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        record_id = json.loads(request.content)["metadata"]["record_id"]
        self.log.append((record_id, "sent"))
        self.inside += 1
        self.peak_inside = max(self.peak_inside, self.inside)
        try:
            response = await super().handle(request)
        except httpx.TransportError:
            self.log.append((record_id, "dropped"))
            raise
        except asyncio.CancelledError:
            self.log.append((record_id, "deadline"))
            raise
        finally:
            self.inside -= 1

        self.log.append((record_id, _answer(response)))
        return response

    def sent(self) -> Counter[str]:
        """Requests per record id."""
        return Counter(rid for rid, what in self.log if what == "sent")

    def answers(self) -> dict[str, list[str]]:
        """Each record's answers, in order (one per request that ended)."""
        by_record: dict[str, list[str]] = defaultdict(list)
        for rid, what in self.log:
            if what != "sent":
                by_record[rid].append(what)
        return by_record

    def sent_after_success(self) -> list[str]:
        """Record ids that got a request after a usable completion."""
        succeeded: set[str] = set()
        offenders = []
        for rid, what in self.log:
            if what == "sent" and rid in succeeded:
                offenders.append(rid)
            elif what == "ok":
                succeeded.add(rid)
        return offenders


def retryable(answer: str, policy: str, should_retry: bool | None) -> bool:
    """Whether ``policy`` may send a record again after this answer."""
    if answer == "5xx":
        return policy == "production" and should_retry is not False
    return answer in RETRYABLE[policy]


def _answer(response: httpx.Response) -> str:
    if response.status_code >= 500:
        return "5xx"
    if response.status_code != 200:
        return str(response.json()["error"]["code"])
    try:
        response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return "malformed"
    return "ok"
