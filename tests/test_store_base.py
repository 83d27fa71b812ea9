"""The Store base class: error translation, retry-after-error in scans, iterator lifecycle."""

from __future__ import annotations

import sqlite3

import pytest
from _fakes import FlakyStore

from lakekv.errors import StoreUnavailableError
from lakekv.kv.drivers.memory import MemoryStore
from lakekv.kv.store import Entry
from lakekv.kv.url import StoreURL


def test_driver_errors_are_translated_with_cause() -> None:
    store = FlakyStore({1})
    store.set(b"p", b"a", b"1")
    with pytest.raises(StoreUnavailableError) as info:
        list(store.scan(b"p"))
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)


@pytest.mark.parametrize("use_for", [False, True])
def test_scan_continues_after_a_failed_page(use_for: bool) -> None:
    store = FlakyStore({3})  # the third page fetch fails once
    keys = [b"k%02d" % i for i in range(9)]
    for k in keys:
        store.set(b"p", k, k)
    it = store.scan(b"p")
    got: list[bytes] = []
    while True:
        try:
            if use_for:
                got.extend(e.key for e in it)
                break
            got.append(next(it).key)
        except StoreUnavailableError:
            continue  # retry: the iterator asks for the same page again
        except StopIteration:
            break
    assert got == keys
    assert store.calls == 6  # 5 pages (2+2+2+2+1) and one failed attempt


def test_entries_are_entry_instances() -> None:
    store = FlakyStore(set())
    store.set(b"p", b"k", b"v")
    (entry,) = list(store.scan(b"p"))
    assert type(entry) is Entry
    assert (entry.partition, entry.key, entry.value) == (b"p", b"k", b"v")
    assert entry._replace(value=b"w") == Entry(b"p", b"k", b"w")


def test_non_driver_exceptions_are_not_masked() -> None:
    class Buggy(MemoryStore):
        def _get(self, partition: bytes, key: bytes) -> None:
            raise ZeroDivisionError("a bug, not a database error")

    store = Buggy.from_url(StoreURL.parse("memory://"))
    with pytest.raises(ZeroDivisionError):
        store.get(b"p", b"k")
