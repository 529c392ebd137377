"""The batch: every record through the pool and the retry loop, every outcome settled.

``run_batch`` is the whole pipeline in one call. ``settle`` and ``partition``
are its last step on their own, for a list of jobs you already hold: they are
Python's version of JavaScript's ``Promise.allSettled`` and a filter.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass
from typing import Any

from .client import call_llm
from .config import Config
from .mock_server import MockEndpoint
from .pool import Pool, QueueCleared
from .records import Record
from .retry import POLICIES, RetriesExhausted, failure_kind, failure_reason, with_retry
from .timeline import Timeline

__all__ = ["Outcome", "Report", "BatchRun", "run_batch", "settle", "partition"]

SUCCEEDED, FAILED, NOT_ATTEMPTED = "succeeded", "failed", "not_attempted"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one record ended: ``succeeded`` with a value, or not, with a reason.

    ``attempts`` counts the requests the record got. A record that did not
    succeed has a ``kind`` (``rate_limited``, ``timeout``, ``not_attempted``,
    ... see ``labkit.retry.failure_kind``) and a ``reason`` that starts with
    that kind and the attempts it took.
    """

    record_id: str
    status: str
    value: str | None = None
    reason: str | None = None
    error_type: str | None = None
    attempts: int = 0
    kind: str | None = None

    @property
    def ok(self) -> bool:
        """True when the record succeeded."""
        return self.status == SUCCEEDED

    @classmethod
    def from_result(cls, record_id: str, result: object, attempts: int) -> Outcome:
        """The outcome of a finished job: its value, or the error it raised."""
        if not isinstance(result, BaseException):
            return cls(record_id, SUCCEEDED, value=result, attempts=attempts)  # type: ignore[arg-type]
        if isinstance(result, QueueCleared):
            return cls(
                record_id,
                NOT_ATTEMPTED,
                reason=f"not attempted: {result}",
                error_type="QueueCleared",
                kind="cleared",
            )

        if isinstance(result, RetriesExhausted):
            attempts = result.attempts
        return cls(
            record_id,
            FAILED,
            reason=failure_reason(result, attempts),
            error_type=type(result).__name__,
            attempts=attempts,
            kind=failure_kind(result),
        )


@dataclass(frozen=True)
class Report:
    """Every record of a batch exactly once, in input order, and what it cost."""

    outcomes: tuple[Outcome, ...]
    duration: float
    requests: int
    rate_limited: int
    retries: int
    interrupted: bool = False

    @property
    def succeeded(self) -> list[Outcome]:
        """The records that got a value."""
        return [o for o in self.outcomes if o.status == SUCCEEDED]

    @property
    def failed(self) -> list[Outcome]:
        """The records that were tried and gave up, each with its reason."""
        return [o for o in self.outcomes if o.status == FAILED]

    @property
    def not_attempted(self) -> list[Outcome]:
        """The records never sent, because the batch was stopped first."""
        return [o for o in self.outcomes if o.status == NOT_ATTEMPTED]

    def summary(self) -> str:
        """The one line the ``[DONE]`` log prints."""
        line = (
            f"succeeded: {len(self.succeeded)}, failed: {len(self.failed)}, "
            f"requests: {self.requests}, 429s: {self.rate_limited}, "
            f"retries: {self.retries}, duration: {self.duration:.2f}s"
        )
        if self.not_attempted:
            line += f", not attempted: {len(self.not_attempted)}"
        return line + (" (interrupted)" if self.interrupted else "")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the totals, then one entry per record."""
        return {
            "succeeded": len(self.succeeded),
            "failed": len(self.failed),
            "not_attempted": len(self.not_attempted),
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "retries": self.retries,
            "duration_s": round(self.duration, 6),
            "interrupted": self.interrupted,
            "outcomes": [asdict(o) for o in self.outcomes],
        }


async def settle(jobs: Mapping[str, Awaitable[Any]]) -> list[Outcome]:
    """Await every job and return one ``Outcome`` per job, failures included.

    Like ``Promise.allSettled``: one failing job does not stop the others.
    Cancelling the caller still cancels every job.
    """
    results = await asyncio.gather(*jobs.values(), return_exceptions=True)
    outcomes = []
    for record_id, result in zip(jobs, results, strict=True):
        if isinstance(result, BaseException) and not isinstance(
            result, Exception | asyncio.CancelledError
        ):
            raise result  # KeyboardInterrupt and friends are not outcomes
        outcomes.append(Outcome.from_result(record_id, result, attempts=0))
    return outcomes


def partition(outcomes: Iterable[Outcome]) -> tuple[list[Outcome], list[Outcome]]:
    """Split outcomes into (succeeded, not succeeded), keeping their order."""
    succeeded: list[Outcome] = []
    others: list[Outcome] = []
    for outcome in outcomes:
        (succeeded if outcome.ok else others).append(outcome)
    return succeeded, others


class BatchRun:
    """One batch in progress; ``report()`` can be read at any time, even mid-run.

    Most callers want ``run_batch``. Hold a ``BatchRun`` when you need the
    partial report of a batch that was interrupted or cancelled.
    """

    def __init__(
        self,
        records: Iterable[Record],
        config: Config | None = None,
        *,
        endpoint: MockEndpoint | None = None,
        seed: int = 0,
        naive: bool = False,
        timeline: Timeline | None = None,
        pool: Pool | None = None,
        pacer: AbstractAsyncContextManager[object] | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
        sample_every: float | None = None,
        backlog: int = 1_000,
    ) -> None:
        self.config = config or Config()
        self.records = records
        self.endpoint = endpoint or MockEndpoint.for_config(self.config, seed=seed)
        self.timeline = timeline or Timeline()
        self.pool = None if naive else pool or Pool(self.config.max_concurrency)
        self.pacer = pacer
        self.on_outcome = on_outcome
        # Twenty samples a window: enough for the plots, and a virtual run's
        # cost grows with the samples, so a one-hour window must not take 72 000.
        self.sample_every = sample_every or self.config.rate_window / 20
        self.backlog = backlog
        _check_options(records, self.sample_every, backlog)
        self.rng = random.Random(seed)
        self.policy = POLICIES[self.config.retry_policy]

        self.settled: dict[str, Outcome] = {}
        self.in_flight: dict[str, int] = {}  # record id -> requests sent so far
        self.admitted: list[str] = []
        self._admitted_ids: set[str] = set()
        self.stopped = False
        self._start: float | None = None
        self._end: float | None = None

    async def run(self) -> Report:
        """Process every record and return the report of how each one ended.

        Cancelling the task that awaits this cancels every record in flight,
        waits for them to unwind, and then raises ``CancelledError``: it never
        returns a report as if the batch had finished. ``report(interrupted=True)``
        then gives the honest partial report.
        """
        loop = asyncio.get_running_loop()
        self._start = loop.time()
        self.timeline.emit("batch_start", detail=_count_hint(self.records))

        try:
            await self._run_all()
        finally:
            # Also on cancellation, so a partial report has its true duration.
            self._end = loop.time()

        self.timeline.emit("batch_end")
        return self.report()

    def stop(self) -> int:
        """Send no new record and clear the pool's queue; in-flight ones finish.

        Returns how many queued records were cleared. Every record that was
        not sent is reported as not attempted. Clearing ``batch.pool``'s
        queue directly has the same effect, provided a record was waiting in
        it: the batch learns of the clear from the records it cleared.
        """
        self.stopped = True
        return 0 if self.pool is None else self.pool.clear_queue()

    def report(self, *, interrupted: bool = False) -> Report:
        """The report so far: unsettled records count as not attempted or failed."""
        outcomes = [self._outcome_now(record_id) for record_id in self.admitted]

        # The records never admitted are known only for a list: a stopped
        # stream's report lists just the records it read, not the unread rest.
        if isinstance(self.records, list | tuple):
            seen = len(self.admitted)
            outcomes += [_never_sent(r.id) for r in self.records[seen:]]

        end = self._end if self._end is not None else _loop_time_or(self._start)
        counts = self.timeline.counts
        return Report(
            outcomes=tuple(outcomes),
            duration=(end or 0.0) - (self._start or 0.0),
            requests=counts["request"],
            rate_limited=counts["rate_limited"],
            retries=counts["wait"],
            interrupted=interrupted,
        )

    async def _run_all(self) -> None:
        async with self.endpoint.client() as client, asyncio.TaskGroup() as outer:
            monitor = outer.create_task(self._monitor())
            await self._feed(client)
            monitor.cancel()
            self._sample()

    async def _feed(self, client: Any) -> None:
        # Admission bounds how many records wait as tasks at once, so a batch of
        # 100 000 costs memory for its results, not for 100 000 waiting tasks.
        admission = asyncio.Semaphore(self.backlog)
        records = iter(self.records)
        async with asyncio.TaskGroup() as workers:
            while True:
                await admission.acquire()

                # A cleared queue means "no more": records not yet read stay
                # unsent, and a list's report lists them as not attempted. The
                # next record is read only now, so a stream loses none.
                record = None if self.stopped else next(records, None)
                if record is None:
                    break
                self._admit(record)
                workers.create_task(self._process(client, record, admission))

    def _admit(self, record: Record) -> None:
        if record.id in self._admitted_ids:
            raise ValueError(
                f"duplicate record id {record.id!r}: the report keys every "
                "record by its id, so each record needs its own"
            )
        self._admitted_ids.add(record.id)
        self.admitted.append(record.id)

    async def _process(
        self,
        client: Any,
        record: Record,
        admission: asyncio.Semaphore,
    ) -> None:
        try:
            if self.pool is None:
                value = await self._with_retry(client, record)
            else:
                value = await self.pool.run(self._with_retry, client, record)
        except Exception as error:
            if isinstance(error, QueueCleared):
                self.stopped = True
            self._settle(Outcome.from_result(record.id, error, self._sent(record)))
        else:
            self._settle(Outcome.from_result(record.id, value, self._sent(record)))
        finally:
            admission.release()

    async def _with_retry(self, client: Any, record: Record) -> str:
        self.in_flight[record.id] = 0

        async def attempt() -> str:
            self.in_flight[record.id] += 1
            return await call_llm(
                client, record, timeout=self.config.request_timeout, pacer=self.pacer
            )

        return await with_retry(
            attempt,
            max_retries=self.config.max_retries,
            base_delay=self.config.base_delay,
            max_delay=self.config.max_delay,
            jitter=self.config.jitter,
            honour_hint=self.config.honour_hint,
            policy=self.policy,
            rng=self.rng,
            timeline=self.timeline,
            record_id=record.id,
        )

    def _sent(self, record: Record) -> int:
        return self.in_flight.pop(record.id, 0)

    def _settle(self, outcome: Outcome) -> None:
        self.settled[outcome.record_id] = outcome

        # Its status is the event's kind: a record cleared from the queue did
        # not fail, so it must not be logged or plotted as giving up.
        self.timeline.emit(
            outcome.status,
            record_id=outcome.record_id,
            attempt=outcome.attempts,
            detail=outcome.reason,
        )
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    async def _monitor(self) -> None:
        # Sample after each sleep, so the first sample sees the batch started.
        while True:
            await asyncio.sleep(self.sample_every)
            self._sample()

    def _sample(self) -> None:
        self.timeline.emit("pool", active=self.active, pending=self.pending)

    @property
    def active(self) -> int:
        """Records holding a slot now (all in-flight records in naive mode)."""
        return len(self.in_flight) if self.pool is None else self.pool.active_count

    @property
    def pending(self) -> int:
        """Records admitted and waiting for a slot."""
        return 0 if self.pool is None else self.pool.pending_count

    def _outcome_now(self, record_id: str) -> Outcome:
        if record_id in self.settled:
            return self.settled[record_id]
        sent = self.in_flight.get(record_id, 0)
        if sent:
            plural = "" if sent == 1 else "s"
            return Outcome(
                record_id,
                FAILED,
                reason=(
                    f"interrupted after {sent} attempt{plural}: still in flight "
                    "when the batch stopped, so its answer is unknown"
                ),
                error_type="Interrupted",
                attempts=sent,
                kind="interrupted",
            )
        return _never_sent(record_id)


async def run_batch(
    records: Iterable[Record],
    config: Config | None = None,
    **options: Any,
) -> Report:
    """Run the whole pipeline over ``records`` and return its ``Report``.

    Every record goes through the pool (``config.max_concurrency`` at once)
    and the retry loop; every outcome is settled, so the report lists each
    record exactly once. Options are those of ``BatchRun``: ``endpoint``,
    ``seed``, ``naive`` (no pool: everything at once), ``timeline``, ``pool``,
    ``pacer``, ``on_outcome``, ``sample_every`` and ``backlog``.

    In a notebook: ``report = await run_batch(load_records())``.
    """
    return await BatchRun(records, config, **options).run()


def _check_options(
    records: Iterable[Record],
    sample_every: float,
    backlog: int,
) -> None:
    """Refuse options that would hang or confuse the batch before anything is sent."""
    if isinstance(backlog, bool) or not isinstance(backlog, int) or backlog < 1:
        raise ValueError(f"backlog={backlog!r} must be a whole number >= 1")
    if not 0 < sample_every < float("inf"):
        raise ValueError(f"sample_every={sample_every!r} must be a positive number")

    # A list can be checked whole; a stream is checked record by record.
    if isinstance(records, list | tuple):
        seen: set[str] = set()
        for record in records:
            if record.id in seen:
                raise ValueError(
                    f"duplicate record id {record.id!r}: each record needs its own"
                )
            seen.add(record.id)


def _never_sent(record_id: str) -> Outcome:
    return Outcome(
        record_id,
        NOT_ATTEMPTED,
        reason="not attempted: the batch stopped before this record was sent",
        error_type="NotAttempted",
        kind="not_attempted",
    )


def _count_hint(records: Iterable[Record]) -> str:
    return f"{len(records)} records" if isinstance(records, list | tuple) else "stream"


def _loop_time_or(default: float | None) -> float | None:
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return default
