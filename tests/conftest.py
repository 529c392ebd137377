"""Shared test helpers: everything async runs on the virtual clock."""

from __future__ import annotations

import pytest

from labkit.records import load_records


@pytest.fixture(scope="session")
def records():
    """The 100 shipped records."""
    return load_records()
