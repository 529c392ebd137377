"""Worked solution for 06_retry.ipynb (see 01_config.py for the format)."""

import asyncio

from labkit import RateLimitError, RetriesExhausted, backoff_delay


# %% exercise: retry
async def retry(attempt, *, max_retries, base_delay, max_delay, rng):
    """Await attempt() until it succeeds; retry only rate limits, on budget."""
    for number in range(1, max_retries + 2):
        try:
            return await attempt()
        except RateLimitError as error:
            if number > max_retries:
                raise RetriesExhausted(number, max_retries, error) from error
            delay = backoff_delay(number, base=base_delay, cap=max_delay, rng=rng)
            if error.retry_after is not None:
                delay = max(delay, error.retry_after)
            await asyncio.sleep(delay)
