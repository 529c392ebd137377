"""Worked solution for 05_backoff.ipynb (see 01_config.py for the format)."""


# %% exercise: backoff
def backoff(retry, base, cap, rng):
    """Seconds to wait before retry number `retry`: capped, with equal jitter."""
    exponent = min(retry - 1, 64)  # 2**64 * base is past any sane cap already
    delay = min(cap, base * 2**exponent)
    return delay / 2 + delay / 2 * rng.random()
