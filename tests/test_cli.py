"""The command line, as a user types it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from labkit.cli import main


def _labkit(*args, env=None):
    environment = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "labkit", "run", *args],
        capture_output=True, text=True, env=environment, timeout=120,
    )


def test_the_default_run_in_real_time_prints_every_stage():
    # The one test about real time: it checks what is printed, never how long.
    done = _labkit()
    lines = done.stderr.splitlines()

    assert done.returncode == 0, done.stderr
    assert lines[0].startswith("[INIT] 100 records, pool of 9")
    pool = [line for line in lines if line.startswith("[POOL]")]
    assert any("active=9 pending=" in line for line in pool)
    assert any(line.startswith("[RETRY]") for line in lines)
    assert "[DONE] succeeded: 100, failed: 0" in done.stderr
    assert "Traceback" not in done.stderr


def test_json_goes_to_stdout_and_flags_reach_the_config(capsys):
    code = main(["run", "--clock", "virtual", "--json", "--max-concurrency", "4",
                 "--seed", "3", "--quiet"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["succeeded"] == 100 and len(report["outcomes"]) == 100


def test_environment_knobs_are_read_and_flags_win(capsys, monkeypatch):
    monkeypatch.setenv("MAX_RETRIES", "0")
    assert main(["run", "--clock", "virtual", "--quiet", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["failed"] > 0

    code = main(["run", "--clock", "virtual", "--quiet", "--max-retries", "3"])
    assert code == 0


def test_naive_mode_and_verbose_retry_lines(capsys):
    assert main(["run", "--clock", "virtual", "--naive", "--verbose"]) == 0
    err = capsys.readouterr().err
    assert "naive (no pool)" in err
    assert "[RETRY] CR-0011 attempt 1 failed, retrying in" in err


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (["--max-concurrency", "0"], {}, "MAX_CONCURRENCY=0 is out of range"),
        ([], {"MAX_CONCURRENCY": "0"}, "MAX_CONCURRENCY=0 is out of range"),
        ([], {"BASE_DELAY_MS": "-5"}, "BASE_DELAY_MS=-5 is out of range"),
        (["--max-retries", "lots"], {}, "'lots' is not a whole number"),
        (["--jitter", "half"], {}, "invalid choice: 'half'"),
        (["--latency-ms", "-1"], {}, "'-1' must be 0 or more"),
        (["--records", "missing.jsonl"], {}, "missing.jsonl: cannot read"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_no_traceback(args, env, words):
    done = _labkit("--clock", "virtual", *args, env=env)
    assert done.returncode == 2
    assert words in done.stderr
    assert "Traceback" not in done.stderr
