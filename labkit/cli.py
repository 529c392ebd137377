"""The command line: ``python -m labkit run`` processes a records file end to end.

Every knob has a flag and an environment variable of the same name; flags win.
Log lines go to stderr, the report (``--json``) to stdout. Exit codes: 0 every
record succeeded, 1 some failed, 2 bad input, 130 interrupted.

``--output results.jsonl`` writes each record's outcome as it settles, and
``--resume`` continues such a file, sending only the records not yet
succeeded. Ctrl-C cancels what is in flight and prints the partial report.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import looptime
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .batch import BatchRun, Report
from .config import JITTER_MODES, KNOBS, RETRY_POLICIES, Config, ConfigError
from .mock_server import Faults, MockEndpoint
from .pacing import PACERS, make_pacer
from .records import DEFAULT_RECORDS, Record, RecordsError, load_records
from .results import PastResults, ResultsError, ResultsWriter, read_results
from .stages import StageLogger, logger
from .timeline import Timeline

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.quiet)
    if args.resume and args.output is None:
        parser.error("--resume needs --output FILE: the results file to continue")

    # Ctrl-C while Python is still importing labkit (the first fraction of a
    # second) comes before any labkit code runs, so it still prints Python's
    # own KeyboardInterrupt traceback; nothing has been sent by then.
    try:
        return _main(args)
    except KeyboardInterrupt:
        # Ctrl-C outside the batch (while reading files or printing): the
        # batch handles its own, so nothing was in flight here.
        print("labkit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (``| head``): not worth a traceback.
        # Point stdout at nothing so the interpreter's final flush is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


def _main(args: argparse.Namespace) -> int:
    try:
        config = _config(args, os.environ)
        records = load_records(args.records)
        past = _past_results(args, records)
        writer = _results_writer(args, past)
    except (ConfigError, RecordsError, ResultsError) as error:
        print(f"labkit: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT

    if writer is None:
        report = execute(args, config, records)
    else:
        with writer:
            report = execute(args, config, records, past=past, writer=writer)

    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    if writer is not None and writer.error is not None:
        return EXIT_FAILED
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if not report.failed and not report.not_attempted else EXIT_FAILED


def execute(
    args: argparse.Namespace,
    config: Config,
    records: list[Record],
    *,
    past: PastResults | None = None,
    writer: ResultsWriter | None = None,
) -> Report:
    """Build the batch the flags describe, run it and return its report.

    With ``past`` (an earlier run's results), only the records not yet
    succeeded are sent, and the report lists the earlier successes too.
    """
    endpoint = MockEndpoint(
        limit=config.rate_limit,
        window=config.rate_window,
        latency=args.latency_ms / 1000,
        faults=args.faults,
        seed=args.seed,
    )
    timeline = Timeline(keep_events=False)
    stages = StageLogger(timeline, verbose=args.verbose)
    to_send = records if past is None else past.still_to_send(records)
    batch = BatchRun(
        to_send,
        config,
        endpoint=endpoint,
        seed=args.seed,
        naive=args.naive,
        timeline=timeline,
        pacer=make_pacer(
            args.pace, limit=config.rate_limit, window=config.rate_window
        ),
        on_outcome=None if writer is None else writer.write,
    )
    mode = "naive (no pool)" if args.naive else f"pool of {config.max_concurrency}"
    stages.init(config, len(to_send), f"{mode}, {args.clock} clock, seed {args.seed}")
    _log_resume(past, len(records), len(to_send))

    show_progress = args.clock == "real" and not args.quiet
    with _progress(timeline, len(to_send), show_progress):
        report = _run(batch, args.clock, writer)

    if past is not None:
        report = past.complete(report, records)
    stages.done(report)
    return report


def _run(batch: BatchRun, clock: str, writer: ResultsWriter | None) -> Report:
    """Run the batch on a fresh loop; Ctrl-C gives the partial report."""
    # The virtual loop is the one ``runner.run_virtual`` makes, but on this
    # thread: Ctrl-C reaches only the main thread's loop.
    virtual = functools.partial(looptime.new_event_loop, noop_cycles=1)
    factory = virtual if clock == "virtual" else None
    try:
        # The runner turns the first Ctrl-C into cancelling the batch, which
        # cancels every record in flight before KeyboardInterrupt reaches us.
        # A second Ctrl-C raises at once, wherever the cleanup is: the partial
        # report still prints, but the cleanup may be cut short. SIGTERM is
        # not handled: it ends the process at once, like a kill, and the
        # results file keeps every line written before it.
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(batch.run())
    except KeyboardInterrupt:
        report = batch.report(interrupted=True)
        _log_interrupted(report, writer)
        return report
    except BaseExceptionGroup as group:
        # A results file that cannot be written stops the batch: going on
        # would send records whose outcomes could not be kept.
        if writer is None or writer.error is None or not group.subgroup(OSError):
            raise
        logger.error("[DONE] stopped: cannot write %s (%s)", writer.path, writer.error)
        return batch.report(interrupted=True)


def _log_interrupted(report: Report, writer: ResultsWriter | None) -> None:
    in_flight = sum(o.kind == "interrupted" for o in report.outcomes)
    logger.warning(
        "[DONE] interrupted: %d in-flight record(s) cancelled, %d not attempted",
        in_flight,
        len(report.not_attempted),
    )
    if writer is not None:
        logger.warning(
            "[DONE] %d outcome(s) kept in %s; run again with --resume to send "
            "only the records not yet succeeded",
            writer.written,
            writer.path,
        )


def _log_resume(past: PastResults | None, total: int, to_send: int) -> None:
    if past is None:
        return
    if past.broken_tail:
        logger.warning("[INIT] %s; that record will be sent again", past.broken_tail)
    logger.info(
        "[INIT] resuming %s: %d of %d records already succeeded, sending %d",
        past.path,
        total - to_send,
        total,
        to_send,
    )


def _config(args: argparse.Namespace, environ: Mapping[str, str]) -> Config:
    """The knobs from the environment and the flags; an error says where."""
    flags = _knob_flags(args)
    try:
        return Config.from_env(environ, **flags)
    except ConfigError as error:
        raise ConfigError(f"{error} [{_where(str(error), flags, environ)}]") from None


def _where(
    message: str,
    flags: Mapping[str, object],
    environ: Mapping[str, str],
) -> str:
    """Where each knob named in ``message`` got its value."""
    places = []
    for name in KNOBS:
        if f"{name}=" not in message:
            continue
        if flags.get(name.lower()) is not None:
            places.append(f"{name} from --{name.lower().replace('_', '-')}")
        elif name in environ:
            places.append(f"{name} from the environment variable {name}")
        else:
            places.append(f"{name} is the default")
    return "; ".join(places) or "from the environment or the flags"


def _past_results(
    args: argparse.Namespace,
    records: list[Record],
) -> PastResults | None:
    if not args.resume:
        return None
    return read_results(args.output, {record.id for record in records})


def _results_writer(
    args: argparse.Namespace,
    past: PastResults | None,
) -> ResultsWriter | None:
    if args.output is None:
        return None
    if past is None:
        if args.output.exists():
            raise ResultsError(
                f"{args.output}: already exists, and labkit never overwrites "
                "results; add --resume to continue it, or choose another --output"
            )
        return ResultsWriter.create(args.output)
    return ResultsWriter.resume(args.output, past.succeeded.values())


class _progress:
    """A tqdm bar that advances as records settle, with log lines kept above it."""

    def __init__(self, timeline: Timeline, total: int, enabled: bool) -> None:
        self.bar = tqdm(total=total, unit="record", disable=not enabled or None)
        self.redirect = logging_redirect_tqdm(loggers=[logger])
        timeline.subscribe(self._on_event)

    def _on_event(self, event: object) -> None:
        if getattr(event, "kind", None) in ("succeeded", "failed", "not_attempted"):
            self.bar.update(1)

    def __enter__(self) -> _progress:
        self.redirect.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.bar.close()
        self.redirect.__exit__(*exc_info)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``python -m labkit``."""
    parser = argparse.ArgumentParser(
        prog="python -m labkit",
        description="Send a batch of records through a rate-limited mock LLM.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="process every record and report how each ended",
        description="Process every record through the pool and the retry loop.",
    )
    run.add_argument("--records", type=Path, default=DEFAULT_RECORDS,
                     help="JSON Lines records file (default: data/records.jsonl)")

    knobs = run.add_argument_group("knobs (each also read from its environment "
                                   "variable, e.g. MAX_CONCURRENCY)")
    for name, knob in KNOBS.items():
        flag = "--" + name.lower().replace("_", "-")
        if knob.kind is bool:
            knobs.add_argument(flag, dest=name.lower(), default=None,
                               action=argparse.BooleanOptionalAction,
                               help=knob.help)
            continue
        knobs.add_argument(flag, dest=name.lower(), metavar=name,
                           type=_knob_type(name), choices=knob.choices or None,
                           help=f"{knob.help} ({knob.describe_range()})")

    run.add_argument("--clock", choices=("real", "virtual"), default="real",
                     help="real time, or a virtual clock that skips idle waits")
    run.add_argument("--seed", type=int, default=0,
                     help="seed for jitter, latency and faults (default 0)")
    run.add_argument("--naive", action="store_true",
                     help="no pool: send every record at once")
    run.add_argument("--latency-ms", type=_non_negative, default=0.0,
                     help="the mock endpoint's response time (default 0)")
    run.add_argument("--pace", nargs="?", choices=PACERS, default="none",
                     const="window",
                     help="hold requests back in front of the pool: 'window' "
                          "follows the server's rate-limit headers (no 429s), "
                          "'bucket' is a leaky bucket; --pace alone is 'window'")
    run.add_argument("--faults", type=_faults, default=Faults(), metavar="SPEC",
                     help="faults the mock injects, e.g. server_error=0.05,"
                          "timeout=0.01 (kinds: quota, server_error, timeout, "
                          "malformed, disconnect, spike; also spike_seconds and "
                          "should_retry=true|false)")
    run.add_argument("--output", type=Path, default=None, metavar="FILE",
                     help="write each record's outcome to this JSON Lines file "
                          "as it settles")
    run.add_argument("--resume", action="store_true",
                     help="continue --output FILE: send only the records not "
                          "yet succeeded in it")
    run.add_argument("--json", action="store_true",
                     help="print the full report as JSON on stdout")
    run.add_argument("-v", "--verbose", action="store_true",
                     help="one [RETRY] line per retry")
    run.add_argument("-q", "--quiet", action="store_true",
                     help="no stage lines and no progress bar")
    return parser


def _knob_flags(args: argparse.Namespace) -> dict[str, object]:
    return {name.lower(): getattr(args, name.lower()) for name in KNOBS}


def _knob_type(name: str):  # noqa: ANN202
    # The range check lives in Config, so a flag and its environment variable
    # are refused with the same message.
    return str if KNOBS[name].choices else _whole_number


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _faults(text: str) -> Faults:
    try:
        return Faults.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _configure_logging(quiet: bool) -> None:
    # Replace, not add: main() may run several times in one process (tests).
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers = [handler]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


__all__ = ["main", "build_parser", "JITTER_MODES", "RETRY_POLICIES"]
