"""A timeline of what happened during a run, stamped with the loop's clock.

Every layer reports events here instead of printing. The stage logger and the
plots both read the same events, so what is printed and what is plotted agree.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas

__all__ = ["Event", "Timeline"]

# The kinds of event, in the order a record meets them.
KINDS = (
    "batch_start",  # the batch begins: detail holds the record count
    "pool",  # a sample of the pool: active and pending
    "request",  # one attempt is sent
    "response",  # an attempt succeeded
    "rate_limited",  # an attempt got 429; delay holds the server's hint
    "error",  # an attempt failed some other way; detail says how
    "wait",  # a retry is scheduled after delay seconds
    "succeeded",  # a record settled with a value
    "failed",  # a record settled with an error; detail is the reason
    "not_attempted",  # a record was cleared from the queue before it was sent
    "batch_end",  # the batch is settled
)


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened, ``time`` seconds after the timeline began."""

    time: float
    kind: str
    record_id: str | None = None
    attempt: int | None = None
    delay: float | None = None
    active: int | None = None
    pending: int | None = None
    detail: str | None = None


Listener = Callable[[Event], None]


class Timeline:
    """Collects events on the running loop's clock and tells listeners.

    ``keep_events=False`` counts events without keeping them, for batches so
    large that a list of every event would outgrow the results themselves.
    """

    def __init__(self, *, keep_events: bool = True) -> None:
        self.keep_events = keep_events
        self.events: list[Event] = []
        self.counts: Counter[str] = Counter()
        self.listeners: list[Listener] = []
        self._origin: float | None = None

    def now(self) -> float:
        """Seconds since the first event, on the running loop's clock."""
        loop_time = asyncio.get_running_loop().time()
        if self._origin is None:
            self._origin = loop_time
        return loop_time - self._origin

    def emit(self, kind: str, **fields: object) -> Event:
        """Record an event of ``kind`` now, and pass it to every listener."""
        event = Event(self.now(), kind, **fields)  # type: ignore[arg-type]
        self.counts[kind] += 1
        if self.keep_events:
            self.events.append(event)
        for listener in self.listeners:
            listener(event)
        return event

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(event)`` for every event from now on."""
        self.listeners.append(listener)

    def of_kind(self, *kinds: str) -> list[Event]:
        """The kept events of the given kinds, in time order."""
        return [event for event in self.events if event.kind in kinds]

    def to_dataframe(self) -> pandas.DataFrame:
        """The kept events as a pandas DataFrame, one row per event."""
        import pandas

        columns = [field for field in Event.__slots__]
        return pandas.DataFrame([asdict(e) for e in self.events], columns=columns)
