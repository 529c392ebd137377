"""How long to wait before a retry: capped exponential backoff with jitter.

Retry 1 waits about ``base``, retry 2 about ``2 * base``, then 4, 8, ... times
``base``, never more than ``cap``. Jitter spreads the waits of records that
failed together, so they do not all come back at the same instant.
"""

from __future__ import annotations

import math
import random

__all__ = ["backoff_delay", "check_backoff", "JITTER_MODES"]

JITTER_MODES = ("none", "equal", "full")

# 2**64 times any sane base is far past any cap, and stays an exact int.
_MAX_EXPONENT = 64

# Used only when no rng is passed; labkit's own runs always pass a seeded one.
_UNSEEDED = random.Random()


def backoff_delay(
    retry: int,
    *,
    base: float,
    cap: float,
    jitter: str = "equal",
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``retry`` (1 for the first retry).

    ``jitter`` picks how the capped delay ``d`` is spread: ``"none"`` waits
    exactly ``d``; ``"equal"`` waits between ``d/2`` and ``d``; ``"full"``
    waits between 0 and ``d``. The result is never below 0 nor above ``cap``,
    and huge retry numbers give the cap instead of overflowing. Pass a seeded
    ``rng`` (``random.Random(seed)``) for delays that repeat run after run.

    >>> backoff_delay(3, base=0.1, cap=2.0, jitter="none")
    0.4
    """
    if retry < 1:
        raise ValueError(f"retry={retry} must be 1 or more (1 is the first retry)")
    check_backoff(base=base, cap=cap, jitter=jitter)

    exponent = min(retry - 1, _MAX_EXPONENT)
    delay = float(min(cap, base * 2**exponent))

    # Jitter shrinks the capped delay, so it can never push a wait past the cap.
    draw = (rng or _UNSEEDED).random()
    if jitter == "full":
        return delay * draw
    if jitter == "equal":
        return delay / 2 + delay / 2 * draw
    return delay


def check_backoff(*, base: float, cap: float, jitter: str) -> None:
    """Refuse backoff settings that could never give a usable delay."""
    if not (0 <= base < math.inf and 0 <= cap < math.inf):
        raise ValueError(
            f"base={base} and cap={cap} must be finite and must not be negative"
        )
    if jitter not in JITTER_MODES:
        raise ValueError(f"jitter={jitter!r} must be one of {', '.join(JITTER_MODES)}")
