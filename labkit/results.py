"""Results that survive a crash: one line per settled record, read back to resume.

``ResultsWriter`` appends each record's outcome to a JSON Lines file the
moment it settles, one flushed line per record, so a crash loses only the
records that were in flight. ``read_results`` reads such a file back for a
resumed run: every complete line counts, a broken last line (the half line a
crash can leave) is reported and ignored, and anything else that is wrong is
refused with the file, the line and what is allowed.

A line is an ``Outcome`` as JSON, the same shape as in ``Report.to_dict()``::

    {"record_id": "CR-0001", "status": "succeeded", "value": "billing: ...", ...}
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from .batch import FAILED, NOT_ATTEMPTED, SUCCEEDED, Outcome, Report
from .records import Record

__all__ = ["ResultsError", "PastResults", "ResultsWriter", "read_results"]

STATUSES = (SUCCEEDED, FAILED, NOT_ATTEMPTED)


class ResultsError(ValueError):
    """A results file that cannot be used, with the file and line at fault."""


@dataclass(frozen=True)
class PastResults:
    """What an earlier run's results file says, keyed by record id.

    ``broken_tail`` describes a last line that was cut short and ignored
    (``None`` when the file ended cleanly).
    """

    path: Path
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    broken_tail: str | None = None

    @property
    def succeeded(self) -> dict[str, Outcome]:
        """The records that already have a value: a resumed run skips them."""
        return {rid: o for rid, o in self.outcomes.items() if o.ok}

    def still_to_send(self, records: Iterable[Record]) -> list[Record]:
        """The records, in order, that have not succeeded yet."""
        done = self.succeeded
        return [record for record in records if record.id not in done]

    def complete(self, report: Report, records: Iterable[Record]) -> Report:
        """This run's report with the earlier successes put back in input order.

        The counts of requests, 429s and retries stay this run's own.
        """
        done = self.succeeded
        now = {outcome.record_id: outcome for outcome in report.outcomes}
        outcomes = tuple(done.get(r.id) or now[r.id] for r in records)
        return dataclasses.replace(report, outcomes=outcomes)


def read_results(path: str | Path, record_ids: Collection[str]) -> PastResults:
    """Read a results file written by ``ResultsWriter``; a missing file is empty.

    ``record_ids`` are the ids of the records file the run uses: a line about
    any other record is refused, since it means the results belong to other
    records. Raises ``ResultsError`` naming the file and line for a line that
    is not JSON (unless it is the last one), not an object, without a
    non-empty ``record_id``, with a ``status`` other than succeeded, failed
    or not_attempted, a success without a text ``value``, or an id seen
    before.
    """
    path = Path(path)
    if not path.exists():
        return PastResults(path)
    if not path.is_file():
        raise ResultsError(f"{path}: not a regular file; a results file is JSON Lines")

    outcomes: dict[str, Outcome] = {}
    seen_on: dict[str, int] = {}
    unreadable: tuple[int, str, int] | None = None

    for number, raw in _lines(path):
        # An unreadable line with more lines after it is not a crash's half
        # line: something else damaged the file, and guessing would lose data.
        if unreadable is not None:
            raise ResultsError(_unreadable_message(path, *unreadable[:2]))

        try:
            data = _decode(raw)
        except ValueError as error:
            unreadable = (number, str(error), len(raw))
            continue

        outcome = _outcome_from(data, f"{path}:{number}")
        _check_id(outcome.record_id, record_ids, seen_on, path, number)
        outcomes[outcome.record_id] = outcome

    tail = None
    if unreadable is not None:
        number, why, size = unreadable
        tail = f"{path}:{number}: a broken last line ({size} bytes, {why}) was ignored"
    return PastResults(path, outcomes, tail)


class ResultsWriter:
    """Appends one flushed JSON line per settled outcome to a results file.

    ``ResultsWriter.create(path)`` starts a new file and refuses to overwrite
    one. ``ResultsWriter.resume(path, keep)`` first rewrites the file with only
    the outcomes in ``keep`` (an earlier run's successes), atomically, then
    appends. Pass ``writer.write`` as a batch's ``on_outcome``.
    """

    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self.path = path
        self.written = 0
        self.error: OSError | None = None
        self._handle = handle

    @classmethod
    def create(cls, path: str | Path) -> ResultsWriter:
        """A writer on a new file; ``ResultsError`` if the file already exists."""
        path = Path(path)
        try:
            # Unbuffered: each line reaches the file in one write() call.
            handle = open(path, "xb", buffering=0)
        except FileExistsError:
            raise ResultsError(
                f"{path}: already exists, and labkit never overwrites results; "
                "resume it, or write to another file"
            ) from None
        except OSError as error:
            message = f"{path}: cannot create the results file ({error})"
            raise ResultsError(message) from None
        return cls(path, handle)

    @classmethod
    def resume(cls, path: str | Path, keep: Iterable[Outcome]) -> ResultsWriter:
        """A writer that continues ``path``, keeping only the outcomes in ``keep``.

        The file is rewritten through a temporary file and a rename, so a crash
        during the rewrite leaves the old file whole.
        """
        # Delivery is at least once: a record whose answer arrived but whose
        # line was not yet written when the process died is sent again. The
        # mock does not mind; a paid API would charge twice, and a real
        # pipeline would send an idempotency key with each request.
        path = Path(path)
        temporary = path.with_name(path.name + ".tmp")
        try:
            with open(temporary, "wb") as handle:
                handle.writelines(_line(outcome) for outcome in keep)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
            handle = open(path, "ab", buffering=0)
        except OSError as error:
            message = f"{path}: cannot rewrite the results file ({error})"
            raise ResultsError(message) from None
        return cls(path, handle)

    def write(self, outcome: Outcome) -> None:
        """Append one outcome as one line; raises ``OSError`` if the disk refuses.

        The line is in the operating system's hands when this returns, so
        killing the process loses nothing written. There is no fsync per line:
        a power cut may lose the last lines, and a resumed run sends those
        records again (the price of not syncing 10 times a second).
        """
        try:
            self._handle.write(_line(outcome))
        except OSError as error:
            self.error = error
            raise
        self.written += 1

    def close(self) -> None:
        """Close the file; every line is already written."""
        self._handle.close()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _line(outcome: Outcome) -> bytes:
    text = json.dumps(dataclasses.asdict(outcome), ensure_ascii=False)
    return (text + "\n").encode("utf-8")


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """The non-blank lines of ``path`` with their numbers, read as bytes."""
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise ResultsError(f"{path}: cannot read the results file ({error})") from None

    with handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                yield number, raw


def _decode(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text at byte {error.start + 1}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON: {error.msg}") from None


def _unreadable_message(path: Path, number: int, why: str) -> str:
    return (
        f"{path}:{number}: {why}; each line must be one JSON object, and only "
        "the last line may be broken (a crash can cut it short). Fix or delete "
        "this line, or write to a new results file"
    )


def _outcome_from(data: Any, where: str) -> Outcome:
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ResultsError(f"{where}: expected a JSON object, got {kind}")

    record_id = data.get("record_id")
    if not isinstance(record_id, str) or not record_id.strip():
        raise ResultsError(f"{where}: field 'record_id' must be a non-empty string")
    status = data.get("status")
    if status not in STATUSES:
        raise ResultsError(
            f"{where}: field 'status' is {status!r}; allowed: {', '.join(STATUSES)}"
        )
    if status == SUCCEEDED and not isinstance(data.get("value"), str):
        raise ResultsError(f"{where}: a succeeded record needs a text 'value'")
    attempts = data.get("attempts", 0)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
        raise ResultsError(f"{where}: field 'attempts' must be a whole number >= 0")

    # Optional text fields: a wrong type is dropped rather than trusted.
    texts = {
        name: value if isinstance(value := data.get(name), str) else None
        for name in ("value", "reason", "error_type", "kind")
    }
    return Outcome(record_id, status, attempts=attempts, **texts)


def _check_id(
    record_id: str,
    record_ids: Collection[str],
    seen_on: dict[str, int],
    path: Path,
    number: int,
) -> None:
    if record_id not in record_ids:
        raise ResultsError(
            f"{path}:{number}: record {record_id!r} is not in the records file; "
            "a results file belongs to one records file, so use another file "
            "for other records"
        )
    if record_id in seen_on:
        raise ResultsError(
            f"{path}:{number}: record {record_id!r} already appears on line "
            f"{seen_on[record_id]}; a results file holds each record once"
        )
    seen_on[record_id] = number
