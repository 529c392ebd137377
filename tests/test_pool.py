"""The pool: the cap, the counts, order, errors, resizing and cancellation."""

from __future__ import annotations

import asyncio

import pytest

from labkit import Pool, QueueCleared, run_virtual


def _run_jobs(pool, count, seconds=0.1):
    """Run ``count`` jobs through ``pool``; return start order and peak active."""
    async def scenario():
        started, peak = [], 0

        async def job(index):
            nonlocal peak
            started.append(index)
            peak = max(peak, pool.active_count)
            await asyncio.sleep(seconds)
            return index

        results = await asyncio.gather(*(pool.run(job, i) for i in range(count)))
        return results, started, peak

    return run_virtual(scenario)


def test_no_more_than_the_ceiling_run_and_jobs_start_in_order():
    results, started, peak = _run_jobs(Pool(3), 10)
    assert results == list(range(10))
    assert started == list(range(10))
    assert peak == 3


def test_counts_show_active_at_the_ceiling_while_pending_drains():
    pool = Pool(2)

    async def scenario():
        tasks = [asyncio.create_task(pool.run(asyncio.sleep, 1.0)) for _ in range(5)]
        samples = []
        await asyncio.sleep(0.5)  # sample between the jobs' ends, never on one
        for _ in range(3):
            samples.append((pool.active_count, pool.pending_count))
            await asyncio.sleep(1.0)
        await asyncio.gather(*tasks)
        samples.append((pool.active_count, pool.pending_count))
        return samples

    assert run_virtual(scenario) == [(2, 3), (2, 1), (1, 0), (0, 0)]


def test_a_failing_job_raises_and_frees_its_slot():
    pool = Pool(1)

    async def scenario():
        async def boom():
            raise KeyError("bad job")

        with pytest.raises(KeyError, match="bad job"):
            await pool.run(boom)
        return pool.active_count, await pool.run(asyncio.sleep, 0, "next")

    assert run_virtual(scenario) == (0, "next")


def test_resizing_live_lets_waiting_jobs_start():
    pool = Pool(1)

    async def scenario():
        tasks = [asyncio.create_task(pool.run(asyncio.sleep, 1.0)) for _ in range(4)]
        await asyncio.sleep(0.1)
        before = pool.active_count
        pool.concurrency = 4
        await asyncio.sleep(0)
        after = pool.active_count
        await asyncio.gather(*tasks)
        return before, after, pool.concurrency

    assert run_virtual(scenario) == (1, 4, 4)


def test_cancelling_a_running_job_frees_its_slot():
    pool = Pool(1)

    async def scenario():
        running = asyncio.create_task(pool.run(asyncio.sleep, 10))
        waiting = asyncio.create_task(pool.run(asyncio.sleep, 0, "ran"))
        await asyncio.sleep(0.1)
        running.cancel()
        return await waiting, pool.active_count

    assert run_virtual(scenario) == ("ran", 0)


def test_a_job_just_handed_a_slot_is_active_not_cleared():
    pool = Pool(1)

    async def scenario():
        async def first():
            result = await pool.run(asyncio.sleep, 0.1, 0)
            # The slot was just passed to job 1, which has not resumed yet.
            return result, pool.active_count, pool.pending_count, pool.clear_queue()

        tasks = [asyncio.create_task(first())]
        tasks += [asyncio.create_task(pool.run(asyncio.sleep, 0.1, i))
                  for i in (1, 2, 3)]
        return await asyncio.gather(*tasks, return_exceptions=True)

    (value, active, pending, cleared), *rest = run_virtual(scenario)
    assert (value, active, pending, cleared) == (0, 1, 2, 2)
    assert rest[0] == 1
    assert all(isinstance(r, QueueCleared) for r in rest[1:])


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "3"])
def test_an_invalid_concurrency_is_refused(value):
    with pytest.raises(ValueError, match="concurrency"):
        Pool(value)
    with pytest.raises(ValueError, match="concurrency"):
        Pool(2).concurrency = value
