"""The project's tests use the shipped plugin (lakekv.testing.plugin, loaded by entry point);
the fixtures here are shared by the project's own test modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _migrate_helpers import StoreMaker

from lakekv.kv.registry import driver_class
from lakekv.kv.url import StoreURL
from lakekv.testing.plugin import configured_stores


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The store parametrisations the project's tests share, in one place: ``backend`` (every
    configured store), ``feed_backend`` (those whose drivers record changes) and ``pair``
    (every ordered pair of configured stores)."""
    stores = configured_stores(metafunc.config)
    labels = [f"{StoreURL.parse(u).scheme}{i}" for i, u in enumerate(stores)]
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", stores, ids=labels)
    if "feed_backend" in metafunc.fixturenames:
        feeds = [
            (u, label)
            for u, label in zip(stores, labels, strict=True)
            if driver_class(StoreURL.parse(u).scheme).capabilities.change_feed
        ]
        metafunc.parametrize("feed_backend", [u for u, _ in feeds], ids=[x for _, x in feeds])
    if "pair" in metafunc.fixturenames:
        pairs = [(a, b) for a in stores for b in stores]
        ids = [f"{la}-to-{lb}" for la in labels for lb in labels]
        metafunc.parametrize("pair", pairs, ids=ids)


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
