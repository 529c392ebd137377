"""Every exercise check against a catalogue of plausible wrong answers.

Each wrong answer below is code a learner could write. The check must call it
wrong and name the mistake it makes (the hint the learner reads comes with that
name); the worked solution must pass, and the untouched stub must read as not
attempted yet. Async answers run on the virtual clock: no test sleeps.
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from labkit import (
    EndpointError,
    Outcome,
    Pool,
    RateLimitError,
    RetriesExhausted,
    backoff_delay,
    chat_request,
    checks,
    parse_retry_after,
)
from labkit.solutions import load_solutions

CATALOGUE: dict[str, dict[str, object]] = {}


def wrong(exercise: str, mistake: str):
    """Register a wrong answer to ``exercise`` that should be named ``mistake``."""

    def register(fn):
        CATALOGUE.setdefault(exercise, {})[f"{mistake}/{fn.__name__}"] = fn
        return fn

    return register


# 01_config: validate_knobs ---------------------------------------------------


@wrong("validate_knobs", "pool-of-zero-accepted")
def zero_pool_allowed(max_concurrency, max_retries, base_delay_ms, max_delay_ms):
    if max_concurrency < 0:
        raise ValueError(f"MAX_CONCURRENCY={max_concurrency}")
    if max_retries < 0:
        raise ValueError(f"MAX_RETRIES={max_retries}")
    if base_delay_ms < 0:
        raise ValueError(f"BASE_DELAY_MS={base_delay_ms}")
    if max_delay_ms < base_delay_ms:
        raise ValueError(f"MAX_DELAY_MS={max_delay_ms}")


@wrong("validate_knobs", "retries-must-be-positive")
def retries_from_one(max_concurrency, max_retries, base_delay_ms, max_delay_ms):
    if max_concurrency < 1:
        raise ValueError("MAX_CONCURRENCY must be at least 1")
    if max_retries < 1:
        raise ValueError("MAX_RETRIES must be at least 1")


@wrong("validate_knobs", "cap-below-base-accepted")
def cap_not_compared(max_concurrency, max_retries, base_delay_ms, max_delay_ms):
    for name, value, low in [("MAX_CONCURRENCY", max_concurrency, 1),
                             ("MAX_RETRIES", max_retries, 0),
                             ("BASE_DELAY_MS", base_delay_ms, 0),
                             ("MAX_DELAY_MS", max_delay_ms, 0)]:
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name}={value!r}")


@wrong("validate_knobs", "cap-equal-to-base-refused")
def cap_strictly_above(max_concurrency, max_retries, base_delay_ms, max_delay_ms):
    if max_concurrency < 1 or not isinstance(max_concurrency, int):
        raise ValueError("MAX_CONCURRENCY")
    if max_retries < 0:
        raise ValueError("MAX_RETRIES")
    if base_delay_ms < 0:
        raise ValueError("BASE_DELAY_MS")
    if max_delay_ms <= base_delay_ms:
        raise ValueError("MAX_DELAY_MS must be above BASE_DELAY_MS")


@wrong("validate_knobs", "fraction-accepted")
def no_type_check(max_concurrency, max_retries, base_delay_ms, max_delay_ms):
    if max_concurrency < 1:
        raise ValueError("max_concurrency must be at least 1")
    if max_retries < 0:
        raise ValueError("max_retries must be at least 0")
    if base_delay_ms < 0:
        raise ValueError("base_delay_ms must be at least 0")
    if max_delay_ms < base_delay_ms:
        raise ValueError("max_delay_ms must be at least base_delay_ms")


@wrong("validate_knobs", "returns-instead-of-raising")
def returns_a_flag(max_concurrency, max_retries, base_delay_ms, max_delay_ms):
    return (max_concurrency >= 1 and max_retries >= 0 and base_delay_ms >= 0
            and max_delay_ms >= base_delay_ms)


@wrong("validate_knobs", "wrong-error-type")
def asserts(max_concurrency, max_retries, base_delay_ms, max_delay_ms):
    assert isinstance(max_concurrency, int) and max_concurrency >= 1
    assert max_retries >= 0
    assert 0 <= base_delay_ms <= max_delay_ms


@wrong("validate_knobs", "knob-not-named")
def anonymous_error(max_concurrency, max_retries, base_delay_ms, max_delay_ms):
    values = (max_concurrency, max_retries, base_delay_ms, max_delay_ms)
    if not all(isinstance(v, int) for v in values):
        raise ValueError("invalid config")
    if max_concurrency < 1 or max_retries < 0 or base_delay_ms < 0:
        raise ValueError("invalid config")
    if max_delay_ms < base_delay_ms:
        raise ValueError("invalid config")


@wrong("validate_knobs", "defaults-refused")
def comparisons_flipped(max_concurrency, max_retries, base_delay_ms, max_delay_ms):
    if max_concurrency >= 1:
        raise ValueError("MAX_CONCURRENCY out of range")


@wrong("validate_knobs", "negative-base-accepted")
def base_unchecked(max_concurrency, max_retries, base_delay_ms, max_delay_ms):
    if not isinstance(max_concurrency, int) or max_concurrency < 1:
        raise ValueError("MAX_CONCURRENCY")
    if max_retries < 0:
        raise ValueError("MAX_RETRIES")
    if max_delay_ms < 0:
        raise ValueError("MAX_DELAY_MS")


# 02_client: call_endpoint ----------------------------------------------------


async def _post(client, record):
    return await client.post("/v1/chat/completions", json=chat_request(record))


def _text(response):
    return response.json()["choices"][0]["message"]["content"]


@wrong("call_endpoint", "hint-dropped")
async def hint_dropped(client, record):
    response = await _post(client, record)
    if response.status_code == 429:
        raise RateLimitError("429")
    if response.status_code != 200:
        raise EndpointError("failed", status=response.status_code)
    return _text(response)


@wrong("call_endpoint", "hint-whole-seconds")
async def whole_seconds(client, record):
    response = await _post(client, record)
    if response.status_code == 429:
        seconds = response.headers.get("retry-after")
        raise RateLimitError("429", retry_after=float(seconds) if seconds else None)
    if response.is_error:
        raise EndpointError("failed", status=response.status_code)
    return _text(response)


@wrong("call_endpoint", "no-hint-crashes")
async def header_indexed(client, record):
    response = await _post(client, record)
    if response.status_code == 429:
        milliseconds = int(response.headers["retry-after-ms"])
        raise RateLimitError("429", retry_after=milliseconds / 1000)
    if response.is_error:
        raise EndpointError("failed", status=response.status_code)
    return _text(response)


@wrong("call_endpoint", "httpx-error")
async def raise_for_status(client, record):
    response = await _post(client, record)
    response.raise_for_status()
    return _text(response)


@wrong("call_endpoint", "everything-is-a-rate-limit")
async def every_error_is_429(client, record):
    response = await _post(client, record)
    if response.is_error:
        raise RateLimitError("failed", retry_after=parse_retry_after(response.headers))
    return _text(response)


@wrong("call_endpoint", "returns-body")
async def returns_json(client, record):
    response = await _post(client, record)
    if response.status_code == 429:
        raise RateLimitError("429", retry_after=parse_retry_after(response.headers))
    if response.is_error:
        raise EndpointError("failed", status=response.status_code)
    return response.json()


@wrong("call_endpoint", "forgot-await")
async def forgot_await(client, record):
    response = client.post("/v1/chat/completions", json=chat_request(record))
    try:
        if response.status_code == 429:
            raise RateLimitError("429")
        return _text(response)
    finally:
        response.close()  # the un-awaited coroutine, so Python does not warn


@wrong("call_endpoint", "request-refused")
async def wrong_path(client, record):
    response = await client.post("/chat", json={"note": record.note})
    if response.status_code == 429:
        raise RateLimitError("429", retry_after=parse_retry_after(response.headers))
    if response.is_error:
        raise EndpointError(response.text, status=response.status_code)
    return _text(response)


@wrong("call_endpoint", "status-missing")
async def status_missing(client, record):
    response = await _post(client, record)
    if response.status_code == 429:
        raise RateLimitError("429", retry_after=parse_retry_after(response.headers))
    if response.is_error:
        raise EndpointError(f"failed with {response.status_code}")
    return _text(response)


@wrong("call_endpoint", "not-an-endpoint-error")
async def generic_exception(client, record):
    response = await _post(client, record)
    if response.status_code == 429:
        raise RateLimitError("429", retry_after=parse_retry_after(response.headers))
    if response.is_error:
        raise RuntimeError(f"failed with {response.status_code}")
    return _text(response)


# 03_pool: run_all --------------------------------------------------------------


@wrong("run_all", "one-at-a-time")
async def awaits_in_a_loop(records, job, concurrency):
    pool = Pool(concurrency)
    return [await pool.run(job, record) for record in records]


@wrong("run_all", "over-the-ceiling")
async def no_pool(records, job, concurrency):
    return await asyncio.gather(*(job(record) for record in records))


@wrong("run_all", "over-the-ceiling")
async def pool_per_record(records, job, concurrency):
    return await asyncio.gather(*(Pool(concurrency).run(job, r) for r in records))


@wrong("run_all", "under-the-ceiling")
async def one_short(records, job, concurrency):
    pool = Pool(max(concurrency - 1, 1))
    return await asyncio.gather(*(pool.run(job, record) for record in records))


@wrong("run_all", "finish-order")
async def as_completed(records, job, concurrency):
    pool = Pool(concurrency)
    tasks = [asyncio.create_task(pool.run(job, record)) for record in records]
    return [await done for done in asyncio.as_completed(tasks)]


@wrong("run_all", "nothing-returned")
async def forgets_return(records, job, concurrency):
    pool = Pool(concurrency)
    await asyncio.gather(*(pool.run(job, record) for record in records))


@wrong("run_all", "records-missing")
async def first_batch_only(records, job, concurrency):
    pool = Pool(concurrency)
    first = records[:concurrency]
    return await asyncio.gather(*(pool.run(job, record) for record in first))


# 04_counters: watch --------------------------------------------------------------


@wrong("watch", "swapped")
async def swapped(pool, timeline, every):
    while True:
        await asyncio.sleep(every)
        timeline.emit("pool", active=pool.pending_count, pending=pool.active_count)


@wrong("watch", "never-sleeps")
async def never_sleeps(pool, timeline, every):
    while True:
        timeline.emit("pool", active=pool.active_count, pending=pool.pending_count)


@wrong("watch", "never-sleeps")
async def sleeps_zero(pool, timeline, every):
    while True:
        await asyncio.sleep(0)
        timeline.emit("pool", active=pool.active_count, pending=pool.pending_count)


@wrong("watch", "no-loop")
async def samples_once(pool, timeline, every):
    await asyncio.sleep(every)
    timeline.emit("pool", active=pool.active_count, pending=pool.pending_count)


@wrong("watch", "stops-when-idle")
async def stops_when_idle(pool, timeline, every):
    while pool.active_count or pool.pending_count:
        await asyncio.sleep(every)
        timeline.emit("pool", active=pool.active_count, pending=pool.pending_count)


@wrong("watch", "ceiling-not-active")
async def reads_the_ceiling(pool, timeline, every):
    while True:
        await asyncio.sleep(every)
        timeline.emit("pool", active=pool.concurrency, pending=pool.pending_count)


@wrong("watch", "milliseconds")
async def milliseconds(pool, timeline, every):
    while True:
        await asyncio.sleep(every * 1000)
        timeline.emit("pool", active=pool.active_count, pending=pool.pending_count)


@wrong("watch", "wrong-kind")
async def wrong_kind(pool, timeline, every):
    while True:
        await asyncio.sleep(every)
        timeline.emit("sample", active=pool.active_count, pending=pool.pending_count)


@wrong("watch", "keeps-running-after-cancel")
async def swallows_cancel(pool, timeline, every):
    stop_after = 2
    while stop_after:
        try:
            await asyncio.sleep(every)
        except asyncio.CancelledError:
            stop_after -= 1  # a watcher that shrugs off cancel() once
        timeline.emit("pool", active=pool.active_count, pending=pool.pending_count)


# 05_backoff: backoff -------------------------------------------------------------


@wrong("backoff", "no-cap")
def no_cap(retry, base, cap, rng):
    delay = base * 2 ** (retry - 1)
    return delay / 2 + delay / 2 * rng.random()


@wrong("backoff", "jitter-past-cap")
def jitter_after_cap(retry, base, cap, rng):
    delay = min(cap, base * 2 ** min(retry - 1, 64))
    return delay + delay / 2 * rng.random()


@wrong("backoff", "jitter-before-cap")
def jitter_then_cap(retry, base, cap, rng):
    delay = base * 2 ** min(retry - 1, 64)
    return min(cap, delay / 2 + delay / 2 * rng.random())


@wrong("backoff", "overflow")
def float_power(retry, base, cap, rng):
    delay = min(cap, base * 2.0 ** (retry - 1))
    return delay / 2 + delay / 2 * rng.random()


@wrong("backoff", "exponent-off-by-one")
def exponent_is_retry(retry, base, cap, rng):
    delay = min(cap, base * 2 ** min(retry, 64))
    return delay / 2 + delay / 2 * rng.random()


@wrong("backoff", "no-jitter")
def no_jitter(retry, base, cap, rng):
    return min(cap, base * 2 ** min(retry - 1, 64))


@wrong("backoff", "full-jitter")
def full_jitter(retry, base, cap, rng):
    return min(cap, base * 2 ** min(retry - 1, 64)) * rng.random()


@wrong("backoff", "global-random")
def global_random(retry, base, cap, rng):
    delay = min(cap, base * 2 ** min(retry - 1, 64))
    return delay / 2 + delay / 2 * random.random()


@wrong("backoff", "linear")
def linear(retry, base, cap, rng):
    delay = min(cap, base * retry)
    return delay / 2 + delay / 2 * rng.random()


# 06_retry: retry -------------------------------------------------------------------


def _delay(number, base_delay, max_delay, rng, error):
    delay = backoff_delay(number, base=base_delay, cap=max_delay, rng=rng)
    return max(delay, error.retry_after or 0)


@wrong("retry", "budget-one-short")
async def budget_counts_attempts(attempt, *, max_retries, base_delay, max_delay, rng):
    for number in range(1, max_retries + 1):
        try:
            return await attempt()
        except RateLimitError as error:
            if number == max_retries:
                raise RetriesExhausted(number, max_retries, error) from error
            await asyncio.sleep(_delay(number, base_delay, max_delay, rng, error))


@wrong("retry", "retries-a-400")
async def retries_any_error(attempt, *, max_retries, base_delay, max_delay, rng):
    for number in range(1, max_retries + 2):
        try:
            return await attempt()
        except Exception as error:
            if number > max_retries:
                raise RetriesExhausted(number, max_retries, error) from error
            delay = backoff_delay(number, base=base_delay, cap=max_delay, rng=rng)
            await asyncio.sleep(max(delay, getattr(error, "retry_after", None) or 0))


@wrong("retry", "no-wait")
async def no_wait(attempt, *, max_retries, base_delay, max_delay, rng):
    for number in range(1, max_retries + 2):
        try:
            return await attempt()
        except RateLimitError as error:
            if number > max_retries:
                raise RetriesExhausted(number, max_retries, error) from error


@wrong("retry", "hint-ignored")
async def ignores_hint(attempt, *, max_retries, base_delay, max_delay, rng):
    for number in range(1, max_retries + 2):
        try:
            return await attempt()
        except RateLimitError as error:
            if number > max_retries:
                raise RetriesExhausted(number, max_retries, error) from error
            await asyncio.sleep(backoff_delay(number, base=base_delay, cap=max_delay,
                                              rng=rng))


@wrong("retry", "hint-replaces-backoff")
async def hint_instead(attempt, *, max_retries, base_delay, max_delay, rng):
    for number in range(1, max_retries + 2):
        try:
            return await attempt()
        except RateLimitError as error:
            if number > max_retries:
                raise RetriesExhausted(number, max_retries, error) from error
            delay = backoff_delay(number, base=base_delay, cap=max_delay, rng=rng)
            await asyncio.sleep(error.retry_after or delay)


@wrong("retry", "exhaustion-not-reported")
async def reraises_last(attempt, *, max_retries, base_delay, max_delay, rng):
    for number in range(1, max_retries + 2):
        try:
            return await attempt()
        except RateLimitError as error:
            if number > max_retries:
                raise
            await asyncio.sleep(_delay(number, base_delay, max_delay, rng, error))


@wrong("retry", "cause-lost")
async def cause_lost(attempt, *, max_retries, base_delay, max_delay, rng):
    for number in range(1, max_retries + 2):
        try:
            return await attempt()
        except RateLimitError as error:
            if number > max_retries:
                raise RetriesExhausted(number, max_retries, error) from None
            await asyncio.sleep(_delay(number, base_delay, max_delay, rng, error))


@wrong("retry", "waits-after-last-try")
async def sleeps_then_checks(attempt, *, max_retries, base_delay, max_delay, rng):
    for number in range(1, max_retries + 2):
        try:
            return await attempt()
        except RateLimitError as error:
            await asyncio.sleep(_delay(number, base_delay, max_delay, rng, error))
            if number > max_retries:
                raise RetriesExhausted(number, max_retries, error) from error


@wrong("retry", "never-gives-up")
async def retries_forever(attempt, *, max_retries, base_delay, max_delay, rng):
    number = 0
    while True:
        number += 1
        try:
            return await attempt()
        except RateLimitError as error:
            await asyncio.sleep(_delay(number, base_delay, max_delay, rng, error))


@wrong("retry", "retry-numbered-from-zero")
async def counts_from_zero(attempt, *, max_retries, base_delay, max_delay, rng):
    for number in range(max_retries + 1):
        try:
            return await attempt()
        except RateLimitError as error:
            if number == max_retries:
                raise RetriesExhausted(number + 1, max_retries, error) from error
            await asyncio.sleep(_delay(number, base_delay, max_delay, rng, error))


@wrong("retry", "delay-not-capped")
async def cap_forgotten(attempt, *, max_retries, base_delay, max_delay, rng):
    for number in range(1, max_retries + 2):
        try:
            return await attempt()
        except RateLimitError as error:
            if number > max_retries:
                raise RetriesExhausted(number, max_retries, error) from error
            delay = base_delay * 2 ** (number - 1)
            await asyncio.sleep(max(delay, error.retry_after or 0))


# 07_settle: settle_all and split -----------------------------------------------


def _outcomes(jobs, results):
    return [Outcome.from_result(i, r, attempts=0) for i, r in zip(jobs, results)]


@wrong("settle_all", "fail-fast-gather")
async def gather_fails_fast(jobs):
    return _outcomes(jobs, await asyncio.gather(*jobs.values()))


@wrong("settle_all", "fail-fast-taskgroup")
async def task_group(jobs):
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(job) for job in jobs.values()]
    return _outcomes(jobs, [task.result() for task in tasks])


@wrong("settle_all", "one-after-another")
async def one_by_one(jobs):
    outcomes = []
    for record_id, job in jobs.items():
        try:
            result = await job
        except Exception as error:
            result = error
        outcomes.append(Outcome.from_result(record_id, result, attempts=0))
    return outcomes


@wrong("settle_all", "failures-dropped")
async def successes_only(jobs):
    results = await asyncio.gather(*jobs.values(), return_exceptions=True)
    return [o for o in _outcomes(jobs, results) if o.ok]


@wrong("settle_all", "finish-order")
async def finish_order(jobs):
    async def settle_one(record_id, job):
        try:
            return Outcome.from_result(record_id, await job, attempts=0)
        except Exception as error:
            return Outcome.from_result(record_id, error, attempts=0)

    tasks = [settle_one(record_id, job) for record_id, job in jobs.items()]
    return [await done for done in asyncio.as_completed(tasks)]


@wrong("settle_all", "ids-mixed-up")
async def ids_sorted_apart(jobs):
    results = await asyncio.gather(*jobs.values(), return_exceptions=True)
    return _outcomes(sorted(jobs, reverse=True), results)[::-1]


@wrong("settle_all", "exception-as-value")
async def errors_as_values(jobs):
    results = await asyncio.gather(*jobs.values(), return_exceptions=True)
    return [Outcome(i, "succeeded", value=r) for i, r in zip(jobs, results)]


@wrong("split", "not-attempted-lost")
def failed_status_only(outcomes):
    succeeded = [o for o in outcomes if o.status == "succeeded"]
    failed = [o for o in outcomes if o.status == "failed"]
    return succeeded, failed


@wrong("split", "truthy-value")
def by_value(outcomes):
    return [o for o in outcomes if o.value], [o for o in outcomes if not o.value]


@wrong("split", "swapped")
def swapped_pair(outcomes):
    return [o for o in outcomes if not o.ok], [o for o in outcomes if o.ok]


@wrong("split", "order-lost")
def reversed_order(outcomes):
    succeeded, others = [], []
    for outcome in reversed(outcomes):
        (succeeded if outcome.ok else others).append(outcome)
    return succeeded, others


@wrong("split", "duplicated")
def everything_in_others(outcomes):
    return [o for o in outcomes if o.ok], list(outcomes)


@wrong("split", "nothing-returned")
def forgets_to_return(outcomes):
    succeeded = [o for o in outcomes if o.ok]
    others = [o for o in outcomes if not o.ok]
    print(succeeded, others)


# The tests -----------------------------------------------------------------------

WRONG_ANSWERS = [
    pytest.param(exercise, label, fn, id=f"{exercise}:{label}")
    for exercise, answers in CATALOGUE.items()
    for label, fn in answers.items()
]


@pytest.mark.parametrize(("exercise", "label", "fn"), WRONG_ANSWERS)
def test_wrong_answer_is_rejected_with_its_hint(exercise, label, fn):
    verdict = checks.grade(exercise, fn)

    assert verdict.status == checks.WRONG, verdict
    assert verdict.mistake == label.split("/")[0], verdict
    assert verdict.call and verdict.expected and verdict.got and verdict.hint


@pytest.mark.parametrize("exercise", sorted(checks.EXERCISES))
def test_catalogue_has_at_least_five_distinct_mistakes(exercise):
    mistakes = {label.split("/")[0] for label in CATALOGUE.get(exercise, {})}
    assert len(mistakes) >= 5, sorted(mistakes)


@pytest.mark.parametrize("exercise", sorted(checks.EXERCISES))
def test_worked_solution_passes(exercise):
    notebook = checks.EXERCISES[exercise].notebook
    solution = load_solutions(notebook).namespace()[exercise]

    verdict = checks.grade(exercise, solution)

    assert verdict.status == checks.PASSED, verdict


@pytest.mark.parametrize("exercise", sorted(checks.EXERCISES))
def test_labkit_reference_passes(exercise):
    verdict = checks.grade(exercise, checks.EXERCISES[exercise].reference)
    assert verdict.status == checks.PASSED, verdict


def _sync_stub(*args, **kwargs):
    raise NotImplementedError


async def _async_stub(*args, **kwargs):
    raise NotImplementedError


@pytest.mark.parametrize("exercise", sorted(checks.EXERCISES))
def test_untouched_stub_reads_as_not_attempted(exercise):
    is_async = asyncio.iscoroutinefunction(checks.EXERCISES[exercise].reference)
    stub = _async_stub if is_async else _sync_stub

    assert checks.grade(exercise, stub).status == checks.NOT_ATTEMPTED


def test_wrong_verdict_shows_input_expected_got_and_hint(capsys):
    use = checks.backoff(no_cap)

    printed = capsys.readouterr().out
    assert use is checks.EXERCISES["backoff"].reference
    for label in ("wrong", "input:", "expected:", "got:", "hint:", "labkit's version"):
        assert label in printed


def test_passed_check_hands_back_the_learners_function(capsys):
    solution = load_solutions("05_backoff").namespace()["backoff"]

    assert checks.backoff(solution) is solution
    assert "passed" in capsys.readouterr().out


def test_expectation_from_make_test_turns_a_surprise_into_an_error(monkeypatch):
    monkeypatch.setenv("LABKIT_EXPECT", "passed")
    with pytest.raises(AssertionError, match="not attempted"):
        checks.backoff(_sync_stub)

    monkeypatch.setenv("LABKIT_EXPECT", "not-attempted")
    assert checks.backoff(_sync_stub) is checks.EXERCISES["backoff"].reference


def test_async_answer_to_a_plain_exercise_gets_a_clear_hint():
    async def backoff(retry, base, cap, rng):
        return base

    verdict = checks.grade("backoff", backoff)

    assert verdict.mistake == "async-def"


# Blocking sleeps: the checks make `time.sleep` raise at once, so nothing sleeps.


def test_watch_with_time_sleep_is_told_it_blocks_the_loop():
    async def blocking_watch(pool, timeline, every):
        while True:
            time.sleep(every)
            timeline.emit("pool", active=pool.active_count, pending=pool.pending_count)

    verdict = checks.grade("watch", blocking_watch)

    assert (verdict.status, verdict.mistake) == (checks.WRONG, "blocking-sleep")


def test_retry_with_time_sleep_is_told_it_blocks_the_loop():
    async def blocking_retry(attempt, *, max_retries, base_delay, max_delay, rng):
        for number in range(1, max_retries + 2):
            try:
                return await attempt()
            except RateLimitError as error:
                if number > max_retries:
                    raise RetriesExhausted(number, max_retries, error) from error
                time.sleep(backoff_delay(number, base=base_delay, cap=max_delay,
                                         rng=rng))

    verdict = checks.grade("retry", blocking_retry)

    assert (verdict.status, verdict.mistake) == (checks.WRONG, "blocking-sleep")


def test_time_sleep_is_itself_again_after_a_check():
    real_sleep = time.sleep
    checks.grade("watch", checks.EXERCISES["watch"].reference)
    assert time.sleep is real_sleep


# Code that never ends: every check must still give a verdict, and Ctrl-C must
# still stop it. Only the wall-clock guard test waits in real time (briefly).


async def _spinning_run_all(records, job, concurrency):
    """A hand-rolled limiter that busy-waits: the virtual clock never moves."""
    running = 0

    async def one(record):
        nonlocal running
        while running >= concurrency:
            await asyncio.sleep(0)
        running += 1
        try:
            return await job(record)
        finally:
            running -= 1

    return await asyncio.gather(*(one(record) for record in records))


async def _spinning_watch(pool, timeline, every):
    """Samples on time by polling the clock; the polling stops the clock."""
    loop = asyncio.get_running_loop()
    due = loop.time() + every
    while True:
        await asyncio.sleep(0)
        if loop.time() >= due:
            timeline.emit("pool", active=pool.active_count, pending=pool.pending_count)
            due += every


@pytest.mark.parametrize(("exercise", "fn"), [("run_all", _spinning_run_all),
                                              ("watch", _spinning_watch)])
def test_busy_wait_on_sleep_zero_is_stopped_and_told_the_clock_is_stuck(exercise, fn):
    # The guard is set low so the test is short; say nothing about timing
    # beyond that the check came back.
    verdict = checks.grade(exercise, fn, wall_guard=0.3)

    assert (verdict.status, verdict.mistake) == (checks.WRONG, "clock-stuck"), verdict
    assert "never lets the clock move" in verdict.hint
    assert "sleep(0)" in verdict.hint


def test_ctrl_c_during_a_stuck_check_stops_it_and_goes_on_up():
    import _thread
    import threading

    unwound = []

    async def interrupted_spinner(records, job, concurrency):
        _thread.interrupt_main()  # as if the learner pressed Ctrl-C now
        try:
            while True:
                await asyncio.sleep(0)
        finally:
            unwound.append(True)

    with pytest.raises(KeyboardInterrupt):
        checks.grade("run_all", interrupted_spinner, wall_guard=60)

    assert unwound == [True]  # the worker loop's task was cancelled
    assert not [t for t in threading.enumerate() if t.name == "labkit-check"]


async def _waits_forever(*args, **kwargs):
    await asyncio.Event().wait()  # an event nobody sets


async def _retries_bare_except(attempt, *, max_retries, base_delay, max_delay,
                               rng):
    while True:
        try:
            return await attempt()
        except:  # noqa: E722 - the learner's mistake under test
            await asyncio.sleep(base_delay)


@pytest.mark.parametrize(("exercise", "fn"), [
    ("retry", _waits_forever),
    ("retry", _retries_bare_except),
    ("run_all", _waits_forever),
    ("settle_all", _waits_forever),
    ("call_endpoint", _waits_forever),
])
def test_function_that_never_finishes_is_still_running_after_600_s(exercise, fn):
    verdict = checks.grade(exercise, fn)

    assert (verdict.status, verdict.mistake) == (checks.WRONG, "never-finishes")
    assert verdict.got.startswith("still running after 600 s")


def test_code_that_swallows_the_600_s_cancel_is_stopped_from_outside(monkeypatch):
    from labkit.checks import _virtual

    monkeypatch.setattr(_virtual, "STOP_GRACE", 0.05)  # keep the test short

    async def shrugs_off_cancel(attempt, *, max_retries, base_delay, max_delay, rng):
        while True:
            try:
                await asyncio.sleep(1)
            except BaseException:  # noqa: BLE001 - the mistake under test
                pass

    verdict = checks.grade("retry", shrugs_off_cancel)

    assert (verdict.status, verdict.mistake) == (checks.WRONG, "never-finishes")
    assert "caught the cancellation" in verdict.got


# Learner values of any type: a check judges them and never crashes on them.


def _raising_with(**headers_to_hint):
    async def call_endpoint(client, record):
        response = await _post(client, record)
        if response.status_code == 429:
            raise RateLimitError("429", retry_after=headers_to_hint["hint"](response))
        if response.status_code >= 400:
            raise EndpointError(str(response.status_code),
                                status=headers_to_hint["status"](response))
        return _text(response)

    return call_endpoint


def test_retry_after_as_raw_header_text_is_told_to_parse_it():
    raw_text = _raising_with(hint=lambda r: r.headers.get("retry-after"),
                             status=lambda r: r.status_code)

    verdict = checks.grade("call_endpoint", raw_text)

    assert (verdict.status, verdict.mistake) == (checks.WRONG, "hint-as-text"), verdict
    assert "retry_after is '1' (text); parse it into seconds" in verdict.hint
    assert "parse_retry_after" in verdict.hint


@pytest.mark.parametrize(("hint", "status", "mistake"), [
    (lambda r: float("nan"), lambda r: r.status_code, "hint-not-seconds"),
    (lambda r: -1.0, lambda r: r.status_code, "hint-not-seconds"),
    (lambda r: True, lambda r: r.status_code, "hint-not-seconds"),
    (lambda r: parse_retry_after(r.headers), lambda r: str(r.status_code),
     "status-as-text"),
], ids=["nan", "negative", "bool", "status-text"])
def test_odd_types_in_the_error_are_named_not_crashed_on(hint, status, mistake):
    verdict = checks.grade("call_endpoint", _raising_with(hint=hint, status=status))

    assert (verdict.status, verdict.mistake) == (checks.WRONG, mistake), verdict


class _Unjudgeable:
    """A learner value whose comparison and repr both raise."""

    def __eq__(self, other):
        raise RuntimeError("cannot compare")

    __hash__ = object.__hash__

    def __repr__(self):
        raise RuntimeError("cannot show")


def test_a_value_that_cannot_be_compared_or_shown_is_wrong_not_a_crash():
    async def run_all(records, job, concurrency):
        return [_Unjudgeable() for _ in records]

    verdict = checks.grade("run_all", run_all)

    assert verdict.status == checks.WRONG, verdict
    assert "cannot be shown" in verdict.got


# Signatures and return types: the hint names what is really wrong.


def test_keyword_only_validate_knobs_is_told_its_signature_is_wrong():
    def validate_knobs(*, max_concurrency, max_retries, base_delay_ms, max_delay_ms):
        if max_concurrency < 1:
            raise ValueError("MAX_CONCURRENCY")

    verdict = checks.grade("validate_knobs", validate_knobs)

    assert (verdict.status, verdict.mistake) == (checks.WRONG, "signature"), verdict
    assert "signature is wrong" in verdict.hint
    assert "raise ValueError" not in verdict.hint


def test_async_exercise_with_a_missing_parameter_is_told_its_signature_is_wrong():
    async def retry(attempt, *, max_retries, base_delay, max_delay):  # no rng
        return await attempt()

    verdict = checks.grade("retry", retry)

    assert (verdict.status, verdict.mistake) == (checks.WRONG, "signature"), verdict
    assert "signature is wrong" in verdict.hint


async def _settle_generator(jobs):
    results = await asyncio.gather(*jobs.values(), return_exceptions=True)
    return (Outcome.from_result(record_id, result, attempts=0)
            for record_id, result in zip(jobs, results))


async def _run_all_generator(records, job, concurrency):
    pool = Pool(concurrency)
    results = await asyncio.gather(*(pool.run(job, record) for record in records))
    return (result for result in results)


def _split_generators(outcomes):
    return ((o for o in outcomes if o.ok), (o for o in outcomes if not o.ok))


@pytest.mark.parametrize(("exercise", "fn", "mistake"), [
    ("settle_all", _settle_generator, "not-a-list"),
    ("run_all", _run_all_generator, "not-a-list"),
    ("split", _split_generators, "not-lists"),
])
def test_a_generator_instead_of_a_list_is_told_to_return_a_list(exercise, fn, mistake):
    verdict = checks.grade(exercise, fn)

    assert (verdict.status, verdict.mistake) == (checks.WRONG, mistake), verdict
    assert "list" in verdict.hint


@pytest.mark.parametrize("answer", ["0.1", -1, float("nan"), True],
                         ids=["text", "negative", "nan", "bool"])
def test_backoff_that_is_not_seconds_is_told_so_not_no_jitter(answer):
    def backoff(retry, base, cap, rng):
        return answer

    verdict = checks.grade("backoff", backoff)

    assert (verdict.status, verdict.mistake) == (checks.WRONG, "not-seconds"), verdict
    assert "number of seconds, never negative" in verdict.hint
