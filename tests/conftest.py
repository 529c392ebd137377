"""Shared test helpers: everything async runs on the virtual clock."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from labkit.records import load_records

# In CI the property tests draw the same examples on every run, so a red build
# is a regression that a rerun reproduces, never the luck of the draw. Locally
# each run explores new examples (and keeps failures in .hypothesis/).
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def records():
    """The 100 shipped records."""
    return load_records()
