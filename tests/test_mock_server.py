"""The mock endpoint: fixed windows, headers, 400s, transformation, counters."""

from __future__ import annotations

import asyncio

import pytest

from labkit import MockEndpoint, run_virtual
from labkit.client import chat_request
from labkit.mock_server import CHAT_PATH, transform_note


async def _post_many(endpoint, records, at=0.0):
    await asyncio.sleep(at)
    async with endpoint.client() as client:
        return [await client.post(CHAT_PATH, json=chat_request(r)) for r in records]


def test_each_fixed_window_serves_the_limit_and_refuses_the_rest(records):
    endpoint = MockEndpoint(limit=10, window=1.0)

    async def scenario():
        first = await _post_many(endpoint, records[:25])
        second = await _post_many(endpoint, records[25:40], at=1.0)
        return first, second

    first, second = run_virtual(scenario)
    assert [r.status_code for r in first] == [200] * 10 + [429] * 15
    assert [r.status_code for r in second] == [200] * 10 + [429] * 5
    assert endpoint.stats.requests == 40
    assert (endpoint.stats.served, endpoint.stats.rate_limited) == (20, 20)
    assert {i: (w.served, w.rejected) for i, w in endpoint.stats.windows.items()} == {
        0: (10, 15),
        1: (10, 5),
    }


def test_the_grid_starts_at_the_first_request(records):
    endpoint = MockEndpoint(limit=2, window=1.0)

    async def scenario():
        await asyncio.sleep(5.3)  # the endpoint's windows do not start at loop 0
        early = await _post_many(endpoint, records[:3])
        later = await _post_many(endpoint, records[3:5], at=0.999)
        after = await _post_many(endpoint, records[5:6], at=0.001)
        return early, later, after

    early, later, after = run_virtual(scenario)
    assert [r.status_code for r in early] == [200, 200, 429]
    assert [r.status_code for r in later] == [429, 429]
    assert [r.status_code for r in after] == [200]


def test_every_response_carries_limit_remaining_and_reset(records):
    endpoint = MockEndpoint(limit=3, window=2.0)
    responses = run_virtual(_post_many, endpoint, records[:4])

    remaining = [r.headers["x-ratelimit-remaining-requests"] for r in responses]
    assert remaining == ["2", "1", "0", "0"]
    assert {r.headers["x-ratelimit-limit-requests"] for r in responses} == {"3"}
    assert {r.headers["x-ratelimit-reset-requests"] for r in responses} == {"2000ms"}
    refused = responses[-1]
    assert refused.headers["retry-after-ms"] == "2000"
    assert refused.headers["retry-after"] == "2"
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        (CHAT_PATH, b"not json", "not JSON"),
        (CHAT_PATH, b"[1, 2]", "JSON object"),
        (CHAT_PATH, b'{"messages": []}', "non-empty list"),
        (CHAT_PATH, b'{"messages": [{"role": "user", "content": " "}]}', "non-empty"),
        (CHAT_PATH, b'{"messages": [{"role": "user", "content": "' + b"x" * 4001
         + b'"}]}', "at most 4000"),
        ("/v1/other", b"{}", "unknown path"),
    ],
)
def test_a_request_it_cannot_process_gets_400_saying_why(path, body, words):
    endpoint = MockEndpoint()

    async def scenario():
        async with endpoint.client() as client:
            return await client.post(path, content=body)

    response = run_virtual(scenario)
    assert response.status_code == 400
    assert words in response.json()["error"]["message"]
    assert endpoint.stats.bad_requests == 1


def test_the_transformation_is_deterministic_and_checkable(records):
    endpoint = MockEndpoint(limit=100)
    responses = run_virtual(_post_many, endpoint, records[:20])

    for record, response in zip(records, responses, strict=False):
        content = response.json()["choices"][0]["message"]["content"]
        assert content == transform_note(record.note)
    assert transform_note("Invoice 12 was charged twice. Help!") == (
        "billing: Invoice 12 was charged twice."
    )
    assert endpoint.stats.served_ids[records[0].id] == 1


def test_seeded_latency_repeats_for_a_seed(records):
    def durations(seed):
        endpoint = MockEndpoint(limit=100, latency=0.5, latency_sigma=0.4, seed=seed)

        async def scenario():
            loop = asyncio.get_running_loop()
            times = []
            async with endpoint.client() as client:
                for record in records[:5]:
                    start = loop.time()
                    await client.post(CHAT_PATH, json=chat_request(record))
                    times.append(round(loop.time() - start, 6))
            return times

        return run_virtual(scenario)

    assert durations(1) == durations(1)
    assert durations(1) != durations(2)
    assert all(0 < d < 10 for d in durations(1))


@pytest.mark.parametrize(
    "arguments",
    [{"limit": 0}, {"limit": 1.5}, {"window": 0}, {"window": float("nan")},
     {"window": float("inf")}, {"latency": -1}, {"latency": float("nan")},
     {"latency_sigma": -0.1}],
)
def test_invalid_endpoint_settings_are_refused(arguments):
    with pytest.raises(ValueError):
        MockEndpoint(**arguments)
