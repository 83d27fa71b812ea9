"""The project's tests use the shipped plugin (lakekv.testing.plugin, loaded by entry point);
the fixtures here are shared by the project's own test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _migrate_helpers import StoreMaker


@pytest.fixture
def maker(tmp_path: Path) -> Iterator[StoreMaker]:
    """Opens empty, isolated stores of any backend; destroys them after the test."""
    m = StoreMaker(tmp_path)
    yield m
    m.cleanup()
