"""The whole pipeline on the 100 records, on the virtual clock."""

from __future__ import annotations

import asyncio
import json

import pytest

from labkit import BatchRun, Config, MockEndpoint, Timeline, run_virtual, simulate
from labkit.mock_server import transform_note


def _run(records, config=None, **options):
    endpoint = MockEndpoint(limit=10, window=1.0, seed=options.get("seed", 0))
    timeline = Timeline()
    report = simulate(records, config or Config(), endpoint=endpoint,
                      timeline=timeline, **options)
    return report, endpoint, timeline


def test_the_default_settles_all_100_at_the_floor_within_the_limit(records):
    report, endpoint, _ = _run(records)

    assert (len(report.succeeded), len(report.failed)) == (100, 0)
    assert [o.record_id for o in report.outcomes] == [r.id for r in records]
    assert all(o.value == transform_note(r.note)
               for o, r in zip(report.outcomes, records, strict=True))
    assert endpoint.stats.peak_served <= 10
    assert len(endpoint.stats.windows) == 10
    assert report.duration == pytest.approx(9.0, abs=0.01)
    assert report.rate_limited < 100  # fewer than one 429 per record


def test_each_record_was_served_exactly_once(records):
    _, endpoint, _ = _run(records)
    assert set(endpoint.stats.served_ids) == {r.id for r in records}
    assert set(endpoint.stats.served_ids.values()) == {1}


def test_the_pool_stays_at_its_ceiling_while_records_wait(records):
    _, _, timeline = _run(records)
    samples = timeline.to_dataframe().query("kind == 'pool'")

    assert samples["active"].max() == 9
    assert (samples.loc[samples["pending"] > 0, "active"] == 9).all()
    assert samples["pending"].iloc[-1] == 0
    assert samples["pending"].is_monotonic_decreasing


def test_naive_mode_costs_far_more_429s(records):
    pooled, _, _ = _run(records)
    naive, endpoint, _ = _run(records, naive=True)
    assert len(naive.succeeded) == 100
    assert naive.rate_limited > 4 * pooled.rate_limited
    assert endpoint.stats.peak_served <= 10


def test_five_retries_of_pure_backoff_starve_some_records(records):
    config = Config(max_retries=5, honour_hint=False)
    report, _, _ = _run(records, config)

    assert report.failed, "expected starvation with MAX_RETRIES=5 and no hint"
    assert len(report.succeeded) + len(report.failed) == 100
    for outcome in report.failed:
        assert outcome.error_type == "RetriesExhausted"
        assert "MAX_RETRIES=5" in outcome.reason
        assert outcome.attempts == 6


def test_honouring_the_hint_needs_only_one_retry_per_record(records):
    enough, _, _ = _run(records, Config(max_retries=1))
    none, _, _ = _run(records, Config(max_retries=0))
    assert len(enough.succeeded) == 100
    assert len(none.failed) == none.rate_limited > 0


def test_the_same_seed_gives_the_same_report(records):
    config = Config(honour_hint=False, jitter="full")
    first, _, _ = _run(records, config, seed=11)
    again, _, _ = _run(records, config, seed=11)
    other, _, _ = _run(records, config, seed=12)
    assert first == again
    assert first.to_dict() != other.to_dict()


def test_the_report_is_json_ready_and_counts_add_up(records):
    report, endpoint, timeline = _run(records)
    data = json.loads(json.dumps(report.to_dict()))

    assert data["succeeded"] + data["failed"] + data["not_attempted"] == 100
    assert data["requests"] == endpoint.stats.requests == 181
    assert data["rate_limited"] == endpoint.stats.rate_limited == data["retries"]
    assert len(timeline.of_kind("succeeded")) == 100
    assert "succeeded: 100, failed: 0" in report.summary()


def test_a_stream_of_records_is_processed_without_a_list(records):
    report, _, _ = _run(iter(records[:30]), backlog=5)
    assert [o.record_id for o in report.outcomes] == [r.id for r in records[:30]]
    assert len(report.succeeded) == 30


def test_stopping_on_the_first_outcome_counts_exactly_what_it_cleared(records):
    endpoint = MockEndpoint()
    cleared: list[int] = []

    def stop_once(outcome):
        if not cleared:
            cleared.append(batch.stop())

    batch = BatchRun(records[:20], Config(max_concurrency=2), endpoint=endpoint,
                     on_outcome=stop_once)
    report = run_virtual(batch.run)

    assert cleared[0] == len(report.not_attempted) > 0
    assert len(endpoint.stats.served_ids) + cleared[0] == 20
    assert {o.record_id for o in report.succeeded} == set(endpoint.stats.served_ids)


def test_stopping_a_stream_loses_no_record_it_read(records):
    read: list[str] = []

    def stream():
        for record in records[:10]:
            read.append(record.id)
            yield record

    batch = BatchRun(stream(), Config(max_concurrency=1), backlog=2)

    async def scenario():
        task = asyncio.create_task(batch.run())
        await asyncio.sleep(0.5)
        batch.stop()
        return await task

    report = run_virtual(scenario)
    assert [o.record_id for o in report.outcomes] == read


@pytest.mark.parametrize(
    ("options", "words"),
    [({"backlog": 0}, "backlog=0"), ({"backlog": -1}, "backlog=-1"),
     ({"sample_every": -1.0}, "sample_every")],
)
def test_options_that_would_hang_are_refused(records, options, words):
    with pytest.raises(ValueError, match=words):
        BatchRun(records, Config(), **options)


def test_duplicate_ids_are_refused_before_anything_is_sent(records):
    with pytest.raises(ValueError, match="duplicate record id 'CR-0001'"):
        BatchRun(records[:5] * 2, Config())


def test_sampling_follows_the_window_so_long_windows_stay_cheap(records):
    config = Config(rate_limit=1, rate_window_ms=120_000)
    timeline = Timeline()
    report = simulate(records[:3], config, timeline=timeline)
    assert report.duration == pytest.approx(240, abs=1)
    assert len(report.succeeded) == 3
    assert timeline.counts["pool"] < 100  # a sample every 50 ms would take 4800
