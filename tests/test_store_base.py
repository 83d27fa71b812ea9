"""The Store base class: error translation, retry-after-error in scans, iterator lifecycle."""

from __future__ import annotations

import sqlite3

import pytest
from _fakes import FlakyStore

from lakekv.errors import KeyNotFoundError, LakekvError, StoreClosedError, StoreUnavailableError
from lakekv.kv.drivers.memory import MemoryStore
from lakekv.kv.store import Capabilities, Entry, ValueWithPredicate
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


# --- get's written-out fast path agrees with _check_pk and _call -------------------------------


class _Limited(MemoryStore):
    capabilities = Capabilities(max_partition_size=4, max_key_size=3)


_ARGS: list[tuple[object, object]] = [
    (b"p", b"k"),
    (bytearray(b"p"), b"k"),
    (b"p", memoryview(b"k")),
    ("p", b"k"),
    (b"p", "k"),
    (None, b"k"),
    (b"p", None),
    (b"", b"k"),
    (b"p", b""),
    (b"ppppp", b"k"),
    (b"p", b"kkkk"),
    (b"pppp", b"kkk"),
    (1, 2),
]


@pytest.mark.parametrize(("partition", "key"), _ARGS)
def test_get_validates_as_check_pk(partition: object, key: object) -> None:
    store = _Limited.from_url(StoreURL.parse("memory://"))
    try:
        expected: object = store._check_pk(partition, key)
    except LakekvError as exc:
        expected = (type(exc), str(exc))
    try:
        store.get(partition, key)  # type: ignore[arg-type]
        got: object = "no error"
    except KeyNotFoundError:
        got = expected  # valid arguments: the key is missing
    except LakekvError as exc:
        got = (type(exc), str(exc))
    assert got == expected


def test_get_is_a_call_in_flight_and_translated_like_call() -> None:
    seen: list[int] = []

    class Watched(FlakyStore):
        def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
            seen.append(len(self._inflight))
            if key == b"fail":
                raise sqlite3.OperationalError("database is locked")
            return super()._get(partition, key)

    store = Watched(set())
    store.set(b"p", b"k", b"v")
    assert store.get(b"p", b"k").value == b"v"
    with pytest.raises(StoreUnavailableError) as info:
        store.get(b"p", b"fail")
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    with pytest.raises(StoreUnavailableError) as via_call:
        store._call(store._get, b"p", b"fail")
    assert str(info.value) == str(via_call.value)
    assert seen == [1, 1, 1] and store._inflight == []
    store.close()
    with pytest.raises(StoreClosedError, match="is closed"):
        store.get(b"p", b"k")
