"""Worked solution for 07_settle.ipynb (see 01_config.py for the format)."""

import asyncio

from labkit import Outcome


# %% exercise: settle_all
async def settle_all(jobs):
    """Await every job together; one Outcome per job, failures included."""
    results = await asyncio.gather(*jobs.values(), return_exceptions=True)
    return [
        Outcome.from_result(record_id, result, attempts=0)
        for record_id, result in zip(jobs, results)
    ]


# %% exercise: split
def split(outcomes):
    """(succeeded, everything else), each in input order."""
    succeeded, others = [], []
    for outcome in outcomes:
        (succeeded if outcome.ok else others).append(outcome)
    return succeeded, others
