"""Helpers shared by the migration operations."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from typing import Final

from lakekv import __version__
from lakekv.kv.registry import open_store
from lakekv.kv.store import Store
from lakekv.kv.url import StoreURL

StoreLike = Store | str | StoreURL
"""A store, or a URL to open (and close afterwards)."""

BATCH_ENTRIES: Final = 20000
"""Entries per ``write_batch`` call (large batches mean few transactions: measured best for
PostgreSQL COPY and SQLite; memory stays a few MB per worker)."""
BATCH_BYTES: Final = 8 << 20
"""Key and value bytes per ``write_batch`` call (whichever limit is reached first)."""
LAKEKV_VERSION: Final = __version__


@contextlib.contextmanager
def opened(store: StoreLike) -> Iterator[Store]:
    """``store`` itself, or the store a URL names, closed on exit."""
    if isinstance(store, Store):
        yield store
        return
    with open_store(store) as s:
        yield s


def url_of(store: Store) -> str:
    """The store's URL for reports and dump headers, without any credential.

    User name and password are dropped, and so is any query parameter whose name suggests a
    secret: ``postgres://u:pw@db:5432/lakefs?table=kv`` becomes
    ``postgres://db:5432/lakefs?table=kv``.
    """
    u = store.url
    query = tuple((k, v) for k, v in u.query if not _SECRET_PARAM.search(k))
    return StoreURL(u.scheme, host=u.host, port=u.port, path=u.path, query=query).render()


_SECRET_PARAM = re.compile(r"(?i)pass|secret|key|token|cred|auth")


class Stop:
    """A shared flag telling worker threads to give up (another worker failed)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def check(self) -> None:
        if self._event.is_set():
            raise StoppedError

    @property
    def is_set(self) -> bool:
        return self._event.is_set()


class StoppedError(Exception):
    """Raised inside a worker when another worker failed."""
