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
import errno
import json
import os
import stat
import tempfile
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from .batch import FAILED, NOT_ATTEMPTED, SUCCEEDED, Outcome, Report
from .records import Record, is_unicode_text

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
    is not JSON (unless it is the last one), JSON nested too deeply or with
    an integer too long to read, not an object, without a non-empty
    ``record_id``, with a ``status`` other than succeeded, failed or
    not_attempted, a success without a text ``value``, text that is not valid
    Unicode (a lone surrogate), or an id seen before.
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
        except _Unusable as error:
            # Complete JSON that Python cannot hold: a crash cuts labkit's
            # flat lines short, it never makes them deeper or their numbers
            # longer, so this is not a torn last line but a damaged file.
            raise ResultsError(f"{path}:{number}: {error}") from None
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
    appends; it refuses a symbolic link and a read-only file rather than
    replace them. Pass ``writer.write`` as a batch's ``on_outcome``.
    """

    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self.path = path
        self.written = 0
        self.error: OSError | None = None
        self._handle = handle
        # Where the last complete line ends: a failed write is cut back to it.
        self._good_size = handle.seek(0, os.SEEK_END) if handle.seekable() else 0

    @classmethod
    def create(cls, path: str | Path) -> ResultsWriter:
        """A writer on a new file; ``ResultsError`` if the file already exists."""
        path = Path(path)
        try:
            # Unbuffered: each line reaches the file in one write() call.
            handle = open(path, "xb", buffering=0)
        except FileExistsError:
            if path.is_symlink():
                # Even a link to nothing: "already exists" would puzzle.
                raise ResultsError(
                    f"{path}: is a symbolic link (to {os.readlink(path)}), and "
                    "labkit does not write results through a link; choose "
                    "another file"
                ) from None
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
        _check_rewritable(path)
        mode = _mode_of(path)
        if mode is None:
            # Nothing to keep yet: a new file, made exactly as ``create`` does
            # (with the usual permissions, not mkstemp's private 0600).
            writer = cls.create(path)
            for outcome in keep:
                writer.write(outcome)
            return writer
        temporary: str | None = None
        try:
            # A fresh name made with O_EXCL in the same directory: nothing
            # already there (a symlink planted at "<output>.tmp") is followed,
            # and the rename stays on one file system, so it is atomic. A kill
            # during the rewrite leaves this hidden file behind (the results
            # file itself stays whole); nothing cleans such leftovers up yet.
            fd, temporary = tempfile.mkstemp(
                prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
            )
            with open(fd, "wb") as handle:
                handle.writelines(_line(outcome) for outcome in keep)
                handle.flush()
                # mkstemp makes the file 0600; keep the permissions the user
                # gave the results file. (Its owner and hard links are not
                # kept: the rename makes a new file.)
                os.fchmod(handle.fileno(), mode)
                os.fsync(handle.fileno())
            os.replace(temporary, path)
            temporary = None
            _sync_directory(path.parent)
            handle = open(path, "ab", buffering=0)
        except OSError as error:
            message = f"{path}: cannot rewrite the results file ({error})"
            raise ResultsError(message) from None
        finally:
            if temporary is not None:
                _remove_quietly(temporary)
        return cls(path, handle)

    def write(self, outcome: Outcome) -> None:
        """Append one outcome as one line; raises ``OSError`` if the disk refuses.

        The line is in the operating system's hands when this returns, so
        killing the process loses nothing written. A line the disk took only
        part of is an error too: the part is cut off again where possible,
        and after any error the writer refuses every later line, so the file
        never holds a broken line before a whole one. There is no fsync per line:
        a power cut may lose the last lines, and a resumed run sends those
        records again (the price of not syncing 10 times a second).
        """
        # After one failure the file may end in a cut line: appending more
        # would bury it mid-file, where a resume must refuse it.
        if self.error is not None:
            raise self.error
        line = _line(outcome)
        try:
            self._write_all(line)
        except OSError as error:
            self.error = error
            self._cut_back()
            raise
        self._good_size += len(line)
        self.written += 1

    def _write_all(self, line: bytes) -> None:
        # An unbuffered write() may take only part of the line (a disk that
        # fills up, a file size limit): write the rest, and the call that
        # cannot write anything raises or returns 0.
        view = memoryview(line)
        while view:
            count = self._handle.write(view)
            if not count:
                raise OSError(errno.ENOSPC, "the disk took no more bytes")
            view = view[count:]

    def _cut_back(self) -> None:
        """Cut a partly written line off, so the file ends with a whole line."""
        # Not every handle can be cut (a pipe cannot): then leave it.
        truncate = getattr(self._handle, "truncate", None)
        try:
            if truncate is not None:
                truncate(self._good_size)
        except (OSError, ValueError):
            # The half line stays; a resume reports it as a broken last line
            # and sends that record again, so nothing is lost either way.
            pass

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
    data = dataclasses.asdict(outcome)
    try:
        # Readable text for the usual case: accents stay accents.
        return (json.dumps(data, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        # Text that is not valid Unicode (a lone surrogate from a record
        # built in code) cannot be UTF-8; escaped ASCII JSON can hold any
        # str and reads back the same, so writing the line never fails here.
        # ``read_results`` refuses such a line, naming it, as the records
        # loader refuses such a record: the batch goes on, the resume stops.
        return (json.dumps(data, ensure_ascii=True) + "\n").encode("ascii")


def _check_rewritable(path: Path) -> None:
    """Refuse a results file that a resume must not replace.

    A resume replaces the file by a rename. Through a symbolic link that
    would replace the link with a regular file and leave its target stale,
    so a link is refused with the real path to use instead. A file without
    any write permission was protected on purpose: a rename needs only the
    directory's permission, so it would silently undo that.
    """
    if path.is_symlink():
        target = os.readlink(path)
        raise ResultsError(
            f"{path}: is a symbolic link (to {target}); a resume rewrites the "
            "results file and will not replace a link or write through one. "
            "Pass the file itself as --output"
        )
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise ResultsError(f"{path}: cannot read the results file ({error})") from None
    if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise ResultsError(
            f"{path}: is read-only, and a resume rewrites it; make it writable "
            "(chmod u+w) to continue it, or copy it and resume the copy"
        )


def _mode_of(path: Path) -> int | None:
    """The permission bits of ``path``; ``None`` when there is no such file."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ResultsError(f"{path}: cannot read the results file ({error})") from None


def _sync_directory(directory: Path) -> None:
    # Without this, a power cut right after the rename may bring back the old
    # name's old file; not every system can open a directory, hence best effort.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(name: str) -> None:
    try:
        os.unlink(name)
    except OSError:
        pass


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


class _Unusable(ValueError):
    """A line that is whole JSON, yet too deep or too long-numbered to read."""


def _decode(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text at byte {error.start + 1}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON: {error.msg}") from None
    except RecursionError:
        raise _Unusable(
            "JSON nested too deeply to read; a results line is one flat object"
        ) from None
    except ValueError as error:
        # Python refuses integers of thousands of digits (int_max_str_digits).
        raise _Unusable(f"not usable JSON ({error})") from None


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
    for name in ("record_id", "value", "reason", "error_type", "kind"):
        text = data.get(name)
        if isinstance(text, str) and not is_unicode_text(text):
            raise ResultsError(
                f"{where}: field {name!r} is not valid Unicode text (it holds a "
                "lone surrogate); fix or delete this line"
            )
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
