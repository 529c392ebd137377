"""Faults: what the mock injects, what the client makes of it, what each policy does."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from labkit import Config, Faults, MockEndpoint, run_virtual, simulate
from labkit.client import (
    ConnectionLostError,
    LabkitError,
    MalformedResponseError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    call_llm,
)
from labkit.mock_server import transform_note
from labkit.retry import LAB, PRODUCTION, failure_kind, failure_reason, with_retry
from recording_endpoint import RecordingEndpoint


def _one_call(record, faults, *, timeout=1.0, seed=0):
    """One request through the client; returns (value or error, seconds taken)."""
    endpoint = MockEndpoint(faults=faults, seed=seed)

    async def go():
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with endpoint.client() as client:
            try:
                result = await call_llm(client, record, timeout=timeout)
            except LabkitError as error:
                result = error
        return result, loop.time() - start

    return run_virtual(go)


def test_a_spent_quota_is_a_429_whose_code_says_so(records):
    error, _ = _one_call(records[0], Faults(quota=1.0))
    assert isinstance(error, RateLimitError)
    assert error.quota_exhausted and error.code == "insufficient_quota"
    assert not PRODUCTION.should_retry(error) and not LAB.should_retry(error)


def test_a_server_error_is_a_5xx(records):
    error, _ = _one_call(records[0], Faults(server_error=1.0))
    assert isinstance(error, ServerError) and error.status in (500, 502, 503)


def test_an_answer_that_never_comes_fires_the_clients_deadline(records):
    error, took = _one_call(records[0], Faults(timeout=1.0), timeout=2.5)
    assert isinstance(error, RequestTimeoutError)
    assert took == pytest.approx(2.5)  # the loop's clock: exact, not a race


def test_a_malformed_body_is_its_own_error(records):
    error, _ = _one_call(records[0], Faults(malformed=1.0))
    assert isinstance(error, MalformedResponseError)


def test_a_dropped_connection_is_its_own_error(records):
    error, _ = _one_call(records[0], Faults(disconnect=1.0))
    assert isinstance(error, ConnectionLostError)


def test_a_latency_spike_is_slow_but_answers_within_the_deadline(records):
    spike = Faults(spike=1.0, spike_seconds=3.0)
    value, took = _one_call(records[0], spike, timeout=10)
    assert value == transform_note(records[0].note)
    assert took == pytest.approx(3.0)


def test_a_latency_spike_past_the_deadline_times_out(records):
    error, took = _one_call(records[0], Faults(spike=1.0, spike_seconds=3.0), timeout=1)
    assert isinstance(error, RequestTimeoutError)
    assert took == pytest.approx(1.0)


def _fault_schedule(records, seed):
    endpoint = RecordingEndpoint(
        limit=1_000,
        faults=Faults(server_error=0.2, malformed=0.2, disconnect=0.2),
        seed=seed,
    )
    simulate(records, Config(rate_limit=1_000, retry_policy="production"),
             endpoint=endpoint, seed=seed)
    return endpoint.log


def test_the_fault_schedule_repeats_for_a_seed(records):
    first = _fault_schedule(records[:30], seed=5)
    assert first == _fault_schedule(records[:30], seed=5)
    assert first != _fault_schedule(records[:30], seed=6)
    answers = {what for _, what in first}
    assert {"5xx", "malformed", "dropped", "ok"} <= answers


@pytest.mark.parametrize("should_retry", [True, False])
def test_injected_errors_can_carry_the_servers_retry_header(should_retry):
    endpoint = MockEndpoint(faults=Faults(server_error=1.0, should_retry=should_retry))

    async def go():
        async with endpoint.client() as client:
            return await client.post("/v1/chat/completions", json={
                "messages": [{"role": "user", "content": "hello"}]})

    response = run_virtual(go)
    assert response.headers["x-should-retry"] == str(should_retry).lower()


# -- each policy against each fault, over a small batch ----------------------

FAIL_FAST = {
    "server_error": "server_error",
    "timeout": "timeout",
    "malformed": "malformed_response",
    "disconnect": "connection_lost",
    "quota": "quota_exhausted",
}


def _batch_under(records, faults, policy, max_retries=3):
    config = Config(retry_policy=policy, max_retries=max_retries, rate_limit=1_000,
                    request_timeout_ms=500)
    endpoint = RecordingEndpoint(limit=1_000, faults=faults, seed=1)
    return simulate(records, config, endpoint=endpoint, seed=1), endpoint


@pytest.mark.parametrize("fault", sorted(FAIL_FAST))
def test_the_lab_fails_fast_on_everything_but_a_rate_limit(records, fault):
    report, endpoint = _batch_under(records[:6], Faults(**{fault: 1.0}), "lab")
    assert len(report.failed) == 6
    for outcome in report.failed:
        assert outcome.kind == FAIL_FAST[fault]
        assert outcome.attempts == 1
        expected = f"{FAIL_FAST[fault]} after 1 attempt, not retryable"
        assert outcome.reason.startswith(expected)
    assert endpoint.stats.requests == 6


@pytest.mark.parametrize("fault", ["server_error", "timeout", "disconnect"])
def test_production_retries_transient_faults_until_the_budget_is_spent(records, fault):
    report, endpoint = _batch_under(records[:6], Faults(**{fault: 1.0}), "production")
    assert len(report.failed) == 6
    for outcome in report.failed:
        assert outcome.attempts == 4  # MAX_RETRIES=3 retries after the first try
        assert outcome.reason.startswith(
            f"{FAIL_FAST[fault]} after 4 attempts, retry budget spent (MAX_RETRIES=3)"
        )
    assert endpoint.stats.requests == 24


@pytest.mark.parametrize("fault", ["quota", "malformed"])
def test_production_never_retries_a_spent_quota_or_a_malformed_body(records, fault):
    # The header says "retry", and is ignored: no wait fixes either of these.
    faults = Faults(**{fault: 1.0}, should_retry=True)
    report, endpoint = _batch_under(records[:6], faults, "production")
    assert [o.attempts for o in report.failed] == [1] * 6
    assert endpoint.stats.requests == 6


def test_production_obeys_a_header_that_says_do_not_retry(records):
    faults = Faults(server_error=1.0, should_retry=False)
    report, endpoint = _batch_under(records[:6], faults, "production")
    assert [o.attempts for o in report.failed] == [1] * 6
    assert all(o.kind == "server_error" for o in report.failed)


def test_production_gets_through_transient_faults_that_the_lab_gives_up_on(records):
    faults = Faults(server_error=0.1, timeout=0.05, disconnect=0.05, spike=0.05,
                    spike_seconds=2.0)
    config = Config(request_timeout_ms=1_000)
    lab = simulate(records, config, endpoint=MockEndpoint(faults=faults, seed=3),
                   seed=3)
    production = simulate(records, config.replace(retry_policy="production"),
                          endpoint=MockEndpoint(faults=faults, seed=3), seed=3)
    assert len(production.succeeded) == 100
    assert 0 < len(lab.failed) < 100
    kinds = {o.kind for o in lab.failed}
    assert kinds <= {"server_error", "timeout", "connection_lost"} and kinds


def _scripted_transport(*responses):
    answers = iter(responses)
    seen = []

    def handler(request):
        seen.append(request)
        return next(answers)

    return httpx.MockTransport(handler), seen


@pytest.mark.parametrize(
    ("policy", "requests"),
    [(LAB, 2), (PRODUCTION, 1)],
)
def test_a_rate_limit_marked_do_not_retry_stops_production_only(
    records, policy, requests
):
    refused = httpx.Response(429, headers={"x-should-retry": "false"},
                             json={"error": {"code": "rate_limit_exceeded"}})
    ok = httpx.Response(200, json={"choices": [{"message": {"content": "done"}}]})
    transport, seen = _scripted_transport(refused, ok)

    async def go():
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
            try:
                return await with_retry(lambda: call_llm(c, records[0]), max_retries=2,
                                        base_delay=0.1, max_delay=1, policy=policy)
            except RateLimitError as error:
                return error

    result = run_virtual(go)
    assert len(seen) == requests
    assert (result == "done") is (policy is LAB)


def test_a_400_is_never_retried_whatever_the_header_says(records):
    bad = httpx.Response(400, headers={"x-should-retry": "true"},
                         json={"error": {"code": "invalid_request_error"}})
    transport, seen = _scripted_transport(bad)

    async def go():
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
            try:
                await with_retry(lambda: call_llm(c, records[0]), max_retries=5,
                                 base_delay=0.1, max_delay=1, policy=PRODUCTION)
            except LabkitError as error:
                return error

    error = run_virtual(go)
    assert len(seen) == 1
    assert failure_kind(error) == "bad_request"
    reason = failure_reason(error, 1)
    assert reason.startswith("bad_request after 1 attempt, not retryable")


def test_the_report_and_its_json_carry_each_failures_kind(records):
    report, _ = _batch_under(records[:3], Faults(quota=1.0), "lab")
    data = report.to_dict()
    assert [o["kind"] for o in data["outcomes"]] == ["quota_exhausted"] * 3
    assert [o["attempts"] for o in data["outcomes"]] == [1] * 3
