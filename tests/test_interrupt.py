"""Interruption: cancelling, clearing the queue, Ctrl-C, and killing then resuming.

The first tests run on the virtual clock. The subprocess tests are about real
time and real signals: they wait for progress in the results file rather than
for a number of seconds, so a slow machine moves the kill, not the verdict.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit import BatchRun, Config, run_virtual
from labkit.cli import main
from labkit.mock_server import transform_note
from labkit.results import ResultsWriter, read_results
from recording_endpoint import RecordingEndpoint


def _ids(outcomes):
    return [o.record_id for o in outcomes]


# -- cancelling the task that runs a batch -----------------------------------


def _cancelled_batch(records, at):
    """Run the 100 records, cancel the batch's task at ``at`` seconds."""
    endpoint = RecordingEndpoint(limit=10, window=1.0, latency=0.3)

    async def go():
        batch = BatchRun(records, Config(), endpoint=endpoint)
        task = asyncio.create_task(batch.run())
        await asyncio.sleep(at)
        task.cancel()
        try:
            result = await task
        except asyncio.CancelledError:
            result = "cancelled"
        left = asyncio.all_tasks() - {asyncio.current_task()}
        return batch, result, left

    batch, result, left = run_virtual(go)
    return batch, result, left, endpoint


def test_cancelling_the_batch_raises_to_its_caller_after_the_children_end(records):
    batch, result, left, endpoint = _cancelled_batch(records, at=2.5)
    assert result == "cancelled"  # not a report, as if it had finished
    assert left == set()  # every record's task was cancelled and awaited
    assert endpoint.inside == 0  # nothing is left inside the endpoint
    assert batch.pool.active_count == 0 and batch.pool.pending_count == 0


def test_a_cancelled_batch_gives_an_honest_partial_report(records):
    batch, _, _, endpoint = _cancelled_batch(records, at=2.5)
    report = batch.report(interrupted=True)

    assert _ids(report.outcomes) == [r.id for r in records]
    assert report.interrupted and report.duration == pytest.approx(2.5)
    in_flight = [o for o in report.failed if o.kind == "interrupted"]
    assert report.failed == in_flight and 0 < len(in_flight) <= 9
    for outcome in in_flight:
        expected = f"interrupted after {outcome.attempts} attempt"
        assert outcome.reason.startswith(expected)
    assert report.not_attempted and all(
        endpoint.sent()[o.record_id] == 0 for o in report.not_attempted
    )
    assert set(endpoint.stats.served_ids) == {o.record_id for o in report.succeeded}
    assert len(report.succeeded) + len(report.failed) + len(report.not_attempted) == 100


# -- clearing the pool's queue mid-batch ---------------------------------------


def _cleared_batch(records, *, backlog, stop):
    endpoint = RecordingEndpoint(limit=10, window=1.0, latency=0.3)

    async def go():
        batch = BatchRun(records, Config(), endpoint=endpoint, backlog=backlog)
        task = asyncio.create_task(batch.run())
        await asyncio.sleep(2.5)
        cleared = batch.stop() if stop else batch.pool.clear_queue()
        counts = batch.pool.active_count, batch.pool.pending_count
        then = {"log": len(endpoint.log), "settled": len(batch.settled)}
        report = await task
        then["events"] = batch.timeline.counts
        return report, cleared, counts, then

    report, cleared, counts, then = run_virtual(go)
    return report, cleared, counts, then, endpoint


@pytest.mark.parametrize("backlog", [1_000, 12])
@pytest.mark.parametrize("stop", [False, True])
def test_clearing_the_queue_midbatch_reports_the_queued_as_not_attempted(
    records, backlog, stop
):
    report, cleared, counts, then, endpoint = _cleared_batch(
        records, backlog=backlog, stop=stop
    )
    assert cleared > 0 and counts[1] == 0 and counts[0] <= 9
    # A cleared record is logged and plotted as not attempted, not as failed.
    assert then["events"]["not_attempted"] == cleared
    assert then["events"]["failed"] == 0

    # The batch ends by itself, with a report, not an interruption.
    assert not report.interrupted
    assert _ids(report.outcomes) == [r.id for r in records]
    assert report.failed == []
    assert len(report.succeeded) + len(report.not_attempted) == 100

    # Nothing queued or not yet admitted was sent after the clear.
    sent = endpoint.sent()
    assert all(sent[o.record_id] == 0 for o in report.not_attempted)
    assert set(endpoint.stats.served_ids) == {o.record_id for o in report.succeeded}


def test_after_a_clear_only_the_records_in_flight_carry_on(records):
    report, _, (active, _), then, endpoint = _cleared_batch(
        records, backlog=12, stop=False
    )
    before = {rid for rid, what in endpoint.log[: then["log"]] if what == "sent"}
    after = {rid for rid, what in endpoint.log[then["log"] :] if what == "sent"}

    # No record starts after the clear; the ones holding a slot all finish.
    assert after <= before
    assert active > 0
    assert len(report.succeeded) == then["settled"] + active


# -- a results file that cannot be written stops the run -----------------------


class _FullDisk:
    def write(self, data):
        raise OSError(28, "No space left on device")

    def close(self):
        pass


def test_a_results_file_that_cannot_be_written_stops_the_run(records, tmp_path, capsys,
                                                              monkeypatch):
    output = tmp_path / "results.jsonl"
    real_create = ResultsWriter.create

    def create_on_a_full_disk(path):
        writer = real_create(path)
        writer._handle.close()
        writer._handle = _FullDisk()
        return writer

    monkeypatch.setattr(ResultsWriter, "create", create_on_a_full_disk)
    code = main(["run", "--clock", "virtual", "--output", str(output), "--json"])

    captured = capsys.readouterr()
    assert code == 1
    assert "cannot write" in captured.err and "No space left" in captured.err
    report = json.loads(captured.out)
    assert report["succeeded"] + report["failed"] + report["not_attempted"] == 100
    assert report["interrupted"] and report["not_attempted"] > 0


# -- real processes, real signals ------------------------------------------------

# Faster than the shipped endpoint, so a whole run takes about a second, and
# slow enough per request that several records are always in flight.
FAST = {"RATE_LIMIT": "20", "RATE_WINDOW_MS": "200"}

DRIVER = """
import json, sys
from labkit import cli, mock_server

# Log every request the endpoint receives, one flushed line each, so the
# test can tell which records this process sent.
sent_log = open(sys.argv[1], "a", buffering=1)
original = mock_server.MockEndpoint.handle

async def handle(self, request):
    sent_log.write(json.loads(request.content)["metadata"]["record_id"] + "\\n")
    sent_log.flush()
    return await original(self, request)

mock_server.MockEndpoint.handle = handle
sys.exit(cli.main(sys.argv[2:]))
"""


def _default_sigint():
    # A CI runner may start us with SIGINT ignored, and children inherit that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(command, env_extra=None):
    env = {**os.environ, **(env_extra or {}), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_default_sigint,
    )


def _lines_in(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _wait_for_lines(process, path: Path, count: int, limit: float = 60.0) -> bool:
    """Wait until ``path`` has ``count`` lines; False if the process ended first."""
    deadline = time.monotonic() + limit
    while _lines_in(path) < count:
        if process.poll() is not None:
            return False
        assert time.monotonic() < deadline, f"no progress in {limit}s"
        time.sleep(0.005)
    return True


def _succeeded_in(path: Path, ids) -> set[str]:
    return set(read_results(path, ids).succeeded)


def test_ctrl_c_stops_cleanly_with_the_partial_report(tmp_path, records):
    output = tmp_path / "results.jsonl"
    command = [sys.executable, "-m", "labkit", "run", "--json", "--output",
               str(output), "--latency-ms", "50"]
    process = _start(command)
    assert _wait_for_lines(process, output, 15), "the run ended before Ctrl-C"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)

    assert process.returncode == 130
    assert "Traceback" not in err and "Exception ignored" not in err
    assert "[DONE] interrupted" in err and "(interrupted)" in err

    report = json.loads(out)
    outcomes = report["outcomes"]
    assert report["interrupted"] is True
    assert [o["record_id"] for o in outcomes] == [r.id for r in records]
    assert report["succeeded"] + report["failed"] + report["not_attempted"] == 100
    assert report["not_attempted"] > 0
    in_flight = [o for o in outcomes if o["status"] == "failed"]
    assert all(o["kind"] == "interrupted" for o in in_flight) and len(in_flight) <= 9

    # The file holds exactly the records that settled before Ctrl-C.
    settled = {o["record_id"] for o in outcomes if o["status"] == "succeeded"}
    assert _succeeded_in(output, {r.id for r in records}) == settled


def test_killed_at_random_points_then_resumed_nothing_is_lost(tmp_path, records):
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)
    ids = {r.id for r in records}
    output = tmp_path / "results.jsonl"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)

    runs = []
    for number, how in enumerate(["early-kill", "int", "kill", "int", "kill", None]):
        done_before = _succeeded_in(output, ids)
        sent_log = tmp_path / f"sent-{number}.log"
        command = [sys.executable, str(driver), str(sent_log), "run", "--output",
                   str(output), "--resume", "--latency-ms", "20"]
        process = _start(command, FAST)
        code, err = _interrupt(process, how, output, len(done_before), rng)

        sent = set(sent_log.read_text().split()) if sent_log.exists() else set()
        runs.append((how, code, len(done_before), len(sent)))
        context = f"seed {seed}, runs so far {runs}"
        assert not sent & done_before, f"sent again after success; {context}"
        assert "Traceback" not in err, context
        assert code in _expected_codes(how), context

    # One line per record, every one succeeded, each with the right answer.
    lines = output.read_text().splitlines()
    final = read_results(output, ids)
    assert final.broken_tail is None
    assert len(lines) == 100 and set(final.succeeded) == ids, runs
    notes = {r.id: r.note for r in records}
    for outcome in final.succeeded.values():
        assert outcome.value == transform_note(notes[outcome.record_id])
    assert runs[-1][1] == 0


def _interrupt(process, how, output, lines_before, rng):
    """Let the run make random progress, then signal it as ``how`` says."""
    if how == "early-kill":
        time.sleep(rng.uniform(0.0, 0.4))  # maybe still importing, maybe running
        process.kill()
    elif how is not None:
        target = lines_before + rng.randint(1, max(1, (100 - lines_before) // 2))
        if _wait_for_lines(process, output, target):
            time.sleep(rng.uniform(0.0, 0.02))
            process.send_signal(signal.SIGINT if how == "int" else signal.SIGKILL)
    _, err = process.communicate(timeout=60)
    return process.returncode, err


def _expected_codes(how):
    # A signal can land after the last record settled; then the run just ends.
    if how == "int":
        return {130, 0}
    if how in ("kill", "early-kill"):
        return {-signal.SIGKILL, 0}
    return {0}


# -- Ctrl-C pressed twice, early, or while the batch will not stop ---------------

# A driver that makes Ctrl-C land at exact moments, from inside the process:
# os.kill(own pid) runs the handler at the next bytecode, so where it lands
# does not depend on how busy the machine is. argv[1] says when.
SELF_SIGNAL_DRIVER = """
import asyncio, os, signal, sys
from labkit import cli, mock_server

when = sys.argv[1]

def ctrl_c(times=1):
    for _ in range(times):
        os.kill(os.getpid(), signal.SIGINT)

if when == "twice-mid-write":
    # Two Ctrl-C's one right after the other, while an outcome is written.
    from labkit import results
    original_write = results.ResultsWriter.write
    def write(self, outcome):
        original_write(self, outcome)
        if self.written == 5:
            ctrl_c(2)
    results.ResultsWriter.write = write

elif when == "after-init":
    # Ctrl-C as soon as the batch exists, before its loop runs.
    class Batch(cli.BatchRun):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            ctrl_c()
    cli.BatchRun = Batch

elif when == "stubborn":
    # A request that ignores cancelling: the run must still end.
    cli.STOP_GRACE_SECONDS = 0.3
    cli.CLOSE_GRACE_SECONDS = 0.3
    async def handle(self, request):
        ctrl_c()
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                pass
    mock_server.MockEndpoint.handle = handle

# As `python -m labkit` calls it: main() without argv is the whole program.
sys.argv[1:] = sys.argv[2:]
sys.exit(cli.main())
"""


def _self_signalled_run(tmp_path, when, *flags):
    driver = tmp_path / "self_signal.py"
    driver.write_text(SELF_SIGNAL_DRIVER)
    output = tmp_path / "results.jsonl"
    command = [sys.executable, str(driver), when, "run", "--json", "--output",
               str(output), "--latency-ms", "20", *flags]
    process = _start(command, FAST)
    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"hung after Ctrl-C ({when}); stderr ends: {err[-500:]}")
    return process.returncode, out, err, output


def _check_partial_report(code, out, err, output, records):
    assert code == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert "labkit: interrupted" not in err  # the batch's report, not the bare line
    report = json.loads(out)
    assert report["interrupted"] is True
    assert [o["record_id"] for o in report["outcomes"]] == [r.id for r in records]
    # The file holds exactly the report's successes, each on a whole line.
    settled = {o["record_id"] for o in report["outcomes"] if o["status"] == "succeeded"}
    past = read_results(output, {r.id for r in records})
    assert past.broken_tail is None and set(past.succeeded) == settled
    return report


def test_a_second_ctrl_c_still_gives_the_report_and_130(tmp_path, records):
    code, out, err, output = _self_signalled_run(tmp_path, "twice-mid-write")
    report = _check_partial_report(code, out, err, output, records)
    assert report["not_attempted"] > 0
    assert "stopping already" in err  # the second one was seen, and ignored


def test_ctrl_c_right_after_init_reports_every_record_not_attempted(tmp_path,
                                                                    records):
    code, out, err, output = _self_signalled_run(tmp_path, "after-init")
    report = _check_partial_report(code, out, err, output, records)
    assert report["not_attempted"] == 100 and report["requests"] == 0
    assert "[DONE] interrupted" in err


def test_records_that_ignore_cancelling_do_not_hang_the_exit(tmp_path, records):
    started = time.monotonic()
    code, out, err, output = _self_signalled_run(tmp_path, "stubborn")
    _check_partial_report(code, out, err, output, records)
    assert "gave up waiting" in err
    assert time.monotonic() - started < 20


def test_two_real_ctrl_c_in_quick_succession_exit_130(tmp_path, records):
    # What `timeout` does, and an impatient user: SIGINT twice, from outside,
    # at gaps where the second lands in the cancelling, the report or the exit.
    for gap in (0.0005, 0.005, 0.05):
        output = tmp_path / f"results-{gap}.jsonl"
        command = [sys.executable, "-m", "labkit", "run", "--json", "--output",
                   str(output), "--latency-ms", "20"]
        process = _start(command, FAST)
        assert _wait_for_lines(process, output, 10), "the run ended before Ctrl-C"
        process.send_signal(signal.SIGINT)
        time.sleep(gap)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"hung after two Ctrl-C's {gap}s apart")
        _check_partial_report(process.returncode, out, err, output, records)
