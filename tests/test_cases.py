"""The field cases K1-K5 of shared/cases/CASES.md: their inputs, their outcomes."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from labkit import (
    Pool,
    QueueCleared,
    RateLimitError,
    RetriesExhausted,
    Timeline,
    backoff_delay,
    parse_retry_after,
    partition,
    run_virtual,
    settle,
    with_retry,
)
from labkit.client import BadRequestError, call_llm
from labkit.records import Record


# K1. Clearing the queue settles what it cleared.
def test_k1_clearing_the_queue_settles_every_cleared_job():
    async def scenario():
        pool = Pool(1)
        loop = asyncio.get_running_loop()

        async def job(index: int) -> int:
            await asyncio.sleep(0.05)
            return index

        tasks = [asyncio.create_task(pool.run(job, i)) for i in range(4)]
        await asyncio.sleep(0.01)  # job 0 is running, 1-3 are queued
        cleared = pool.clear_queue()
        counts = (pool.active_count, pool.pending_count)

        started = loop.time()
        outcomes = await settle({f"job{i}": task for i, task in enumerate(tasks)})
        waited = loop.time() - started
        after = await pool.run(job, 99)
        return cleared, counts, outcomes, waited, tasks, after

    cleared, counts, outcomes, waited, tasks, after = run_virtual(scenario)

    assert cleared == 3
    assert counts == (1, 0)
    assert waited < 1.0
    assert tasks[0].result() == 0
    for task in tasks[1:]:
        assert isinstance(task.exception(), QueueCleared)

    succeeded, others = partition(outcomes)
    assert [o.value for o in succeeded] == [0]
    assert len(others) == 3
    assert all("cleared" in o.reason for o in others)
    assert after == 99


# K2. Retry-After, in all the forms servers send.
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "250", "retry-after": "1"}, 0.25),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after-ms": "abc", "retry-after": "3"}, 3.0),
        ({}, None),
    ],
)
def test_k2_retry_after_forms(headers, expected):
    assert parse_retry_after(httpx.Headers(headers)) == expected


def test_k2_the_mocks_429_carries_both_hints_consistently(records):
    from labkit import MockEndpoint

    async def scenario():
        endpoint = MockEndpoint(limit=1, window=1.0)
        async with endpoint.client() as client:
            await call_llm(client, records[0])
            await asyncio.sleep(0.3)
            with pytest.raises(RateLimitError):
                await call_llm(client, records[1])
            response = await client.post(
                "/v1/chat/completions",
                json={"messages": [{"role": "user", "content": "hi"}]},
            )
        return response

    response = run_virtual(scenario)
    milliseconds = int(response.headers["retry-after-ms"])
    seconds = int(response.headers["retry-after"])
    assert milliseconds == 700
    assert seconds == 1  # 0.7 s rounded up, never 0


# K3. Backoff never overflows.
@pytest.mark.parametrize("base", [0.5, 1])
@pytest.mark.parametrize("retry", [10, 1023, 1024, 1025, 10_000, 10**9])
def test_k3_backoff_never_overflows(base, retry):
    assert backoff_delay(retry, base=base, cap=60, jitter="none") == 60
    jittered = backoff_delay(retry, base=base, cap=60, jitter="full",
                             rng=random.Random(retry))
    assert 0 <= jittered <= 60


# K4. Jitter never breaks the cap.
class _MaxRandom(random.Random):
    def random(self) -> float:
        return 1.0 - 2**-53  # the largest value random() can return


@pytest.mark.parametrize("jitter", ["none", "equal", "full"])
def test_k4_jitter_at_its_maximum_stays_under_the_cap(jitter):
    delay = backoff_delay(10, base=0.1, cap=0.5, jitter=jitter, rng=_MaxRandom())
    assert delay <= 0.5


@pytest.mark.parametrize("jitter", ["equal", "full"])
def test_k4_ten_thousand_draws_stay_in_range_and_spread(jitter):
    rng = random.Random(4)
    delays = [backoff_delay(10, base=0.1, cap=0.5, jitter=jitter, rng=rng)
              for _ in range(10_000)]
    assert all(0 <= d <= 0.5 for d in delays)
    assert sum(d == 0.5 for d in delays) < 10


# K5. Retries are retries, not attempts.
def _retry_scenario(handler, max_retries, base=0.1):
    """Requests made and waits taken by the retry loop against ``handler``."""
    async def scenario():
        timeline = Timeline()
        calls = 0

        async def attempt():
            nonlocal calls
            calls += 1
            transport = httpx.MockTransport(handler)
            async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
                return await call_llm(c, Record("R1", "a note"))

        try:
            await with_retry(attempt, max_retries=max_retries, base_delay=base,
                             max_delay=60, jitter="none", timeline=timeline)
        except Exception as error:  # the error is what the test looks at
            raised = error
        waits = [e.delay for e in timeline.of_kind("wait")]
        return calls, waits, raised

    return run_virtual(scenario)


def _always_429(request):
    return httpx.Response(429, json={"error": {"code": "rate_limit_exceeded"}})


@pytest.mark.parametrize(
    ("max_retries", "requests", "waits"),
    [(0, 1, []), (1, 2, [0.1]), (3, 4, [0.1, 0.2, 0.4])],
)
def test_k5_max_retries_counts_retries(max_retries, requests, waits):
    calls, taken, error = _retry_scenario(_always_429, max_retries)

    assert calls == requests
    assert taken == pytest.approx(waits)
    assert isinstance(error, RetriesExhausted)
    assert "retry budget exhausted" in str(error)
    assert isinstance(error.__cause__, RateLimitError)


def test_k5_a_400_is_sent_once_and_raised_unchanged():
    calls, waits, error = _retry_scenario(
        lambda request: httpx.Response(400, json={"error": {"code": "bad"}}), 3
    )
    assert (calls, waits) == (1, [])
    assert type(error) is BadRequestError


def test_k5_a_job_raising_value_error_runs_once():
    async def scenario():
        timeline = Timeline()
        calls = 0

        async def attempt():
            nonlocal calls
            calls += 1
            raise ValueError("not a retryable problem")

        with pytest.raises(ValueError, match="not a retryable"):
            await with_retry(attempt, max_retries=3, base_delay=0.1, max_delay=1,
                             timeline=timeline)
        return calls, timeline.of_kind("wait")

    assert run_virtual(scenario) == (1, [])
