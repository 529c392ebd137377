"""Results files: one flushed line per settled record, read back to resume."""

from __future__ import annotations

import json

import pytest

import labkit.cli
from labkit import Config, Outcome, simulate
from labkit.cli import main
from labkit.results import ResultsError, ResultsWriter, read_results
from recording_endpoint import RecordingEndpoint

IDS = {"a", "b", "c"}


def _ok(record_id):
    return Outcome(record_id, "succeeded", value=f"answer {record_id}", attempts=1)


def _failed(record_id):
    return Outcome(record_id, "failed", reason="timeout after 1 attempt, not retried",
                   error_type="RequestTimeoutError", attempts=1, kind="timeout")


def test_each_outcome_is_on_disk_as_soon_as_it_is_written(tmp_path):
    path = tmp_path / "results.jsonl"
    with ResultsWriter.create(path) as writer:
        writer.write(_ok("a"))
        # Read while the writer is still open: nothing waits in a buffer.
        assert path.read_text().count("\n") == 1
        writer.write(_failed("b"))
        assert read_results(path, IDS).outcomes == {"a": _ok("a"), "b": _failed("b")}
    assert writer.written == 2


def test_a_new_results_file_never_replaces_an_old_one(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text("precious\n")
    with pytest.raises(ResultsError, match="already exists"):
        ResultsWriter.create(path)
    assert path.read_text() == "precious\n"


def test_resuming_keeps_the_successes_and_drops_the_rest(tmp_path):
    path = tmp_path / "results.jsonl"
    with ResultsWriter.create(path) as writer:
        for outcome in (_ok("a"), _failed("b")):
            writer.write(outcome)

    past = read_results(path, IDS)
    with ResultsWriter.resume(path, past.succeeded.values()) as writer:
        assert list(read_results(path, IDS).outcomes) == ["a"]
        writer.write(_ok("b"))
    assert list(read_results(path, IDS).succeeded) == ["a", "b"]
    assert not (tmp_path / "results.jsonl.tmp").exists()


def test_a_missing_file_means_nothing_done_yet(tmp_path):
    past = read_results(tmp_path / "nothing.jsonl", IDS)
    assert past.outcomes == {} and past.broken_tail is None


@pytest.mark.parametrize(
    "tail",
    [
        b'{"record_id": "b", "status": "succ',  # a write cut short
        b'{"record_id": "b", "note": "caf\xc3',  # cut inside a UTF-8 character
        b"\x00" * 40,  # what some file systems leave after a power cut
        b"{not json at all}\n",  # broken, though the line did end
    ],
)
def test_a_broken_last_line_is_reported_and_ignored(tmp_path, tail):
    path = tmp_path / "results.jsonl"
    path.write_bytes(json.dumps({"record_id": "a", "status": "succeeded",
                                 "value": "x"}).encode() + b"\n" + tail)
    past = read_results(path, IDS)
    assert list(past.succeeded) == ["a"]  # the complete line counts
    assert past.broken_tail.startswith(f"{path}:2: a broken last line")


def test_a_whole_last_line_without_its_newline_still_counts(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps({"record_id": "a", "status": "succeeded", "value": "x"}))
    past = read_results(path, IDS)
    assert list(past.succeeded) == ["a"] and past.broken_tail is None


def test_resume_after_a_torn_line_finishes_with_each_record_once(tmp_path, records,
                                                                  capsys):
    path = tmp_path / "results.jsonl"
    config = Config()
    first = simulate(records[:40], config)
    lines = [json.dumps({"record_id": o.record_id, "status": o.status,
                         "value": o.value, "attempts": o.attempts})
             for o in first.outcomes]
    path.write_text("\n".join(lines) + "\n" + lines[0][:25])  # a torn 41st line

    code = main(["run", "--clock", "virtual", "--output", str(path), "--resume"])
    err = capsys.readouterr().err
    assert code == 0
    assert f"{path}:41: a broken last line" in err
    assert "40 of 100 records already succeeded, sending 60" in err

    final = read_results(path, {r.id for r in records})
    assert len(path.read_text().splitlines()) == 100
    assert len(final.succeeded) == 100 and final.broken_tail is None


def test_a_resume_sends_only_what_has_not_succeeded(tmp_path, records, capsys,
                                                    monkeypatch):
    path = tmp_path / "results.jsonl"
    assert main(["run", "--clock", "virtual", "-q", "--output", str(path),
                 "--faults", "quota=0.3", "--seed", "4"]) == 1
    ids = {r.id for r in records}
    left = ids - set(read_results(path, ids).succeeded)
    assert 0 < len(left) < 100
    capsys.readouterr()

    endpoints = []

    def recording(**options):
        endpoints.append(RecordingEndpoint(**options))
        return endpoints[-1]

    monkeypatch.setattr(labkit.cli, "MockEndpoint", recording)
    code = main(["run", "--clock", "virtual", "-q", "--json", "--output", str(path),
                 "--resume"])
    report = json.loads(capsys.readouterr().out)

    assert code == 0
    assert set(endpoints[0].sent()) == left
    assert [o["record_id"] for o in report["outcomes"]] == [r.id for r in records]
    assert report["succeeded"] == 100
