"""Worked solution for 04_counters.ipynb (see 01_config.py for the format)."""

import asyncio


# %% exercise: watch
async def watch(pool, timeline, every):
    """Every `every` seconds, emit a 'pool' event with the pool's two counts."""
    while True:
        await asyncio.sleep(every)
        timeline.emit("pool", active=pool.active_count, pending=pool.pending_count)
