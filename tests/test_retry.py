"""The retry loop and its two policies."""

from __future__ import annotations

import httpx
import pytest

from labkit import (
    LAB,
    PRODUCTION,
    RateLimitError,
    RetriesExhausted,
    Timeline,
    run_virtual,
    with_retry,
)
from labkit.client import (
    BadRequestError,
    ConnectionLostError,
    EndpointError,
    MalformedResponseError,
    RequestTimeoutError,
    ServerError,
)


def _scripted(errors, **options):
    """Retry an attempt that raises each of ``errors`` in turn, then succeeds."""
    async def scenario():
        timeline = Timeline()
        script = list(errors)

        async def attempt():
            if script:
                raise script.pop(0)
            return "done"

        settings = {"max_retries": 5, "base_delay": 0.1, "max_delay": 1.0,
                    "jitter": "none", "timeline": timeline, **options}
        try:
            result = await with_retry(attempt, **settings)
        except Exception as error:  # the error is the result under test
            result = error
        return result, timeline

    return run_virtual(scenario)


def _waits(timeline):
    return [round(e.delay, 6) for e in timeline.of_kind("wait")]


def test_rate_limits_are_retried_until_success():
    result, timeline = _scripted([RateLimitError("429")] * 3)
    assert result == "done"
    assert _waits(timeline) == [0.1, 0.2, 0.4]
    assert [e.attempt for e in timeline.of_kind("request")] == [1, 2, 3, 4]


def test_the_wait_is_at_least_the_servers_hint():
    errors = [RateLimitError("429", retry_after=0.75), RateLimitError("429",
              retry_after=0.05)]
    result, timeline = _scripted(errors)
    assert result == "done"
    assert _waits(timeline) == [0.75, 0.2]


def test_ignoring_the_hint_waits_the_backoff_only():
    _, timeline = _scripted([RateLimitError("429", retry_after=0.75)],
                            honour_hint=False)
    assert _waits(timeline) == [0.1]


def test_exhaustion_names_the_budget_and_keeps_the_last_error():
    last = RateLimitError("429 the last one")
    result, timeline = _scripted([RateLimitError("429")] * 2 + [last], max_retries=2)
    assert isinstance(result, RetriesExhausted)
    assert result.attempts == 3 and result.__cause__ is last
    assert "MAX_RETRIES=2" in str(result) and "the last one" in str(result)
    assert len(timeline.of_kind("wait")) == 2


def test_a_spent_quota_is_never_retried():
    quota = RateLimitError("429", code="insufficient_quota")
    result, timeline = _scripted([quota], policy=PRODUCTION)
    assert result is quota
    assert timeline.of_kind("wait") == []


@pytest.mark.parametrize(
    "error",
    [
        ServerError("500", status=500),
        RequestTimeoutError("late"),
        ConnectionLostError("dropped"),
        EndpointError("408", status=408),
        EndpointError("409", status=409),
    ],
)
def test_transient_failures_fail_fast_in_the_lab_and_retry_in_production(error):
    lab, _ = _scripted([error], policy=LAB)
    production, timeline = _scripted([error], policy=PRODUCTION)
    assert lab is error
    assert production == "done" and len(timeline.of_kind("wait")) == 1


@pytest.mark.parametrize(
    "error",
    [
        BadRequestError("400", status=400, should_retry=True),
        MalformedResponseError("garbled", status=200),
        ServerError("500", status=500, should_retry=False),
        ValueError("a bug in the job"),
    ],
)
def test_production_never_retries_these(error):
    result, _ = _scripted([error], policy=PRODUCTION)
    assert result is error


def test_the_server_may_ask_for_a_retry_the_policy_would_skip():
    asked = EndpointError("418", status=418, should_retry=True)
    result, _ = _scripted([asked], policy=PRODUCTION)
    assert result == "done"


def test_a_real_429_response_round_trips_through_the_loop(records):
    from labkit.client import call_llm

    responses = iter([
        httpx.Response(429, headers={"retry-after-ms": "300"},
                       json={"error": {"code": "rate_limit_exceeded"}}),
        httpx.Response(200, json={"choices": [{"message": {"content": "ok"}}]}),
    ])

    async def scenario():
        transport = httpx.MockTransport(lambda request: next(responses))
        timeline = Timeline()
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
            value = await with_retry(lambda: call_llm(c, records[0]), max_retries=1,
                                     base_delay=0.1, max_delay=1, timeline=timeline)
        return value, timeline

    value, timeline = run_virtual(scenario)
    assert value == "ok"
    assert [e.delay for e in timeline.of_kind("rate_limited")] == [0.3]
    assert _waits(timeline) == [0.3]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"max_retries": -1}, "0 or more"),
        ({"max_retries": 2.5}, "whole number"),
        ({"base_delay": float("nan")}, "finite"),
        ({"max_delay": float("inf")}, "finite"),
        ({"jitter": "lots"}, "none, equal, full"),
    ],
)
def test_bad_settings_are_refused_before_any_request(options, words):
    sent = []

    async def attempt():
        sent.append(1)
        return "done"

    async def scenario():
        settings = {"max_retries": 1, "base_delay": 0.1, "max_delay": 1, **options}
        with pytest.raises(ValueError, match=words):
            await with_retry(attempt, **settings)

    run_virtual(scenario)
    assert sent == []


@pytest.mark.parametrize(
    ("hint", "waited"),
    [(1e9, 60.0), (float("inf"), 60.0), (float("nan"), 0.1), (-5, 0.1), ("1", 0.1)],
)
def test_a_hand_made_hint_is_clamped_or_ignored(hint, waited):
    _, timeline = _scripted([RateLimitError("429", retry_after=hint)])
    assert _waits(timeline) == [waited]
