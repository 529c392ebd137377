"""Worked solution for 01_config.ipynb.

Each `# %% exercise: NAME` block replaces the notebook cell of that exercise
when `make html` (or `python -m labkit.solutions solve`) builds the solved copy.
The imports above the first block are what the notebook has already imported.
"""


# %% exercise: validate_knobs
def validate_knobs(
    max_concurrency: int,
    max_retries: int,
    base_delay_ms: int,
    max_delay_ms: int,
) -> None:
    """Raise ValueError, naming the knob, for any value the batch cannot use."""
    lowest = {
        "MAX_CONCURRENCY": (max_concurrency, 1),
        "MAX_RETRIES": (max_retries, 0),
        "BASE_DELAY_MS": (base_delay_ms, 0),
        "MAX_DELAY_MS": (max_delay_ms, base_delay_ms),
    }
    for name, (value, low) in lowest.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name}={value!r} must be a whole number")
        if value < low:
            raise ValueError(f"{name}={value} is too small: at least {low}")
