"""Pacing: the window pacer reaches the floor with no 429; the bucket does not."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from labkit import Config, Faults, MockEndpoint, WindowPacer, make_pacer, simulate
from labkit.pacing import read_window
from labkit.runner import run_virtual


def _headers(limit: int, remaining: int, reset: str) -> dict[str, str]:
    return {
        "x-ratelimit-limit-requests": str(limit),
        "x-ratelimit-remaining-requests": str(remaining),
        "x-ratelimit-reset-requests": reset,
    }


def _paced(records, config=None, *, pacing="window", seed=0, **endpoint):
    endpoint = MockEndpoint(seed=seed, **endpoint)
    report = simulate(records, config or Config(), endpoint=endpoint, seed=seed,
                      pacer=make_pacer(pacing))
    return report, endpoint


@pytest.mark.parametrize(
    ("reset", "seconds"), [("250ms", 0.25), ("1s", 1.0), ("1.5", 1.5), ("0ms", 0.0)]
)
def test_the_reset_header_is_read_in_each_unit(reset, seconds):
    assert read_window(_headers(10, 3, reset)).reset == seconds


@pytest.mark.parametrize(
    "headers",
    [
        {},
        _headers(10, 3, "soon"),
        _headers(0, 0, "10ms"),
        _headers(10, -1, "10ms"),
        _headers(10, 3, "-5ms"),
        _headers(10, 3, "nanms"),
    ],
)
def test_missing_or_unusable_headers_say_nothing(headers):
    assert read_window(headers) is None


def test_the_window_pacer_reaches_the_floor_with_no_429(records):
    report, endpoint = _paced(records)

    assert len(report.succeeded) == 100
    assert report.rate_limited == 0
    assert report.requests == 100
    assert report.duration == pytest.approx(9.0, abs=0.01)
    assert endpoint.stats.peak_served == 10
    assert len(endpoint.stats.windows) == 10


def test_pacing_gives_the_same_report_for_the_same_seed(records):
    first, _ = _paced(records, Config(max_concurrency=30), seed=4)
    again, _ = _paced(records, Config(max_concurrency=30), seed=4)
    assert first.to_dict() == again.to_dict()


@pytest.mark.parametrize("concurrency", [1, 9, 50, 200])
def test_no_pool_size_gets_a_429_through_the_pacer(records, concurrency):
    report, _ = _paced(records, Config(max_concurrency=concurrency))
    assert report.rate_limited == 0
    assert len(report.succeeded) == 100
    assert report.duration <= 9.0 * 1.02


def test_slow_answers_meet_no_429_either(records):
    config = Config(max_concurrency=30)
    report, _ = _paced(records, config, latency=0.5, latency_sigma=0.5)
    assert report.rate_limited == 0
    assert len(report.succeeded) == 100


def test_requests_that_never_answer_do_not_stall_the_pacer(records):
    config = Config(retry_policy="production", request_timeout_ms=500)
    report, _ = _paced(records, config, faults=Faults(timeout=0.1), seed=3)

    assert len(report.outcomes) == 100
    assert len(report.succeeded) + len(report.failed) == 100
    assert report.rate_limited == 0
    assert report.retries > 0  # timeouts happened, and were retried


def test_the_leaky_bucket_finishes_but_misses_the_windows(records):
    # aiolimiter's bursts start on the client's schedule, not the server's.
    report, _ = _paced(records, pacing="bucket")
    assert len(report.succeeded) == 100
    assert report.rate_limited > 0
    assert report.duration > 9.0 * 1.05


def test_an_answer_sets_how_many_more_may_go_and_when():
    async def scenario() -> list[float]:
        pacer, loop_times = WindowPacer(), []
        async with pacer:  # the probe
            pass
        pacer.observe(httpx.Response(200, headers=_headers(10, 2, "500ms")))
        for _ in range(3):
            async with pacer:
                pass
            loop_times.append(asyncio.get_running_loop().time())
        return loop_times

    # Two more fit in this window; the third waits for the reset at 0.5 s.
    times = run_virtual(scenario)
    assert times[1] - times[0] == 0
    assert times[2] - times[0] == pytest.approx(0.5)


def test_an_answer_from_a_window_already_over_is_ignored():
    async def scenario() -> tuple[WindowPacer, float | None]:
        pacer, rolled_over = WindowPacer(), asyncio.Event()

        async def probe() -> None:
            async with pacer:  # sent in window 0
                pass
            pacer.observe(httpx.Response(200, headers=_headers(2, 0, "100ms")))
            await rolled_over.wait()
            # A late answer about window 0, arriving in window 1.
            pacer.observe(httpx.Response(200, headers=_headers(2, 0, "900ms")))

        task = asyncio.create_task(probe())
        await asyncio.sleep(0)
        async with pacer:  # waits for window 0 to reset, then opens window 1
            pass
        rolled_over.set()
        await task
        return pacer, pacer.resets_at

    pacer, resets_at = run_virtual(scenario)
    assert pacer.window_number == 1
    assert pacer.remaining == 1
    assert resets_at is None  # window 1's end is still unknown


def test_a_request_sent_as_the_window_may_be_ending_counts_in_the_next():
    async def scenario() -> tuple[int, int]:
        pacer = WindowPacer()
        async with pacer:  # the probe, at 0
            pass
        pacer.observe(httpx.Response(200, headers=_headers(10, 9, "1000ms")))

        # The window ends between 0.999 s (the countdown is rounded up to the
        # millisecond) and 1.0 s: a request sent at 0.9995 s may land in either.
        await asyncio.sleep(0.9995)
        for _ in range(9):
            async with pacer:
                pass
        async with pacer:  # waits for the reset, opens the next window
            pass
        before_answer = pacer.remaining

        # The server's answer settles it: the nine landed in the last window.
        pacer.observe(httpx.Response(200, headers=_headers(10, 9, "1000ms")))
        return before_answer, pacer.remaining

    # The next window opens with 10 - 9 (the late ones); this request took 1.
    assert run_virtual(scenario) == (0, 9)


def test_the_pacer_follows_the_last_server_window_its_requests_reached():
    async def scenario() -> tuple[float | None, int]:
        pacer = WindowPacer()
        async with pacer:  # the probe, at 0: its window ends at 1.0
            pass
        pacer.observe(httpx.Response(200, headers=_headers(10, 9, "1000ms")))

        # Sent at 0.9995, and the server says a fresh window took it.
        await asyncio.sleep(0.9995)
        async with pacer:
            pass
        pacer.observe(httpx.Response(200, headers=_headers(10, 9, "1000ms")))
        return pacer.resets_at, pacer.remaining

    resets_at, remaining = run_virtual(scenario)
    assert resets_at == pytest.approx(1.9995)
    assert remaining == 9


def test_a_lower_count_from_the_server_wins():
    # Another client shares the limit: the server has fewer left than we think.
    async def scenario() -> int:
        pacer = WindowPacer()
        async with pacer:
            pass
        pacer.observe(httpx.Response(200, headers=_headers(10, 9, "1000ms")))
        async with pacer:
            pass
        pacer.observe(httpx.Response(200, headers=_headers(10, 3, "1000ms")))
        return pacer.remaining

    assert run_virtual(scenario) == 3


def test_an_unknown_pacer_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="none, bucket, window"):
        make_pacer("token")
