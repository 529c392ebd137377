"""Worked solution for 03_pool.ipynb (see 01_config.py for the format)."""

import asyncio

from labkit import Pool


# %% exercise: run_all
async def run_all(records, job, concurrency):
    """Run job(record) for every record, at most `concurrency` at once."""
    pool = Pool(concurrency)
    return await asyncio.gather(*(pool.run(job, record) for record in records))
