"""The client call: the typed error for each way a request can fail."""

from __future__ import annotations

import asyncio
from email.utils import formatdate

import httpx
import pytest

from labkit import Faults, MockEndpoint, RateLimitError, parse_retry_after, run_virtual
from labkit.client import (
    BadRequestError,
    ConnectionLostError,
    MalformedResponseError,
    RequestTimeoutError,
    ServerError,
    call_llm,
)
from labkit.mock_server import transform_note


def _call(endpoint, record, timeout=10.0):
    """The result or the error of one call, and how long it took on the loop."""
    async def scenario():
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with endpoint.client() as client:
            try:
                result = await call_llm(client, record, timeout=timeout)
            except Exception as error:  # the error is the result under test
                result = error
        return result, loop.time() - start

    return run_virtual(scenario)


def _answering(status, body=None, headers=None):
    class Fixed(MockEndpoint):
        async def handle(self, request):
            return httpx.Response(status, json=body, headers=headers)

    return Fixed()


def test_a_success_returns_the_completion_text(records):
    text, _ = _call(MockEndpoint(), records[0])
    assert text == transform_note(records[0].note)


def test_a_429_becomes_rate_limit_error_with_the_precise_hint(records):
    endpoint = MockEndpoint(limit=1)

    async def scenario():
        async with endpoint.client() as client:
            await call_llm(client, records[0])
            await asyncio.sleep(0.25)
            with pytest.raises(RateLimitError) as caught:
                await call_llm(client, records[1])
        return caught.value

    error = run_virtual(scenario)
    assert error.retry_after == pytest.approx(0.75)
    assert error.code == "rate_limit_exceeded"
    assert not error.quota_exhausted


def test_a_spent_quota_is_a_429_that_says_so(records):
    error, _ = _call(MockEndpoint(faults=Faults(quota=1.0)), records[0])
    assert isinstance(error, RateLimitError)
    assert error.code == "insufficient_quota" and error.quota_exhausted


@pytest.mark.parametrize(
    ("endpoint", "kind", "status"),
    [
        (_answering(400, {"error": {"code": "bad", "message": "no"}}), BadRequestError,
         400),
        (_answering(503, {"error": {"code": "overloaded"}}), ServerError, 503),
        (_answering(200, {"choices": []}), MalformedResponseError, 200),
        (MockEndpoint(faults=Faults(malformed=1.0)), MalformedResponseError, 200),
        (MockEndpoint(faults=Faults(server_error=1.0)), ServerError, None),
        (MockEndpoint(faults=Faults(disconnect=1.0)), ConnectionLostError, None),
    ],
)
def test_each_failure_has_its_own_error(records, endpoint, kind, status):
    error, _ = _call(endpoint, records[0])
    assert type(error) is kind
    if status is not None:
        assert error.status == status


def test_no_answer_fires_the_deadline_on_the_loops_clock(records):
    error, took = _call(MockEndpoint(faults=Faults(timeout=1.0)), records[0], timeout=3)
    assert isinstance(error, RequestTimeoutError)
    assert "3s" in str(error)
    assert took == pytest.approx(3.0, abs=0.01)


def test_the_should_retry_header_is_read(records):
    endpoint = _answering(503, {"error": {"code": "x"}}, {"x-should-retry": "false"})
    error, _ = _call(endpoint, records[0])
    assert error.should_retry is False


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "-3"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after-ms": "-1", "retry-after": "2"}, 2.0),
        ({"retry-after": "86400"}, 60.0),
        ({"retry-after-ms": "inf"}, 60.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"Retry-After-Ms": "250"}, 0.25),
    ],
)
def test_garbage_negative_and_absurd_hints(headers, expected):
    assert parse_retry_after(headers) == expected


def test_an_http_date_hint_is_measured_from_now():
    now = 1_800_000_000.0
    headers = {"retry-after": formatdate(now + 30, usegmt=True)}
    assert parse_retry_after(headers, now=now) == pytest.approx(30.0)
    past = {"retry-after": formatdate(now - 30, usegmt=True)}
    assert parse_retry_after(past, now=now) == 0.0
