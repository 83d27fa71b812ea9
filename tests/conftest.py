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


@pytest.fixture(autouse=True)
def _pass_records(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test keeps lakekv's pass records and pair locks (``LAKEKV_STATE_DIR``) apart:
    one test's record of a pair never guards another test's stores (a SQLite file of a
    finished test may leave its inode to the next one's)."""
    monkeypatch.setenv("LAKEKV_STATE_DIR", str(tmp_path_factory.mktemp("state")))
