"""Results files: one flushed line per settled record, read back to resume."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

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

    class Recording(RecordingEndpoint):
        def __init__(self, **options):
            super().__init__(**options)
            endpoints.append(self)

    monkeypatch.setattr(labkit.cli, "MockEndpoint", Recording)
    code = main(["run", "--clock", "virtual", "-q", "--json", "--output", str(path),
                 "--resume"])
    report = json.loads(capsys.readouterr().out)

    assert code == 0
    assert set(endpoints[0].sent()) == left
    assert [o["record_id"] for o in report["outcomes"]] == [r.id for r in records]
    assert report["succeeded"] == 100


# -- a full disk, text that is not Unicode, damaged or dangerous files ---------


class _DiskFillsUp:
    """A file handle that takes ``room`` more bytes, then reports a full disk.

    Like a real unbuffered file: a write() that does not fit takes what fits
    and returns that count; only the next write() raises.
    """

    def __init__(self, handle, room):
        self.handle, self.room = handle, room

    def write(self, data):
        if self.room == 0:
            raise OSError(28, "No space left on device")
        taken = bytes(data[: self.room])
        self.room -= len(taken)
        return self.handle.write(taken)

    def __getattr__(self, name):
        return getattr(self.handle, name)


def test_a_line_cut_short_by_a_full_disk_is_an_error_and_is_cut_back(tmp_path):
    path = tmp_path / "results.jsonl"
    writer = ResultsWriter.create(path)
    writer.write(_ok("a"))
    writer._handle = _DiskFillsUp(writer._handle, room=10)
    with pytest.raises(OSError, match="No space left"):
        writer.write(_ok("b"))
    assert writer.error is not None and writer.written == 1

    # Nothing more is appended after a failure, even if room came back.
    writer._handle.room = 10_000
    with pytest.raises(OSError):
        writer.write(_ok("c"))
    writer.close()
    # The cut line is gone: the file ends with a whole line, and resumes.
    assert path.read_bytes().endswith(b"\n") and path.read_text().count("\n") == 1
    past = read_results(path, IDS)
    assert list(past.succeeded) == ["a"] and past.broken_tail is None


def test_a_file_size_limit_on_the_last_line_fails_the_run_then_resume_works(
    tmp_path,
):
    command = [sys.executable, "-m", "labkit", "run", "--clock", "virtual", "-q",
               "--json", "--output"]
    whole = tmp_path / "whole.jsonl"
    assert subprocess.run([*command, str(whole)], capture_output=True).returncode == 0
    size = whole.stat().st_size

    def limit_file_size():
        # The last line is cut: write() takes part of it and returns short.
        resource.setrlimit(resource.RLIMIT_FSIZE, (size - 20, size - 20))

    path = tmp_path / "results.jsonl"
    done = subprocess.run([*command, str(path)], capture_output=True, text=True,
                          preexec_fn=limit_file_size, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "cannot write" in done.stderr and "Traceback" not in done.stderr
    assert path.read_bytes().endswith(b"\n")
    assert path.read_text().count("\n") == 99

    again = subprocess.run([*command, str(path), "--resume"], capture_output=True,
                           text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["succeeded"] == 100 and report["requests"] < 5  # only the last
    assert path.read_text().count("\n") == 100
    assert len(read_results(path, {o for o in _ids(whole)}).succeeded) == 100


def test_an_id_or_value_that_is_not_unicode_never_crashes_the_writer(tmp_path):
    path = tmp_path / "results.jsonl"
    with ResultsWriter.create(path) as writer:
        writer.write(Outcome("x\ud800", "succeeded", value="y\udfff", attempts=1))
        writer.write(_ok("a"))
    assert writer.written == 2 and path.read_bytes().isascii()
    # Read back, such a line is refused by file and line, not with a crash.
    refused = rf"{path}:1: field 'record_id' is not valid"
    with pytest.raises(ResultsError, match=refused):
        read_results(path, IDS | {"x\ud800"})


@pytest.mark.parametrize("field", ["record_id", "value"])
def test_resuming_a_file_with_a_lone_surrogate_is_refused_and_leaves_it(
    tmp_path, field, capsys
):
    line = {"record_id": "a", "status": "succeeded", "value": "x"}
    line[field] = "x\ud800"
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(line) + "\n")
    before = path.read_bytes()
    records = tmp_path / "records.jsonl"
    records.write_text('{"id": "a", "note": "Invoice 1 was charged twice."}\n')

    code = main(["run", "--clock", "virtual", "-q", "--records", str(records),
                 "--output", str(path), "--resume"])
    assert code == 2
    assert f"{path}:1: field '{field}' is not valid Unicode" in capsys.readouterr().err
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["records.jsonl",
                                                          "results.jsonl"]


def _ids(path):
    return [json.loads(line)["record_id"] for line in path.read_text().splitlines()]


def _one_success(tmp_path):
    path = tmp_path / "results.jsonl"
    with ResultsWriter.create(path) as writer:
        writer.write(_ok("a"))
    return path


def test_resume_does_not_follow_a_symlink_planted_at_the_temporary_name(tmp_path):
    path = _one_success(tmp_path)
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    (tmp_path / "results.jsonl.tmp").symlink_to(precious)

    with ResultsWriter.resume(path, read_results(path, IDS).succeeded.values()):
        pass
    assert precious.read_text() == "keep me\n"
    assert list(read_results(path, IDS).succeeded) == ["a"]
    leftovers = {p.name for p in tmp_path.iterdir()}
    assert leftovers == {"results.jsonl", "results.jsonl.tmp", "precious.txt"}


def test_resume_refuses_a_symlinked_results_file_and_leaves_both(tmp_path):
    real = _one_success(tmp_path)
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    before = real.read_bytes()
    with pytest.raises(ResultsError, match=f"{link}: is a symbolic link"):
        ResultsWriter.resume(link, [])
    assert link.is_symlink() and real.read_bytes() == before


def test_resume_refuses_a_read_only_file_and_keeps_other_permissions(tmp_path):
    path = _one_success(tmp_path)
    path.chmod(0o444)
    with pytest.raises(ResultsError, match="is read-only"):
        ResultsWriter.resume(path, [])
    assert path.read_text().count("\n") == 1

    path.chmod(0o640)
    with ResultsWriter.resume(path, []):
        pass
    assert path.stat().st_mode & 0o777 == 0o640
