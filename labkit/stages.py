"""The stage logger: the few lines an operator wants while a batch runs.

It reads the timeline and writes ``[INIT]``, ``[POOL]``, ``[RETRY]`` and
``[DONE]`` lines through ``logging`` (logger ``"labkit"``), so a user can
silence or redirect them like any other log. Pool and retry lines are at most
one per ``every`` seconds of loop time, however many records are in flight.
"""

from __future__ import annotations

import logging

from .batch import Report
from .config import Config
from .timeline import Event, Timeline

__all__ = ["StageLogger", "logger"]

logger = logging.getLogger("labkit")

# Records that give up are named one by one up to this many; past it, one line
# counts the rest, since 90 near-identical lines help nobody.
GAVE_UP_LINES = 10


class StageLogger:
    """Subscribes to a timeline and logs one line per stage and per interval.

    ``verbose=True`` adds a ``[RETRY]`` line for every single retry.
    """

    def __init__(
        self,
        timeline: Timeline,
        *,
        every: float = 1.0,
        verbose: bool = False,
        log: logging.Logger = logger,
    ) -> None:
        self.every = every
        self.verbose = verbose
        self.log = log
        self._next_pool_line = 0.0
        self._waits: list[float] = []
        self._gave_up = 0
        timeline.subscribe(self.on_event)

    def init(self, config: Config, records: int, mode: str) -> None:
        """The ``[INIT]`` line: what is about to run, and with which knobs."""
        self.log.info(
            "[INIT] %d records, %s, MAX_CONCURRENCY=%d MAX_RETRIES=%d "
            "BASE_DELAY_MS=%d MAX_DELAY_MS=%d JITTER=%s HONOUR_HINT=%s "
            "RETRY_POLICY=%s, endpoint limit %d per %gs",
            records,
            mode,
            config.max_concurrency,
            config.max_retries,
            config.base_delay_ms,
            config.max_delay_ms,
            config.jitter,
            str(config.honour_hint).lower(),
            config.retry_policy,
            config.rate_limit,
            config.rate_window,
        )

    def done(self, report: Report) -> None:
        """The ``[DONE]`` line: the report's totals."""
        unlisted = self._gave_up - GAVE_UP_LINES
        if unlisted > 0 and not self.verbose:
            self.log.warning(
                "[RETRY] %d more records gave up; the report lists every reason",
                unlisted,
            )
        self.log.info("[DONE] %s", report.summary())

    def on_event(self, event: Event) -> None:
        """Turn one timeline event into a log line, when it deserves one."""
        if event.kind == "wait":
            self._waits.append(event.delay or 0.0)
            if self.verbose:
                self.log.info(
                    "[RETRY] %s attempt %d failed, retrying in %.3fs",
                    event.record_id, event.attempt, event.delay,
                )
        elif event.kind == "failed":
            self._gave_up += 1
            if self.verbose or self._gave_up <= GAVE_UP_LINES:
                self.log.warning(
                    "[RETRY] %s gave up: %s", event.record_id, event.detail
                )
        elif event.kind == "pool" and event.time >= self._next_pool_line:
            self._next_pool_line = event.time + self.every
            self._pool_line(event)

    def _pool_line(self, event: Event) -> None:
        self.log.info(
            "[POOL] t=%5.2fs active=%d pending=%d",
            event.time, event.active, event.pending,
        )
        if self._waits and not self.verbose:
            self.log.info(
                "[RETRY] %d retries scheduled, waits %.3f-%.3fs",
                len(self._waits), min(self._waits), max(self._waits),
            )
        self._waits.clear()
