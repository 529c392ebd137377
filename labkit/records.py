"""The customer records a batch processes: loading, checking and generating them.

A records file is JSON Lines: one object per line with a unique ``id`` and the
``note`` text that the LLM transforms. Anything else on a line is kept as is.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Record", "RecordsError", "load_records", "generate_records"]

DEFAULT_RECORDS = Path(__file__).resolve().parent.parent / "data" / "records.jsonl"


class RecordsError(ValueError):
    """A records file that cannot be used, with the file and line at fault."""


@dataclass(frozen=True, slots=True)
class Record:
    """One customer record: its stable id and the note the LLM transforms."""

    id: str
    note: str
    name: str = ""
    email: str = ""


def load_records(path: str | Path = DEFAULT_RECORDS) -> list[Record]:
    """Read a JSON Lines records file, refusing anything the batch cannot use.

    Raises ``RecordsError`` naming the file and line for: a line that is not
    a JSON object, a missing or empty ``id`` or ``note``, an id seen before,
    and a file with no records at all. Blank lines are allowed.
    """
    records = list(iter_records(path))
    if not records:
        raise RecordsError(f"{path}: no records (the file is empty)")
    return records


def iter_records(path: str | Path) -> Iterator[Record]:
    """Yield records one at a time, so a huge file never sits in memory whole."""
    seen: set[str] = set()
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise RecordsError(f"{path}: cannot read the records file ({error})") from None

    # Bytes in, decoded line by line, so a stray binary line is named by number.
    with handle:
        for number, raw in enumerate(handle, start=1):
            # A byte-order mark opens files saved by some Windows editors.
            encoding = "utf-8-sig" if number == 1 else "utf-8"
            line = _decode(raw, encoding, f"{path}:{number}")
            if not line.strip():
                continue
            record = _parse_line(line, f"{path}:{number}")
            if record.id in seen:
                raise RecordsError(f"{path}:{number}: duplicate id {record.id!r}")
            seen.add(record.id)
            yield record


def _decode(raw: bytes, encoding: str, where: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise RecordsError(
            f"{where}: not UTF-8 text (byte {error.start + 1} of the line)"
        ) from None


def _parse_line(line: str, where: str) -> Record:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise RecordsError(
            f"{where}: not valid JSON ({error.msg}); each line must be one JSON "
            "object with an 'id' and a 'note'"
        ) from None
    except (RecursionError, ValueError) as error:
        # Nesting too deep for the parser, or an integer of thousands of digits.
        reason = "nested too deeply" if isinstance(error, RecursionError) else error
        raise RecordsError(f"{where}: not usable JSON ({reason})") from None
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise RecordsError(f"{where}: expected a JSON object, got {kind}")

    for field in ("id", "note"):
        value = data.get(field)
        if not isinstance(value, str) or not value.strip():
            raise RecordsError(f"{where}: field {field!r} must be a non-empty string")
        if not is_unicode_text(value):
            raise RecordsError(
                f"{where}: field {field!r} is not valid Unicode text (it holds a "
                "lone surrogate, as a cut emoji leaves); fix or remove the line"
            )

    return Record(
        id=data["id"],
        note=data["note"],
        name=str(data.get("name", "")),
        email=str(data.get("email", "")),
    )


def is_unicode_text(text: str) -> bool:
    """False for text holding a lone surrogate, the one str UTF-8 cannot encode."""
    # Such text would crash every later write of it (a results file, a report).
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Invented syllables, so generated names belong to nobody.
_SYLLABLES = ["ka", "lo", "mer", "vin", "tas", "ru", "bel", "do", "quin", "sa", "fen"]
_TOPICS = [
    "Invoice {n} was charged twice and I would like a refund.",
    "My order {n} arrived with a cracked handle on the carving set.",
    "Please change the delivery address on order {n} before it ships.",
    "I cannot log in to my account since the password reset on day {n}.",
    "The oak board from order {n} is warped; can I get a replacement?",
    "Thanks for the quick help with ticket {n}, the chisels are great.",
    "Order {n} has been in transit for two weeks without an update.",
    "How do I oil the walnut bowl I bought with order {n}?",
]


def generate_records(count: int, seed: int = 0) -> Iterator[Record]:
    """Yield ``count`` invented CarvedRock records, the same ones for a seed.

    Used for the shipped ``data/records.jsonl`` and for the large sets that the
    scale benchmark writes; names are made of invented syllables and e-mails use
    the reserved ``example.com`` domain.
    """
    rng = random.Random(seed)
    for index in range(1, count + 1):
        first = _invented_word(rng).title()
        last = _invented_word(rng).title()
        note = rng.choice(_TOPICS).format(n=rng.randint(1000, 9999))
        yield Record(
            id=f"CR-{index:06d}" if count > 9999 else f"CR-{index:04d}",
            note=note,
            name=f"{first} {last}",
            email=f"{first}.{last}@example.com".lower(),
        )


def write_records(records: Iterator[Record] | list[Record], path: str | Path) -> None:
    """Write records as JSON Lines, one object per line."""
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            row = {"id": record.id, "name": record.name, "email": record.email}
            row["note"] = record.note
            handle.write(json.dumps(row) + "\n")


def _invented_word(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3)))
