"""The Store base class: error translation, retry-after-error in scans, iterator lifecycle."""

from __future__ import annotations

import sqlite3

import pytest
from _fakes import FlakyStore
from hypothesis import given
from hypothesis import strategies as st

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


# --- write_batch's mapped check agrees with the entry-by-entry one ------------------------------


class _LimitedItems(MemoryStore):
    capabilities = Capabilities(
        max_partition_size=4, max_key_size=3, max_value_size=5, max_item_size=9
    )


_ITEMS: list[object] = [
    *[(p, k, b"v") for p, k in _ARGS],
    (b"p", b"k", b""),
    (b"p", b"k", b"vvvvvv"),  # value over 5
    (b"pppp", b"kkk", b"vvv"),  # item over 9
    (b"ppp", b"kkk", b"vvv"),  # item exactly 9
    (b"p", b"k", bytearray(b"v")),
    (b"p", b"k", None),
]


@pytest.mark.parametrize("item", _ITEMS)
@pytest.mark.parametrize("as_entry", [True, False])
def test_write_batch_mapped_check_agrees_with_entry_by_entry(
    item: tuple[object, object, object], as_entry: bool
) -> None:
    store = _LimitedItems.from_url(StoreURL.parse("memory://"))
    batch = [Entry(b"a", b"1", b"x"), Entry(*item) if as_entry else item, Entry(b"b", b"2", b"")]
    try:
        expected: object = store._check_entries(batch)  # type: ignore[arg-type]
    except LakekvError as exc:
        expected = (type(exc), str(exc))
    clean = store._clean_columns(batch) is not None  # type: ignore[arg-type]
    exact = all(type(e) is Entry and all(type(x) is bytes for x in e) for e in batch)
    assert clean == (exact and expected == batch)  # the maps clear exactly the valid ones
    try:
        got: object = store._check_batch(batch)  # type: ignore[arg-type]
    except LakekvError as exc:
        got = (type(exc), str(exc))
    assert got == expected


def test_write_batch_refuses_a_repeated_key_either_way() -> None:
    store = _LimitedItems.from_url(StoreURL.parse("memory://"))
    for batch in (
        [Entry(b"a", b"1", b"x"), Entry(b"a", b"1", b"y")],
        [(b"a", b"1", b"x"), (b"a", b"1", b"x")],
    ):
        with pytest.raises(LakekvError, match="appears more than once"):
            store.write_batch(batch)
    assert store.write_batch([Entry(b"a", b"1", b"x"), Entry(b"b", b"1", b"x")]).written == 2


def test_write_batch_refuses_a_repeat_hidden_in_an_ascending_looking_batch() -> None:
    store = _LimitedItems.from_url(StoreURL.parse("memory://"))
    for batch in (
        [Entry(b"a", b"1", b"x"), Entry(b"a", b"2", b"x"), Entry(b"a", b"2", b"y")],
        [Entry(b"a", b"2", b"x"), Entry(b"a", b"1", b"x"), Entry(b"a", b"2", b"y")],
        [Entry(b"a", b"1", b"x"), Entry(b"b", b"1", b"x"), Entry(b"a", b"1", b"y")],
        [Entry(b"a", b"1", b"x"), Entry(b"b", b"1", b"x"), Entry(b"b", b"1", b"y")],
        [Entry(b"a", b"1", b"x"), Entry(b"b", b"1", b"x"), Entry(b"b", b"2", b"y")] * 2,
    ):
        with pytest.raises(LakekvError, match="appears more than once"):
            store.write_batch(batch)
    ok = [Entry(b"a", b"1", b"x"), Entry(b"a", b"3", b"x"), Entry(b"b", b"1", b"x")]
    assert store.write_batch(ok).written == 3
    unsorted = [Entry(b"c", b"2", b"x"), Entry(b"c", b"1", b"x"), Entry(b"a", b"9", b"x")]
    assert store.write_batch(unsorted).written == 3


@given(
    st.lists(
        st.tuples(st.sampled_from([b"a", b"b", b"c"]), st.sampled_from([b"1", b"2", b"3"])),
        min_size=1,
        max_size=8,
    ),
    st.booleans(),
)
def test_write_batch_refuses_exactly_the_batches_with_a_repeated_key(
    pairs: list[tuple[bytes, bytes]], sort: bool
) -> None:
    """Whatever the order (sorted as scans page, or not), a batch is refused if and only if
    a ``(partition, key)`` repeats."""
    store = _LimitedItems.from_url(StoreURL.parse("memory://"))
    batch = [Entry(p, k, b"v") for p, k in (sorted(pairs) if sort else pairs)]
    repeated = len(set(pairs)) != len(pairs)
    try:
        store._check_batch(batch)
        refused = False
    except LakekvError:
        refused = True
    assert refused == repeated
