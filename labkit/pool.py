"""The pool: at most N jobs run at once, the rest wait their turn in order.

It keeps the shape of JavaScript's p-limit (run a job through it, read
``active_count`` and ``pending_count``, clear the queue) on top of
``anyio.CapacityLimiter``, which does the counting and the fair queueing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import anyio

from .client import LabkitError

__all__ = ["Pool", "QueueCleared"]

P = ParamSpec("P")
T = TypeVar("T")


class QueueCleared(LabkitError):
    """The job was still waiting for a slot when the pool's queue was cleared."""


class Pool:
    """Run async jobs with at most ``concurrency`` of them active at once.

    ``await pool.run(fn, *args)`` waits for a free slot, runs ``fn(*args)``
    and returns its result (or raises its error). Jobs start in the order they
    were submitted.

    >>> pool = Pool(9)
    >>> pool.active_count, pool.pending_count
    (0, 0)
    """

    def __init__(self, concurrency: int) -> None:
        _check_concurrency(concurrency)
        self._limiter = anyio.CapacityLimiter(concurrency)
        # The cancel scope of every job still waiting, in arrival order.
        self._waiting: dict[object, anyio.CancelScope] = {}

    @property
    def concurrency(self) -> int:
        """How many jobs may run at once. Setting it resizes the pool live."""
        return int(self._limiter.total_tokens)

    @concurrency.setter
    def concurrency(self, value: int) -> None:
        _check_concurrency(value)
        self._limiter.total_tokens = value

    @property
    def active_count(self) -> int:
        """Jobs running now (p-limit's ``activeCount``)."""
        return self._limiter.statistics().borrowed_tokens

    @property
    def pending_count(self) -> int:
        """Jobs waiting for a slot (p-limit's ``pendingCount``)."""
        return len(self._still_waiting())

    async def run(
        self,
        job: Callable[P, Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Wait for a slot, then run ``job(*args, **kwargs)`` and return its result.

        Raises ``QueueCleared`` if ``clear_queue()`` was called while the job
        was still waiting; a job that had started runs to its end.
        """
        token = object()
        await self._wait_for_slot(token)

        try:
            return await job(*args, **kwargs)
        finally:
            self._limiter.release_on_behalf_of(token)

    def clear_queue(self) -> int:
        """Drop every waiting job and return how many there were.

        Each dropped job's ``run()`` raises ``QueueCleared``, so nothing that
        awaits it hangs (the trap p-limit's ``clearQueue`` once had).
        """
        cleared = self._still_waiting()
        for token in cleared:
            self._waiting.pop(token).cancel()
        return len(cleared)

    def _still_waiting(self) -> list[object]:
        # A job handed a slot a moment ago may not have resumed yet: it is
        # already active (the limiter counts it), so it is neither pending nor
        # clearable, and cancelling it now would not stop it anyway.
        granted = set(self._limiter.statistics().borrowers)
        return [token for token in self._waiting if token not in granted]

    async def _wait_for_slot(self, token: object) -> None:
        with anyio.CancelScope() as scope:
            self._waiting[token] = scope
            try:
                await self._limiter.acquire_on_behalf_of(token)
            finally:
                self._waiting.pop(token, None)

        if scope.cancelled_caught:
            raise QueueCleared("cleared from the pool's queue before it started")


def _check_concurrency(value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"concurrency={value!r} must be a whole number >= 1")
