"""The command line: ``python -m labkit run`` processes a records file end to end.

Every knob has a flag and an environment variable of the same name; flags win.
Log lines go to stderr, the report (``--json``) to stdout. Exit codes: 0 every
record succeeded, 1 some failed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .batch import BatchRun, Report
from .config import JITTER_MODES, KNOBS, RETRY_POLICIES, Config, ConfigError
from .mock_server import MockEndpoint
from .records import DEFAULT_RECORDS, RecordsError, load_records
from .runner import run_virtual
from .stages import StageLogger, logger
from .timeline import Timeline

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.quiet)

    try:
        config = Config.from_env(os.environ, **_knob_flags(args))
        records = load_records(args.records)
    except (ConfigError, RecordsError) as error:
        print(f"labkit: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT

    report = execute(args, config, records)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if not report.failed and not report.not_attempted else EXIT_FAILED


def execute(args: argparse.Namespace, config: Config, records: list) -> Report:
    """Build the batch the flags describe, run it and return its report."""
    endpoint = MockEndpoint(
        limit=config.rate_limit,
        window=config.rate_window,
        latency=args.latency_ms / 1000,
        seed=args.seed,
    )
    timeline = Timeline(keep_events=False)
    stages = StageLogger(timeline, verbose=args.verbose)
    batch = BatchRun(
        records,
        config,
        endpoint=endpoint,
        seed=args.seed,
        naive=args.naive,
        timeline=timeline,
    )
    mode = "naive (no pool)" if args.naive else f"pool of {config.max_concurrency}"
    stages.init(config, len(records), f"{mode}, {args.clock} clock, seed {args.seed}")

    show_progress = args.clock == "real" and not args.quiet
    with _progress(timeline, len(records), show_progress):
        report = _run(batch, args.clock)

    stages.done(report)
    return report


def _run(batch: BatchRun, clock: str) -> Report:
    if clock == "virtual":
        return run_virtual(batch.run)
    try:
        return asyncio.run(batch.run())
    except KeyboardInterrupt:
        # asyncio.run has already cancelled the batch and its in-flight tasks.
        logger.warning("[DONE] interrupted: in-flight requests were cancelled")
        return batch.report(interrupted=True)


class _progress:
    """A tqdm bar that advances as records settle, with log lines kept above it."""

    def __init__(self, timeline: Timeline, total: int, enabled: bool) -> None:
        self.bar = tqdm(total=total, unit="record", disable=not enabled or None)
        self.redirect = logging_redirect_tqdm(loggers=[logger])
        timeline.subscribe(self._on_event)

    def _on_event(self, event: object) -> None:
        if getattr(event, "kind", None) in ("succeeded", "failed"):
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
