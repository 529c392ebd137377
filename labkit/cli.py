"""The command line: ``python -m labkit run`` processes a records file end to end.

Every knob has a flag and an environment variable of the same name; flags win.
Log lines go to stderr, the report (``--json``) to stdout. Exit codes: 0 every
record succeeded, 1 some failed, 2 bad input, 130 interrupted.

``--output results.jsonl`` writes each record's outcome as it settles, and
``--resume`` continues such a file, sending only the records not yet
succeeded. Ctrl-C cancels what is in flight and prints the partial report;
once the batch exists, no Ctrl-C, however many, raises or cuts that short.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import signal
import stat
import sys
import threading
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import looptime
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .batch import BatchRun, Report
from .config import KNOBS, Config, ConfigError, _shown
from .mock_server import Faults, MockEndpoint
from .pacing import PACERS, make_pacer
from .records import DEFAULT_RECORDS, Record, RecordsError, load_records
from .results import PastResults, ResultsError, ResultsWriter, read_results
from .stages import StageLogger, logger
from .timeline import Timeline

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

# After Ctrl-C, how long the cancelled records may take to unwind before the
# run stops waiting for them. They take milliseconds; this bounds a bug.
STOP_GRACE_SECONDS = 5.0
# How long closing the event loop may wait for what is left in it.
CLOSE_GRACE_SECONDS = 2.0
# The longest --latency-ms that means anything: above the largest request
# timeout (REQUEST_TIMEOUT_MS), every request would time out.
LONGEST_LATENCY_MS = 600_000.0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code.

    Called without ``argv``, as ``python -m labkit`` does, it is the program:
    once a batch exists, SIGINT then stays harmless after it returns too, so
    a late Ctrl-C cannot turn an exit with the report into a death by signal
    (it takes one in the moment the interpreter needs to end). Called with
    ``argv`` (tests, notebooks), it restores the caller's SIGINT handler.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.quiet)
    if args.resume and args.output is None:
        parser.error("--resume needs --output FILE: the results file to continue")

    # Ctrl-C while Python is still importing labkit (the first fraction of a
    # second) comes before any labkit code runs, so it still prints Python's
    # own KeyboardInterrupt traceback; nothing has been sent by then.
    ctrl_c = _CtrlC(keep_after=argv is None)
    try:
        with ctrl_c:
            code = _main(args, ctrl_c)
    except KeyboardInterrupt:
        # Ctrl-C before the batch existed (while reading the files): nothing
        # was sent, so there is no report to give.
        print("labkit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (``| head``): not worth a traceback.
        _silence_stdout()
        return EXIT_FAILED

    if ctrl_c.abandoned and argv is None:
        # Tasks that would not stop are still alive: the interpreter's own
        # shutdown would finalize them, with a screen of "Task was destroyed"
        # errors, or wait on them. The report is out and the results file is
        # closed, so end the process here. (Called with argv, main leaves
        # them be, and those errors may show when the caller exits.)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    return code


def _main(args: argparse.Namespace, ctrl_c: _CtrlC) -> int:
    try:
        config = _config(args, os.environ)
        _check_records_path(args.records)
        records = load_records(args.records)
        past = _past_results(args, records)
        writer = _results_writer(args, past)
    except (ConfigError, RecordsError, ResultsError) as error:
        print(f"labkit: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT

    # From here on Ctrl-C never raises: it stops the batch, and the partial
    # report and the JSON still print. (Before this, nothing was sent, so
    # Ctrl-C just ends the run, with "labkit: interrupted".)
    ctrl_c.arm()
    if writer is None:
        report = execute(args, config, records, ctrl_c=ctrl_c)
    else:
        with writer:
            report = execute(
                args, config, records, past=past, writer=writer, ctrl_c=ctrl_c
            )
    printed = _print_report(report) if args.json else True

    if writer is not None and writer.error is not None:
        return EXIT_FAILED
    if report.interrupted:
        return EXIT_INTERRUPTED
    if not printed:
        return EXIT_FAILED
    return EXIT_OK if not report.failed and not report.not_attempted else EXIT_FAILED


def _print_report(report: Report) -> bool:
    """Print the JSON report on stdout; False, with a message, if it cannot be."""
    try:
        # Flushed here, so a full disk or a closed pipe shows up now, where
        # it can be reported, not in the interpreter's last flush.
        print(json.dumps(report.to_dict(), indent=2), flush=True)
    except BrokenPipeError:
        # The reader went away (``| head``): it chose to, so no message.
        _silence_stdout()
        return False
    except OSError as error:
        _silence_stdout()
        why = error.strerror or error
        print(f"labkit: error: cannot write the report to stdout ({why})",
              file=sys.stderr)
        return False
    return True


def _silence_stdout() -> None:
    """Point stdout at nothing, so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):
        pass  # a stdout without a file descriptor (a test's capture) is fine


def execute(
    args: argparse.Namespace,
    config: Config,
    records: list[Record],
    *,
    past: PastResults | None = None,
    writer: ResultsWriter | None = None,
    ctrl_c: _CtrlC | None = None,
) -> Report:
    """Build the batch the flags describe, run it and return its report.

    With ``past`` (an earlier run's results), only the records not yet
    succeeded are sent, and the report lists the earlier successes too.
    ``ctrl_c`` is the Ctrl-C handling already in place; without it, this
    call installs its own for its duration.
    """
    if ctrl_c is None:
        with _CtrlC() as own:
            own.arm()
            return execute(
                args, config, records, past=past, writer=writer, ctrl_c=own
            )

    endpoint = MockEndpoint.for_config(
        config,
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
        report = _run(batch, args.clock, writer, ctrl_c)

    if past is not None:
        report = past.complete(report, records)
    stages.done(report)
    return report


def _run(
    batch: BatchRun,
    clock: str,
    writer: ResultsWriter | None,
    ctrl_c: _CtrlC,
) -> Report:
    """Run the batch on a fresh loop; Ctrl-C gives the partial report.

    Not ``asyncio.run``: its second Ctrl-C raises ``KeyboardInterrupt``
    wherever the cleanup happens to be, which can leave a task that nothing
    will ever wake, and then closing the loop waits for it for ever. Here
    Ctrl-C only ever schedules a cancel (see ``_CtrlC``), and every wait
    during shutdown has a deadline.
    """
    # The virtual loop is the one ``runner.run_virtual`` makes, but on this
    # thread: Ctrl-C reaches only the main thread's loop.
    if clock == "virtual":
        loop = looptime.new_event_loop(noop_cycles=1)
    else:
        loop = asyncio.new_event_loop()
    try:
        report = loop.run_until_complete(_supervise(batch, ctrl_c))
    except BaseExceptionGroup as group:
        # A results file that cannot be written stops the batch: going on
        # would send records whose outcomes could not be kept.
        if writer is None or writer.error is None or not group.subgroup(OSError):
            raise
        logger.error("[DONE] stopped: cannot write %s (%s)", writer.path, writer.error)
        return batch.report(interrupted=True)
    finally:
        _close_loop(loop)
    if report.interrupted:
        _log_interrupted(report, writer)
    return report


async def _supervise(batch: BatchRun, ctrl_c: _CtrlC) -> Report:
    """Run the batch as a task that Ctrl-C cancels; the report either way.

    SIGTERM is not handled: it ends the process at once, like a kill, and the
    results file keeps every line written before it.
    """
    task = asyncio.ensure_future(batch.run())
    gave_up = ctrl_c.attach(asyncio.get_running_loop(), task)
    try:
        await asyncio.wait({task, gave_up}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ctrl_c.detach()

    if not task.done():
        # The records did not unwind in time (a bug somewhere below): report
        # what is known now rather than wait for ever. The loop's closing
        # gives them one more, bounded, chance.
        ctrl_c.abandoned = True
        logger.error(
            "[DONE] gave up waiting %gs for the cancelled records to stop",
            STOP_GRACE_SECONDS,
        )
        return batch.report(interrupted=True)
    if task.cancelled():
        return batch.report(interrupted=True)
    # The batch's own report, or its error (the results file's, above). A
    # Ctrl-C that came after the last record settled interrupted nothing.
    return task.result()


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left, wait a bounded time for it, and close the loop."""
    try:
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.wait(left, timeout=CLOSE_GRACE_SECONDS))
        loop.run_until_complete(_within(loop.shutdown_asyncgens()))
        loop.run_until_complete(_within(loop.shutdown_default_executor()))
        # A task still pending now is abandoned: keep it referenced, so it is
        # not garbage-collected mid-run with a "destroyed but pending" error.
        # (Only after a give-up; the process is about to end anyway.)
        _ABANDONED.update(task for task in left if not task.done())
    finally:
        loop.close()


_ABANDONED: set[asyncio.Task[Any]] = set()


async def _within(step: Coroutine[Any, Any, None]) -> None:
    try:
        await asyncio.wait_for(step, CLOSE_GRACE_SECONDS)
    except TimeoutError:
        pass  # e.g. an executor thread that never returns: not worth a hang


class _CtrlC:
    """SIGINT handling around a run: once armed, cancel the batch, never raise.

    Before ``arm()`` (while the inputs are read) Ctrl-C raises
    ``KeyboardInterrupt`` as usual. After it, the signal handler only counts
    and asks the loop, through ``call_soon_threadsafe``, to act: it may run
    between any two bytecodes, so touching a task there could catch asyncio
    half way through an update. The first Ctrl-C cancels the batch's task and
    starts a ``STOP_GRACE_SECONDS`` deadline (real seconds, whatever the
    loop's clock); later ones are counted and ignored (one log line says
    so). A Ctrl-C before the batch starts stops it before it sends anything;
    one after it has finished is ignored, and the report stands.

    It installs itself only over Python's default handler, in the main
    thread: a process started with SIGINT ignored (a background job) keeps
    ignoring it, and only the main thread receives signals anyway.
    ``keep_after`` leaves SIGINT ignored on exit once armed, for a process
    about to end.
    """

    def __init__(self, *, keep_after: bool = False) -> None:
        self.count = 0
        self.armed = False
        self.abandoned = False  # tasks were left running after the grace time
        self._keep_after = keep_after
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Future[Any] | None = None
        self._gave_up: asyncio.Future[None] | None = None
        self._stopping = False
        self._told = False
        self._timer: threading.Timer | None = None
        self._installed = False

    def __enter__(self) -> _CtrlC:
        try:
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                signal.signal(signal.SIGINT, self._on_signal)
                self._installed = True
        except ValueError:
            pass  # not the main thread
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.detach()
        if not self._installed:
            return
        if self._keep_after and self.armed:
            # SIG_IGN, not our handler: while the interpreter shuts down it
            # resets Python-level handlers to the default, which would die.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        else:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def arm(self) -> None:
        """From now on Ctrl-C stops the batch and never raises."""
        self.armed = True

    def attach(
        self,
        loop: asyncio.AbstractEventLoop,
        task: asyncio.Future[Any],
    ) -> asyncio.Future[None]:
        """Let Ctrl-C cancel ``task``; returns a future set on giving up."""
        self._gave_up = loop.create_future()
        self._task = task
        self._loop = loop
        if self.count:
            self._on_interrupt()  # Ctrl-C before the loop ran: stop at once
        return self._gave_up

    def detach(self) -> None:
        """From now on Ctrl-C is only counted."""
        self._loop = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.armed:
            raise KeyboardInterrupt
        self.count += 1
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._on_interrupt)
        except RuntimeError:
            pass  # the loop has just closed: the run is over

    def _on_interrupt(self) -> None:
        # Runs on the loop, between callbacks: safe to cancel from here.
        if self._stopping:
            if self.count > 1 and not self._told:
                self._told = True
                logger.warning("labkit: stopping already; the partial report follows")
            return
        self._stopping = True
        if self._task is None or self._task.done():
            return
        self._task.cancel()
        self._timer = threading.Timer(STOP_GRACE_SECONDS, self._time_is_up)
        self._timer.daemon = True
        self._timer.start()

    def _time_is_up(self) -> None:
        # On the timer's thread: hand over to the loop, if it still runs.
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._give_up)
        except RuntimeError:
            pass

    def _give_up(self) -> None:
        if self._gave_up is not None and not self._gave_up.done():
            self._gave_up.set_result(None)


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


def _check_records_path(path: Path) -> None:
    """Refuse a records path that is no regular file, before reading it.

    Reading a FIFO with no writer would block for ever, and a device or a
    socket is not a records file. (A FIFO swapped in between this check and
    the read still blocks: ``load_records`` opens the path itself.)
    """
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # missing or unreachable: ``load_records`` says so, naming it
    if stat.S_ISREG(mode):
        return
    kind = "a directory" if stat.S_ISDIR(mode) else (
        "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "not a regular file")
    raise RecordsError(
        f"{path}: cannot read the records file ({kind}); records are a JSON "
        "Lines file"
    )


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
    run.add_argument("--records", type=_path, default=DEFAULT_RECORDS,
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
    run.add_argument("--latency-ms", type=_latency_ms, default=0.0,
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
    run.add_argument("--output", type=_path, default=None, metavar="FILE",
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
    digits = text.strip().lstrip("+-")
    if len(digits) > 20 and digits.isdecimal():
        # Refused before int() (which balks at 4300 digits with its own
        # message); no knob allows even 20 digits.
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is out of range: no knob allows {len(digits)} digits"
        )
    try:
        return int(text)
    except ValueError:
        message = f"{_shown(text)} is not a whole number"
        raise argparse.ArgumentTypeError(message) from None


def _path(text: str) -> Path:
    # Path("") is ".", the current directory: never what was meant.
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give a file name")
    return Path(text)


def _faults(text: str) -> Faults:
    try:
        return Faults.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _latency_ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a number") from None
    if not value >= 0:  # also NaN
        raise argparse.ArgumentTypeError(f"{_shown(text)} must be 0 or more")
    if not math.isfinite(value) or value > LONGEST_LATENCY_MS:
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} must be at most {LONGEST_LATENCY_MS:.0f}: any longer, "
            "and every request times out"
        )
    return value


def _configure_logging(quiet: bool) -> None:
    # Replace, not add: main() may run several times in one process (tests).
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers = [handler]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


__all__ = ["main", "build_parser"]
