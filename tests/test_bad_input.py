"""Bad input, at every entry point, is refused with what, where and what is allowed.

Each case gives the input and the words its message must hold: the bad value
(what), the flag, variable, keyword or file:line (where), and the allowed
values (what is allowed). From the command line, each must exit with 2 and
no traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from labkit import Config, ConfigError, Faults
from labkit.cli import main
from labkit.config import KNOBS

GOOD_RECORD = '{"id": "a", "note": "Invoice 1 was charged twice."}\n'
RUN = ["run", "--clock", "virtual", "-q"]

# (name, extra flags, environment) -> words the message must hold.
FLAG_AND_ENV_CASES = [
    ("flag not a number", ["--max-concurrency", "abc"], {},
     ["--max-concurrency", "'abc'", "whole number"]),
    ("flag out of range", ["--max-concurrency", "0"], {},
     ["MAX_CONCURRENCY=0", "from --max-concurrency", "from 1 to 10000"]),
    ("negative retries", ["--max-retries", "-1"], {},
     ["MAX_RETRIES=-1", "from --max-retries", "from 0"]),
    ("timeout of zero", ["--request-timeout-ms", "0"], {},
     ["REQUEST_TIMEOUT_MS=0", "from --request-timeout-ms", "from 1"]),
    ("fractional limit", ["--rate-limit", "1.5"], {},
     ["--rate-limit", "'1.5'", "whole number"]),
    ("cap below base", ["--max-delay-ms", "100"], {},
     ["MAX_DELAY_MS=100", "from --max-delay-ms", "BASE_DELAY_MS is the default",
      "at least the base"]),
    ("unknown jitter", ["--jitter", "sometimes"], {},
     ["--jitter", "'sometimes'", "none", "equal", "full"]),
    ("unknown policy", ["--retry-policy", "always"], {},
     ["--retry-policy", "'always'", "lab", "production"]),
    ("unknown clock", ["--clock", "sundial"], {},
     ["--clock", "'sundial'", "real", "virtual"]),
    ("negative latency", ["--latency-ms", "-5"], {},
     ["--latency-ms", "'-5'", "0 or more"]),
    ("latency not a number", ["--latency-ms", "fast"], {},
     ["--latency-ms", "'fast'", "not a number"]),
    ("seed not a number", ["--seed", "x"], {}, ["--seed", "'x'", "int"]),
    ("fault rate above 1", ["--faults", "timeout=2"], {},
     ["--faults", "timeout=2", "from 0 to 1"]),
    ("unknown fault", ["--faults", "gremlins=0.1"], {},
     ["--faults", "'gremlins'", "server_error", "disconnect", "should_retry"]),
    ("fault without a rate", ["--faults", "timeout"], {},
     ["--faults", "'timeout'", "name=value"]),
    ("fault rate not a number", ["--faults", "timeout=often"], {},
     ["--faults", "timeout='often'", "from 0 to 1"]),
    ("fault rates above 1 in total", ["--faults", "server_error=0.7,quota=0.7"], {},
     ["--faults", "add up to 1.4", "at most 1"]),
    ("bad retry header", ["--faults", "should_retry=maybe"], {},
     ["--faults", "should_retry='maybe'", "true or false"]),
    ("unknown flag", ["--turbo"], {}, ["unrecognized arguments: --turbo"]),
    ("resume without output", ["--resume"], {}, ["--resume needs --output FILE"]),
    ("env not a number", [], {"MAX_CONCURRENCY": "many"},
     ["MAX_CONCURRENCY='many'", "environment", "whole number", "from 1 to 10000"]),
    ("env out of range", [], {"MAX_CONCURRENCY": "0"},
     ["MAX_CONCURRENCY=0", "from the environment variable MAX_CONCURRENCY",
      "from 1 to 10000"]),
    ("env not a boolean", [], {"HONOUR_HINT": "perhaps"},
     ["HONOUR_HINT='perhaps'", "environment", "true or false"]),
    ("env unknown jitter", [], {"JITTER": "loud"},
     ["JITTER='loud'", "from the environment variable JITTER", "none, equal, full"]),
    ("env unknown policy", [], {"RETRY_POLICY": "always"},
     ["RETRY_POLICY='always'", "environment variable RETRY_POLICY",
      "lab, production"]),
    ("env base above the cap", [], {"BASE_DELAY_MS": "5000"},
     ["BASE_DELAY_MS=5000", "from the environment variable BASE_DELAY_MS",
      "MAX_DELAY_MS is the default", "at least the base"]),
    ("env and flag disagree", ["--max-delay-ms", "300"], {"BASE_DELAY_MS": "400"},
     ["MAX_DELAY_MS=300", "MAX_DELAY_MS from --max-delay-ms",
      "BASE_DELAY_MS from the environment variable BASE_DELAY_MS"]),
]

# (name, records file bytes) -> words; "{path}" is the file's path.
RECORDS_CASES = [
    ("records empty", b"\n\n", ["{path}", "no records"]),
    ("records not JSON", GOOD_RECORD.encode() + b"oops\n",
     ["{path}:2", "not valid JSON"]),
    ("records not an object", b'["a", "b"]\n', ["{path}:1", "expected a JSON object"]),
    ("records without id", b'{"note": "x"}\n',
     ["{path}:1", "'id'", "non-empty string"]),
    ("records empty note", b'{"id": "a", "note": ""}\n',
     ["{path}:1", "'note'", "non-empty string"]),
    ("records duplicate id", (GOOD_RECORD * 2).encode(),
     ["{path}:2", "duplicate id 'a'"]),
    ("records not UTF-8", b'{"id": "a", "note": "\xff\xfe"}\n',
     ["{path}:1", "not UTF-8"]),
]

# (name, results file bytes) -> words; the records file holds id "a" only.
RESULTS_CASES = [
    ("results garbage before the end",
     b"garbage\n" + b'{"record_id": "a", "status": "failed"}\n',
     ["{path}:1", "not valid JSON", "only the last line may be broken"]),
    ("results not UTF-8 before the end",
     b"\xff\xfe\n" + b'{"record_id": "a", "status": "failed"}\n',
     ["{path}:1", "not UTF-8", "only the last line may be broken"]),
    ("results not an object", b"[1, 2]\n", ["{path}:1", "expected a JSON object"]),
    ("results without id", b'{"status": "failed"}\n',
     ["{path}:1", "'record_id'", "non-empty string"]),
    ("results unknown status", b'{"record_id": "a", "status": "done"}\n',
     ["{path}:1", "'done'", "succeeded, failed, not_attempted"]),
    ("results success without value", b'{"record_id": "a", "status": "succeeded"}\n',
     ["{path}:1", "text 'value'"]),
    ("results negative attempts",
     b'{"record_id": "a", "status": "failed", "attempts": -1}\n',
     ["{path}:1", "'attempts'", "whole number >= 0"]),
    ("results for other records", b'{"record_id": "zz", "status": "failed"}\n',
     ["{path}:1", "'zz'", "not in the records file"]),
    ("results duplicate id", b'{"record_id": "a", "status": "failed"}\n' * 2,
     ["{path}:2", "'a'", "already appears on line 1", "each record once"]),
    # Whole JSON that Python cannot hold; as the last line too, since a cut
    # labkit line never nests deeper or grows a longer number.
    ("results nested too deeply",
     b'{"record_id": "a", "status": "failed", "x": ' + b"[" * 100_000
     + b"]" * 100_000 + b"}\n",
     ["{path}:1", "nested too deeply"]),
    ("results integer too long",
     b'{"record_id": "a", "status": "failed", "attempts": ' + b"9" * 5000 + b"}\n",
     ["{path}:1", "not usable JSON"]),
]


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run ``main`` with a clean environment; returns (exit code, stderr)."""

    def run(argv, env=None):
        for name in KNOBS:
            monkeypatch.delenv(name, raising=False)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        try:
            code = main(argv)
        except SystemExit as exit:  # argparse refuses by exiting
            code = exit.code
        return code, capsys.readouterr().err

    return run


def _check(code, err, words, path=None):
    assert code == 2, err
    assert "Traceback" not in err
    for word in words:
        assert word.format(path=path) in err, (word, err)


@pytest.mark.parametrize(
    ("flags", "env", "words"),
    [case[1:] for case in FLAG_AND_ENV_CASES],
    ids=[case[0] for case in FLAG_AND_ENV_CASES],
)
def test_bad_flags_and_environment_are_refused(cli, flags, env, words):
    code, err = cli([*RUN, *flags], env)
    _check(code, err, words)


def test_a_missing_command_is_refused(cli):
    code, err = cli([])
    _check(code, err, ["required", "command"])


@pytest.mark.parametrize(
    ("content", "words"),
    [case[1:] for case in RECORDS_CASES],
    ids=[case[0] for case in RECORDS_CASES],
)
def test_bad_records_files_are_refused(cli, tmp_path, content, words):
    path = tmp_path / "records.jsonl"
    path.write_bytes(content)
    code, err = cli([*RUN, "--records", str(path)])
    _check(code, err, words, path)


@pytest.mark.parametrize("where", ["missing", "directory"])
def test_a_records_path_that_is_no_file_is_refused(cli, tmp_path, where):
    path = tmp_path / "nowhere.jsonl"
    if where == "directory":
        path.mkdir()
    code, err = cli([*RUN, "--records", str(path)])
    _check(code, err, [str(path), "cannot read the records file"])


@pytest.mark.parametrize(
    ("content", "words"),
    [case[1:] for case in RESULTS_CASES],
    ids=[case[0] for case in RESULTS_CASES],
)
def test_bad_results_files_are_refused_and_left_alone(cli, tmp_path, content, words):
    records = tmp_path / "records.jsonl"
    records.write_text(GOOD_RECORD)
    results = tmp_path / "results.jsonl"
    results.write_bytes(content)

    code, err = cli([*RUN, "--records", str(records), "--output", str(results),
                     "--resume"])
    _check(code, err, words, results)
    assert results.read_bytes() == content  # refused, and nothing lost


def test_an_existing_results_file_is_never_overwritten(cli, tmp_path):
    results = tmp_path / "results.jsonl"
    results.write_text('{"record_id": "CR-0001", "status": "failed"}\n')
    code, err = cli([*RUN, "--output", str(results)])
    _check(code, err, [str(results), "already exists", "--resume",
                       "another --output"])
    assert results.read_text().count("\n") == 1


@pytest.mark.parametrize("where", ["directory", "no such folder"])
def test_a_results_path_that_cannot_be_a_file_is_refused(cli, tmp_path, where):
    results = tmp_path / "out"
    if where == "directory":
        results.mkdir()
        code, err = cli([*RUN, "--output", str(results), "--resume"])
        _check(code, err, [str(results), "not a regular file", "JSON Lines"])
    else:
        results = results / "results.jsonl"
        code, err = cli([*RUN, "--output", str(results)])
        _check(code, err, [str(results), "cannot create the results file"])


CONFIG_CASES = [
    ({"max_concurrency": 0}, ["MAX_CONCURRENCY=0", "from 1 to 10000"]),
    ({"max_retries": 2.5}, ["MAX_RETRIES=2.5", "whole number"]),
    ({"jitter": "x"}, ["JITTER='x'", "none, equal, full"]),
    ({"honour_hint": "yes"}, ["HONOUR_HINT='yes'", "True or False"]),
    ({"base_delay_ms": 300, "max_delay_ms": 100},
     ["MAX_DELAY_MS=100", "BASE_DELAY_MS=300", "at least the base"]),
]


@pytest.mark.parametrize(("knobs", "words"), CONFIG_CASES)
def test_bad_config_in_python_is_refused(knobs, words):
    with pytest.raises(ConfigError) as caught:
        Config(**knobs)
    for word in words:
        assert word in str(caught.value)


FAULTS_CASES = [
    ({"timeout": -0.1}, ["timeout=-0.1", "from 0 to 1"]),
    ({"timeout": float("nan")}, ["timeout=nan", "from 0 to 1"]),
    ({"quota": True}, ["quota=True", "from 0 to 1"]),
    ({"timeout": 0.6, "server_error": 0.6}, ["add up to 1.2", "at most 1"]),
    ({"spike_seconds": -1}, ["spike_seconds=-1", "from 0"]),
    ({"should_retry": "yes"}, ["should_retry='yes'", "True, False or None"]),
]


@pytest.mark.parametrize(("arguments", "words"), FAULTS_CASES)
def test_bad_faults_in_python_are_refused(arguments, words):
    with pytest.raises(ValueError) as caught:
        Faults(**arguments)
    for word in words:
        assert word in str(caught.value)


# A few of the above in a real process: the exit code and no traceback.
PROCESS_CASES = [
    (["--max-concurrency", "0"], {}, "MAX_CONCURRENCY=0"),
    (["--faults", "timeout=9"], {}, "timeout=9"),
    ([], {"JITTER": "loud"}, "JITTER='loud'"),
    (["--records", "{tmp}/records.jsonl"], {}, "not valid JSON"),
    (["--output", "{tmp}/results.jsonl", "--resume"], {}, "not a regular file"),
]


@pytest.mark.parametrize(("flags", "env", "words"), PROCESS_CASES)
def test_a_real_process_exits_2_without_a_traceback(tmp_path, flags, env, words):
    (tmp_path / "records.jsonl").write_text("{not json\n")
    (tmp_path / "results.jsonl").mkdir()
    flags = [flag.format(tmp=tmp_path) for flag in flags]
    clean = {k: v for k, v in os.environ.items() if k not in KNOBS}
    done = subprocess.run(
        [sys.executable, "-m", "labkit", *RUN, *flags],
        capture_output=True, text=True, env={**clean, **env}, timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert words in done.stderr and done.stdout == ""


# -- paths, numbers and streams that are not what they seem --------------------


@pytest.mark.parametrize("flag", ["--output", "--records"])
def test_an_empty_path_is_refused_as_empty(cli, flag):
    code, err = cli([*RUN, flag, ""])
    _check(code, err, [flag, "an empty path"])
    assert "already exists" not in err and ".: cannot read" not in err


def test_a_dangling_symlink_as_output_is_called_a_link(cli, tmp_path):
    link = tmp_path / "results.jsonl"
    link.symlink_to(tmp_path / "nowhere.jsonl")
    code, err = cli([*RUN, "--output", str(link)])
    _check(code, err, [str(link), "is a symbolic link", "nowhere.jsonl"])
    assert "already exists" not in err and not (tmp_path / "nowhere.jsonl").exists()


@pytest.mark.parametrize("latency", ["inf", "1e400", "600001"])
def test_a_latency_that_is_not_finite_or_too_long_is_refused(cli, latency):
    code, err = cli([*RUN, f"--latency-ms={latency}"])
    _check(code, err, ["--latency-ms", repr(latency)])


@pytest.mark.parametrize("where", ["environment", "flag"])
def test_a_very_long_value_is_cut_short_in_the_message(cli, where):
    digits = "5" * 5000
    if where == "environment":
        code, err = cli(RUN, {"MAX_CONCURRENCY": digits})
        words = ["MAX_CONCURRENCY=", "5000 characters", "environment",
                 "from 1 to 10000"]
    else:
        code, err = cli([*RUN, "--max-retries", digits])
        words = ["--max-retries", "5000 characters"]
    _check(code, err, words)
    assert len(err.strip().splitlines()[-1]) < 300 and digits not in err


def test_a_fifo_as_records_is_refused_at_once(tmp_path):
    fifo = tmp_path / "records.jsonl"
    os.mkfifo(fifo)
    # No one writes to it: reading it would wait for ever.
    done = subprocess.run(
        [sys.executable, "-m", "labkit", *RUN, "--records", str(fifo)],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 2
    assert f"{fifo}: cannot read the records file" in done.stderr
    assert "FIFO" in done.stderr and "Traceback" not in done.stderr


def test_a_report_that_cannot_be_printed_is_one_line_and_exit_1():
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "labkit", *RUN, "--json"],
            stdout=full, stderr=subprocess.PIPE, text=True, timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "labkit: error: cannot write the report to stdout (No space left on device)"
    ]
