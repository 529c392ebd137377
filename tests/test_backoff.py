"""Backoff: doubling from the base, the cap, each jitter mode's range."""

from __future__ import annotations

import random

import pytest

from labkit import backoff_delay


def test_without_jitter_it_doubles_from_the_base_up_to_the_cap():
    delays = [backoff_delay(n, base=0.2, cap=2.0, jitter="none") for n in range(1, 7)]
    assert delays == pytest.approx([0.2, 0.4, 0.8, 1.6, 2.0, 2.0])


@pytest.mark.parametrize(
    ("jitter", "low", "high"), [("equal", 0.5, 1.0), ("full", 0.0, 1.0)]
)
def test_each_jitter_mode_stays_in_its_share_of_the_delay(jitter, low, high):
    rng = random.Random(7)
    for retry in range(1, 8):
        capped = min(2.0, 0.2 * 2 ** (retry - 1))
        for _ in range(200):
            delay = backoff_delay(retry, base=0.2, cap=2.0, jitter=jitter, rng=rng)
            assert low * capped <= delay <= high * capped


def test_a_seeded_source_gives_the_same_delays():
    def draws(seed):
        rng = random.Random(seed)
        return [backoff_delay(3, base=0.1, cap=1, jitter="full", rng=rng)
                for _ in range(5)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)


def test_a_zero_base_never_waits():
    assert backoff_delay(5, base=0, cap=1, jitter="equal") == 0


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"retry": 0}, "1 or more"),
        ({"retry": 1, "base": -0.1}, "must not be negative"),
        ({"retry": 1, "cap": -1}, "must not be negative"),
        ({"retry": 1, "jitter": "half"}, "none, equal, full"),
    ],
)
def test_invalid_arguments_are_refused(arguments, words):
    options = {"base": 0.1, "cap": 1.0, **arguments}
    retry = options.pop("retry")
    with pytest.raises(ValueError, match=words):
        backoff_delay(retry, **options)
