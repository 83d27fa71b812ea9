"""The project's tests use the shipped plugin (lakekv.testing.plugin, loaded by entry point);
the fixtures here are shared by the project's own test modules."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from _migrate_helpers import StoreMaker

from lakekv.kv.registry import driver_class
from lakekv.kv.url import StoreURL
from lakekv.testing.plugin import configured_stores


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``scripts/test.sh`` runs two workers), each worker gets its own
    PostgreSQL database on the test server: the cutover's check that no other client is
    connected to the source database, and the listing of the server's change feeds by
    database, then see only the worker's own tests. Tests that change a server for everyone
    (``serial``) run after the workers, alone."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    base = os.environ.get("LAKEKV_TEST_POSTGRES")
    if not worker or not base:
        return
    url = StoreURL.parse(base)
    database = f"{url.path.strip('/')}_{worker}"
    own = dataclasses.replace(url, path=f"/{database}").render(reveal_password=True)
    import psycopg  # noqa: PLC0415 (only under xdist, with a PostgreSQL server)

    admin = url.without_params().render(reveal_password=True)  # libpq reads postgres:// too
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if exists.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{database}"')
    os.environ["LAKEKV_TEST_POSTGRES"] = own
    config.option.store = [own if s == base else s for s in config.option.store]


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
