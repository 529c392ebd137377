"""Scale: a big batch never holds a waiting task per record."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from labkit import BatchRun, Config, Record, Timeline, WindowPacer, generate_records
from labkit.runner import run_virtual

RECORDS = 5_000
BACKLOG = 100


class _Counted:
    """The records, handed out one at a time, counting how many were taken."""

    def __init__(self, records: Iterator[Record]) -> None:
        self.records = records
        self.taken = 0

    def __iter__(self) -> Iterator[Record]:
        for record in self.records:
            self.taken += 1
            yield record


def test_five_thousand_records_never_hold_more_than_the_backlog():
    source = _Counted(generate_records(RECORDS, seed=5))
    most = {"tasks": 0, "taken_not_settled": 0, "pending": 0}
    settled = 0

    def on_outcome(outcome: object) -> None:
        nonlocal settled
        settled += 1
        most["tasks"] = max(most["tasks"], len(asyncio.all_tasks()))
        most["taken_not_settled"] = max(most["taken_not_settled"],
                                        source.taken - settled)
        most["pending"] = max(most["pending"], batch.pending)

    batch = BatchRun(
        source,
        Config(),
        timeline=Timeline(keep_events=False),
        pacer=WindowPacer(),
        on_outcome=on_outcome,
        backlog=BACKLOG,
        sample_every=1.0,
    )
    report = run_virtual(batch.run)

    assert len(report.succeeded) == RECORDS
    assert report.outcomes[-1].record_id == f"CR-{RECORDS:04d}"

    # Records are read from the iterator only as slots in the backlog free up,
    # and each admitted record is one task: neither grows with the batch.
    assert most["taken_not_settled"] <= BACKLOG
    assert most["pending"] <= BACKLOG
    assert most["tasks"] <= BACKLOG + 5  # the batch, its feeder and its monitor
