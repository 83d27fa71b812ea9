"""The store conformance suite: every driver must pass every test here.

Tests that involve scans take the ``store`` fixture and run once per configured store and page
size (the plugin sets both the first page and the page cap, so paging happens constantly);
tests where paging does not matter take ``plain_store`` and run once per store. Each test works
in partitions unique to the test run and test, so runs can share one real database.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakekv.errors import (
    InvalidArgumentError,
    KeyNotFoundError,
    MissingKeyError,
    MissingPartitionError,
    MissingValueError,
    PredicateFailedError,
    StoreClosedError,
    StoreNotFoundError,
    StoreReadOnlyError,
    UnsupportedError,
)
from lakekv.kv.registry import open_store
from lakekv.kv.store import MUST_EXIST, Entry, OnConflict, PartitionDigest, Store

MakePartition = Callable[[str], bytes]


def sample(prefix: bytes, n: int) -> list[Entry]:
    """``n`` entries ``<prefix>-key-0000`` → ``<prefix>-value-0000`` (partition left empty)."""
    return [
        Entry(b"", b"%s-key-%04d" % (prefix, i), b"%s-value-%04d" % (prefix, i)) for i in range(n)
    ]


def fill(store: Store, partition: bytes, entries: list[Entry]) -> None:
    for e in entries:
        store.set(partition, e.key, e.value)


def pairs(it: Iterator[Entry]) -> list[tuple[bytes, bytes]]:
    return [(e.key, e.value) for e in it]


def scan_prefix(store: Store, partition: bytes, prefix: bytes) -> list[tuple[bytes, bytes]]:
    out = []
    with store.scan(partition, start=prefix) as it:
        for e in it:
            if not e.key.startswith(prefix):
                break
            out.append((e.key, e.value))
    return out


class StoreContractSuite:
    """Subclass (or import under a ``Test*`` name) to run the suite with ``--store URL``."""

    # --- get / set -----------------------------------------------------------------------------

    def test_set_get_overwrite(self, plain_store: Store, partition: bytes) -> None:
        plain_store.set(partition, b"key", b"value")
        assert plain_store.get(partition, b"key").value == b"value"
        plain_store.set(partition, b"key", b"a different kind of value")
        assert plain_store.get(partition, b"key").value == b"a different kind of value"

    def test_get_missing_key(self, plain_store: Store, partition: bytes) -> None:
        plain_store.set(partition, b"present", b"v")
        with pytest.raises(KeyNotFoundError):
            plain_store.get(partition, b"key-not-exists")

    def test_get_missing_partition(self, plain_store: Store, make_partition: MakePartition) -> None:
        with pytest.raises(KeyNotFoundError):
            plain_store.get(make_partition("partition-not-exists"), b"key")

    def test_results_are_bytes_and_bytes_like_inputs_work(
        self, plain_store: Store, partition: bytes
    ) -> None:
        plain_store.set(bytearray(partition), memoryview(b"k1"), bytearray(b"v1"))
        got = plain_store.get(memoryview(partition), bytearray(b"k1"))
        assert type(got.value) is bytes
        assert got.value == b"v1"
        entries = list(plain_store.scan(partition))
        assert [type(x) for e in entries for x in e] == [bytes, bytes, bytes]
        assert entries == [Entry(partition, b"k1", b"v1")]

    def test_str_arguments_are_refused(self, plain_store: Store, partition: bytes) -> None:
        with pytest.raises(InvalidArgumentError):
            plain_store.set(partition, "key", b"v")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            plain_store.set(partition.decode(), b"key", b"v")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError):
            plain_store.set(partition, b"key", "v")  # type: ignore[arg-type]

    def test_empty_value_round_trip(self, store: Store, partition: bytes) -> None:
        store.set(partition, b"empty", b"")
        got = store.get(partition, b"empty")
        assert got.value == b""
        assert list(store.scan(partition)) == [Entry(partition, b"empty", b"")]
        # a predicate taken from an empty value works (lakeFS "predicate_empty_slice")
        store.set_if(partition, b"empty", b"v2", got.predicate)
        assert store.get(partition, b"empty").value == b"v2"
        store.set_if(partition, b"new-empty", b"", None)
        assert store.get(partition, b"new-empty").value == b""

    def test_binary_keys_partitions_and_values(
        self, store: Store, make_partition: MakePartition
    ) -> None:
        partition = make_partition("bin") + b"\x00\xff\xc3\x28"
        keys = [
            b"\x00",
            b"\x00\x00",
            b"\x00\x01",
            b"\x7f",
            b"\x80",
            b"\xc3\x28",
            b"\xff",
            b"\xff\xff",
        ]
        for i, k in enumerate(keys):
            store.set(partition, k, bytes([i, 0, 255]))
        for i, k in enumerate(keys):
            assert store.get(partition, k).value == bytes([i, 0, 255])
        assert [e.key for e in store.scan(partition)] == sorted(keys)
        assert all(e.partition == partition for e in store.scan(partition))
        store.delete(partition, b"\x00")
        assert [e.key for e in store.scan(partition)] == sorted(keys)[1:]

    # --- argument validation ---------------------------------------------------------------

    @pytest.mark.parametrize("bad", [None, b""], ids=["none", "empty"])
    def test_missing_partition_everywhere(self, plain_store: Store, bad: bytes | None) -> None:
        s = plain_store
        with pytest.raises(MissingPartitionError):
            s.get(bad, b"k")  # type: ignore[arg-type]
        with pytest.raises(MissingPartitionError):
            s.set(bad, b"k", b"v")  # type: ignore[arg-type]
        with pytest.raises(MissingPartitionError):
            s.set_if(bad, b"k", b"v", b"p")  # type: ignore[arg-type]
        with pytest.raises(MissingPartitionError):
            s.set_if(bad, b"k", b"v", None)  # type: ignore[arg-type]
        with pytest.raises(MissingPartitionError):
            s.delete(bad, b"k")  # type: ignore[arg-type]
        with pytest.raises(MissingPartitionError):
            s.scan(bad, start=b"k")  # type: ignore[arg-type]
        with pytest.raises(MissingPartitionError):
            s.write_batch([Entry(bad, b"k", b"v")])  # type: ignore[arg-type]

    @pytest.mark.parametrize("bad", [None, b""], ids=["none", "empty"])
    def test_missing_key_everywhere(
        self, plain_store: Store, partition: bytes, bad: bytes | None
    ) -> None:
        s = plain_store
        with pytest.raises(MissingKeyError):
            s.get(partition, bad)  # type: ignore[arg-type]
        with pytest.raises(MissingKeyError):
            s.set(partition, bad, b"v")  # type: ignore[arg-type]
        with pytest.raises(MissingKeyError):
            s.set_if(partition, bad, b"v", b"p")  # type: ignore[arg-type]
        with pytest.raises(MissingKeyError):
            s.delete(partition, bad)  # type: ignore[arg-type]
        with pytest.raises(MissingKeyError):
            s.write_batch([Entry(partition, bad, b"v")])  # type: ignore[arg-type]

    def test_missing_value(self, plain_store: Store, partition: bytes) -> None:
        with pytest.raises(MissingValueError):
            plain_store.set(partition, b"k", None)  # type: ignore[arg-type]
        with pytest.raises(MissingValueError):
            plain_store.set_if(partition, b"k", None, b"p")  # type: ignore[arg-type]
        with pytest.raises(MissingValueError):
            plain_store.write_batch([Entry(partition, b"k", None)])  # type: ignore[arg-type]
        with pytest.raises(KeyNotFoundError):
            plain_store.get(partition, b"k")

    def test_bad_scan_arguments(self, plain_store: Store, partition: bytes) -> None:
        with pytest.raises(InvalidArgumentError):
            plain_store.scan(partition, batch_size=-1)
        with pytest.raises(InvalidArgumentError):
            plain_store.scan(partition, start=None)  # type: ignore[arg-type]

    # --- set_if ------------------------------------------------------------------------------

    def test_set_if_none_creates(self, plain_store: Store, partition: bytes) -> None:
        plain_store.set_if(partition, b"first", b"v", None)
        assert plain_store.get(partition, b"first").value == b"v"

    def test_set_if_with_predicate_from_get(self, plain_store: Store, partition: bytes) -> None:
        plain_store.set(partition, b"k", b"v1")
        pred = plain_store.get(partition, b"k").predicate
        plain_store.set_if(partition, b"k", b"v2", pred)
        assert plain_store.get(partition, b"k").value == b"v2"
        # the predicate is spent: the value it describes is gone
        with pytest.raises(PredicateFailedError):
            plain_store.set_if(partition, b"k", b"v3", pred)
        assert plain_store.get(partition, b"k").value == b"v2"

    def test_set_if_wrong_predicate_writes_nothing(
        self, plain_store: Store, partition: bytes
    ) -> None:
        plain_store.set(partition, b"k", b"v1")
        stale = plain_store.get(partition, b"k").predicate
        plain_store.set(partition, b"k", b"changed")
        with pytest.raises(PredicateFailedError):
            plain_store.set_if(partition, b"k", b"v2", stale)
        assert plain_store.get(partition, b"k").value == b"changed"

    def test_set_if_foreign_predicate(self, plain_store: Store, partition: bytes) -> None:
        plain_store.set(partition, b"k", b"v1")
        with pytest.raises((PredicateFailedError, InvalidArgumentError)):
            plain_store.set_if(partition, b"k", b"v2", b"pred")
        with pytest.raises(InvalidArgumentError):
            plain_store.set_if(partition, b"k", b"v2", object())
        assert plain_store.get(partition, b"k").value == b"v1"

    def test_set_if_none_on_existing_fails(self, plain_store: Store, partition: bytes) -> None:
        plain_store.set(partition, b"k", b"v1")
        with pytest.raises(PredicateFailedError):
            plain_store.set_if(partition, b"k", b"v2", None)
        assert plain_store.get(partition, b"k").value == b"v1"

    def test_set_if_none_on_existing_empty_value_fails(
        self, plain_store: Store, partition: bytes
    ) -> None:
        plain_store.set(partition, b"k", b"")
        with pytest.raises(PredicateFailedError):
            plain_store.set_if(partition, b"k", b"v2", None)
        assert plain_store.get(partition, b"k").value == b""

    def test_set_if_must_exist(self, plain_store: Store, partition: bytes) -> None:
        plain_store.set(partition, b"k", b"v1")
        plain_store.set_if(partition, b"k", b"v2", MUST_EXIST)
        assert plain_store.get(partition, b"k").value == b"v2"
        with pytest.raises(PredicateFailedError):
            plain_store.set_if(partition, b"absent", b"v", MUST_EXIST)
        with pytest.raises(KeyNotFoundError):
            plain_store.get(partition, b"absent")

    def test_aba_what_the_predicate_compares(self, plain_store: Store, partition: bytes) -> None:
        """A → B → A between get and set_if: value predicates pass, version predicates fail."""
        plain_store.set(partition, b"k", b"A")
        pred = plain_store.get(partition, b"k").predicate
        plain_store.set(partition, b"k", b"B")
        plain_store.set(partition, b"k", b"A")
        if plain_store.capabilities.value_predicates:
            plain_store.set_if(partition, b"k", b"C", pred)
            assert plain_store.get(partition, b"k").value == b"C"
        else:
            with pytest.raises(PredicateFailedError):
                plain_store.set_if(partition, b"k", b"C", pred)
            assert plain_store.get(partition, b"k").value == b"A"

    # --- delete ------------------------------------------------------------------------------

    def test_delete_is_idempotent(self, plain_store: Store, make_partition: MakePartition) -> None:
        partition = make_partition("p")
        plain_store.set(partition, b"k", b"v")
        plain_store.delete(partition, b"k")
        with pytest.raises(KeyNotFoundError):
            plain_store.get(partition, b"k")
        plain_store.delete(partition, b"k")  # already gone
        plain_store.delete(partition, b"never-existed")
        plain_store.delete(make_partition("no-such-partition"), b"k")
        plain_store.set_if(partition, b"k", b"again", None)  # re-creatable
        assert plain_store.get(partition, b"k").value == b"again"

    # --- scan ------------------------------------------------------------------------------------

    def test_scan_full_and_partial_with_a_twin_partition(
        self, store: Store, make_partition: MakePartition
    ) -> None:
        main, twin = make_partition("main"), make_partition("twin")
        data = sample(b"scan", 100)
        fill(store, main, data)
        fill(store, twin, [e._replace(value=b"twin") for e in data])
        expected = [(e.key, e.value) for e in data]
        assert pairs(store.scan(main)) == expected
        assert pairs(store.scan(main, start=b"scan")) == expected
        assert pairs(store.scan(main, start=data[5].key)) == expected[5:]
        assert pairs(store.scan(main, start=data[5].key + b"\x00")) == expected[6:]
        assert pairs(store.scan(main, batch_size=7)) == expected
        assert pairs(store.scan(main, batch_size=1000)) == expected
        assert pairs(store.scan(main, start=b"zzz")) == []
        assert all(v == b"twin" for _, v in pairs(store.scan(twin)))

    def test_scan_pages_match_scan(self, store: Store, make_partition: MakePartition) -> None:
        main, twin = make_partition("main"), make_partition("twin")
        data = sample(b"pages", 25)
        fill(store, main, data)
        fill(store, twin, data[:3])
        expected = [(e.key, e.value) for e in data]
        for start, size in ((b"", 0), (b"", 1), (data[4].key, 3), (data[4].key + b"\x00", 50)):
            pages = list(store.scan_pages(main, start=start, page_size=size))
            assert all(pages)  # no empty pages
            assert all(len(p) <= store.paging.page_cap for p in pages)
            got = [(k, v) for page in pages for k, v in page]
            assert got == [kv for kv in expected if kv[0] >= start]
        assert list(store.scan_pages(make_partition("none"))) == []
        with pytest.raises(MissingPartitionError):
            store.scan_pages(b"")

    def test_scan_missing_partition_is_empty(
        self, store: Store, make_partition: MakePartition
    ) -> None:
        assert list(store.scan(make_partition("nothing-here"))) == []

    def test_scan_deleted_last_key(self, store: Store, partition: bytes) -> None:
        """The last key is deleted after the scan started: 99 or 100 entries, never an error."""
        data = sample(b"last", 100)
        fill(store, partition, data)
        expected = [(e.key, e.value) for e in data]
        with store.scan(partition, batch_size=95) as it:
            store.delete(partition, data[-1].key)
            got = pairs(it)
        assert got in (expected, expected[:-1])

    def test_scan_deleted_last_key_after_a_page_boundary(
        self, store: Store, partition: bytes
    ) -> None:
        data = sample(b"last", 100)
        fill(store, partition, data)
        expected = [(e.key, e.value) for e in data]
        with store.scan(partition) as it:
            got = [(e.key, e.value) for e, _ in zip(it, range(99), strict=False)]
            store.delete(partition, data[-1].key)
            got.extend(pairs(it))
        assert got in (expected, expected[:-1])
        assert pairs(store.scan(partition)) == expected[:-1]

    def test_scan_prefix(self, store: Store, make_partition: MakePartition) -> None:
        main, other = make_partition("main"), make_partition("other")
        sets = [uuid.uuid4().hex.encode() + b"-scan-prefix" for _ in range(3)]
        for prefix in sets:
            fill(store, main, sample(prefix, 100))
            fill(store, other, sample(prefix, 100))
        for prefix in sets:
            assert scan_prefix(store, main, prefix) == [
                (e.key, e.value) for e in sample(prefix, 100)
            ]

    def test_scan_sees_writes_behind_and_ahead_consistently(
        self, store: Store, partition: bytes
    ) -> None:
        """Keys untouched during a scan are returned exactly once, in order."""
        data = sample(b"k", 30)
        fill(store, partition, data)
        seen = []
        with store.scan(partition) as it:
            for i, e in enumerate(it):
                seen.append(e.key)
                if i == 10:
                    store.set(partition, b"k-key-0005x", b"behind")  # before the cursor
                    store.set(partition, b"k-key-0020x", b"ahead")  # after the cursor
        untouched = [e.key for e in data]
        assert [k for k in seen if k in set(untouched)] == untouched
        assert len(seen) == len(set(seen))
        assert b"k-key-0005x" not in seen

    # --- delete while iterating (lakeFS sequences) --------------------------------------------

    @pytest.mark.parametrize(
        "sequence",
        [
            "RRRRRRRDDDDDDD",
            "RRRDRDRDRDRDDD",
            "RRRRRDRDRDRDRDRRRRR",
            "DDDDRDRDRDRDDRDDDDD",
            "DDDDRDRDDRRDDDDD",
            "DDDDDRRRRR",
        ],
    )
    def test_delete_while_iterating_sequences(
        self, store: Store, partition: bytes, sequence: str
    ) -> None:
        read_pref, del_pref, na_pref = b"readPrefix", b"toDelPrefix", b"naPrefix"
        n_read, n_del = sequence.count("R"), sequence.count("D")
        initial = sample(read_pref, n_read) + sample(del_pref, n_del)
        initial += sample(na_pref, n_read + n_del)
        fill(store, partition, initial)
        read_done: set[bytes] = set()
        delete_done: set[bytes] = set()
        with (
            store.scan(partition, start=read_pref) as reader,
            store.scan(partition, start=del_pref) as deleter,
        ):
            for step in sequence:
                if step == "R":
                    read_done.add(next(reader).key)
                else:
                    key = next(deleter).key
                    store.delete(partition, key)
                    delete_done.add(key)
        self._verify_delete_while_iterating(
            store, partition, initial, read_done, delete_done, read_pref, del_pref
        )

    @pytest.mark.parametrize(
        ("read_pref", "del_pref"),
        [(b"prefin", b"prefinin"), (b"prefinin", b"prefin"), (b"prefinin", b"prefinin")],
    )
    def test_delete_while_iterating_nested_prefixes(
        self, store: Store, partition: bytes, read_pref: bytes, del_pref: bytes
    ) -> None:
        initial = [e for pref in (b"pref", b"prefin", b"prefinin") for e in sample(pref, 40)]
        fill(store, partition, initial)
        read_done: set[bytes] = set()
        delete_done: set[bytes] = set()
        errors: list[BaseException] = []

        def read() -> None:
            with store.scan(partition, start=read_pref) as it:
                for e in it:
                    if not e.key.startswith(read_pref):
                        break
                    read_done.add(e.key)

        def delete() -> None:
            with store.scan(partition, start=del_pref) as it:
                for e in it:
                    if not e.key.startswith(del_pref):
                        break
                    store.delete(partition, e.key)
                    delete_done.add(e.key)

        def guarded(fn: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                try:
                    fn()
                except BaseException as exc:
                    errors.append(exc)

            return run

        threads = [threading.Thread(target=guarded(f)) for f in (read, delete)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        self._verify_delete_while_iterating(
            store, partition, initial, read_done, delete_done, read_pref, del_pref
        )

    @staticmethod
    def _verify_delete_while_iterating(
        store: Store,
        partition: bytes,
        initial: list[Entry],
        read_done: set[bytes],
        delete_done: set[bytes],
        read_pref: bytes,
        del_pref: bytes,
    ) -> None:
        assert all(k.startswith(read_pref) for k in read_done)
        assert all(k.startswith(del_pref) for k in delete_done)
        remaining = dict(pairs(store.scan(partition)))
        for e in initial:
            if e.key.startswith(del_pref):
                assert e.key in delete_done, f"{e.key!r} was not deleted"
                assert e.key not in remaining, f"{e.key!r} survived its deletion"
                continue
            assert remaining.get(e.key) == e.value, f"untouched {e.key!r} lost or changed"
            if e.key.startswith(read_pref):
                assert e.key in read_done, f"scan skipped the untouched key {e.key!r}"
            else:
                assert e.key not in read_done and e.key not in delete_done
        assert not any(k.startswith(del_pref) for k in remaining)

    # --- seek_ge ----------------------------------------------------------------------------

    def test_seek_ge_forward_backward_and_past_the_end(
        self, store: Store, partition: bytes
    ) -> None:
        data = sample(b"seek", 30)
        fill(store, partition, data)
        keys = [e.key for e in data]
        with store.scan(partition) as it:
            assert next(it).key == keys[0]
            it.seek_ge(keys[20])  # forward, across page boundaries
            assert next(it).key == keys[20]
            it.seek_ge(keys[3])  # backward
            assert [next(it).key for _ in range(3)] == keys[3:6]
            it.seek_ge(keys[7] + b"\x00")  # between keys
            assert next(it).key == keys[8]
            it.seek_ge(keys[8])  # the key just returned: returned again
            assert next(it).key == keys[8]
            it.seek_ge(b"zzzz")  # past the end
            with pytest.raises(StopIteration):
                next(it)
            it.seek_ge(b"")  # an exhausted iterator can be repositioned
            assert [e.key for e in it] == keys

    def test_seek_ge_within_and_beyond_the_current_page(
        self, store: Store, partition: bytes
    ) -> None:
        data = sample(b"page", 12)
        fill(store, partition, data)
        keys = [e.key for e in data]
        page = store.paging.page_size
        with store.scan(partition) as it:
            next(it)
            target = min(page, len(keys) - 1)  # first key of the second page
            it.seek_ge(keys[target])
            assert [e.key for e in it] == keys[target:]
        with store.scan(partition) as it:
            next(it)
            it.seek_ge(keys[-1])
            assert [e.key for e in it] == keys[-1:]

    def test_seek_ge_on_empty_partition(self, store: Store, partition: bytes) -> None:
        with store.scan(partition) as it:
            it.seek_ge(b"a")
            assert list(it) == []

    def test_seek_ge_sees_deletes_made_before_it(self, store: Store, partition: bytes) -> None:
        data = sample(b"sd", 20)
        fill(store, partition, data)
        with store.scan(partition) as it:
            next(it)
            store.delete(partition, data[15].key)
            it.seek_ge(data[14].key)
            got = [e.key for e in it]
        assert got[0] == data[14].key
        assert data[16].key in got
        assert got[-1] == data[-1].key

    # --- iterator and store lifecycle -----------------------------------------------------

    def test_iterator_after_close(self, store: Store, partition: bytes) -> None:
        fill(store, partition, sample(b"c", 3))
        it = store.scan(partition)
        next(it)
        it.close()
        with pytest.raises(StoreClosedError):
            next(it)
        with pytest.raises(StoreClosedError):
            it.seek_ge(b"a")
        it.close()  # twice is harmless

    def test_store_after_close(self, store_url: str, partition: bytes) -> None:
        s = open_store(store_url)
        s.set(partition, b"k", b"v")
        it = s.scan(partition)
        s.close()
        s.close()  # twice is harmless
        assert s.closed
        with pytest.raises(StoreClosedError):
            s.get(partition, b"k")
        with pytest.raises(StoreClosedError):
            s.set(partition, b"k", b"v")
        with pytest.raises(StoreClosedError):
            s.set_if(partition, b"k", b"v", None)
        with pytest.raises(StoreClosedError):
            s.delete(partition, b"k")
        with pytest.raises(StoreClosedError):
            s.scan(partition)
        with pytest.raises(StoreClosedError):
            next(it)
        with pytest.raises(StoreClosedError):
            s.write_batch([Entry(partition, b"k", b"v")])

    def test_closing_the_store_closes_its_iterators(self, store_url: str, partition: bytes) -> None:
        s = open_store(store_url)
        fill(s, partition, sample(b"c", 30))
        it = s.scan(partition, batch_size=30)
        first = next(it)
        assert first.key == b"c-key-0000"
        s.close()  # entries may still be buffered in the iterator: they are not returned
        with pytest.raises(StoreClosedError):
            next(it)
        with pytest.raises(StoreClosedError):
            list(it)

    def test_iterator_mixes_next_for_and_seek(self, store: Store, partition: bytes) -> None:
        data = sample(b"mix", 12)
        fill(store, partition, data)
        keys = [e.key for e in data]
        with store.scan(partition) as it:
            got = [next(it).key]
            for e in it:
                got.append(e.key)
                if len(got) == 5:
                    break
            got.append(next(it).key)
            it.seek_ge(keys[2])
            got.extend(e.key for e in it)
        assert got == keys[:6] + keys[2:]

    def test_store_is_a_context_manager(self, store_url: str, partition: bytes) -> None:
        with open_store(store_url) as s:
            s.set(partition, b"k", b"v")
        assert s.closed

    def test_two_stores_on_one_url(self, store_url: str, partition: bytes) -> None:
        with open_store(store_url) as a, open_store(store_url) as b:
            a.set(partition, b"k", b"v")
            if a.capabilities.persistent:
                assert b.get(partition, b"k").value == b"v"

    def test_password_never_in_repr(self, plain_store: Store) -> None:
        password = plain_store.url.password
        if password:
            assert password not in repr(plain_store)
            assert password not in str(plain_store.url)

    # --- opening: create, read-only, identity ---------------------------------------------

    def test_open_without_create_refuses_a_missing_store(
        self, make_fresh_store_url: Callable[[str], str]
    ) -> None:
        url = make_fresh_store_url("absent")
        with pytest.raises(StoreNotFoundError):
            open_store(url, create=False)
        with pytest.raises(StoreNotFoundError):
            open_store(url, read_only=True)
        # ... and neither attempt created it
        with pytest.raises(StoreNotFoundError):
            open_store(url, create=False)

    def test_read_only_store_reads_and_refuses_writes(
        self, make_fresh_store_url: Callable[[str], str], make_partition: MakePartition
    ) -> None:
        url = make_fresh_store_url("ro")
        p = make_partition("ro")
        with open_store(url) as writer:  # kept open: memory://NAME lives while it is open
            writer.set(p, b"k", b"v")
            with open_store(url, read_only=True) as ro:
                assert ro.read_only
                value = ro.get(p, b"k")
                assert value.value == b"v"
                assert pairs(ro.scan(p)) == [(b"k", b"v")]
                with pytest.raises(StoreReadOnlyError):
                    ro.set(p, b"k2", b"v")
                with pytest.raises(StoreReadOnlyError):
                    ro.set_if(p, b"k", b"w", value.predicate)
                with pytest.raises(StoreReadOnlyError):
                    ro.delete(p, b"k")
                with pytest.raises(StoreReadOnlyError):
                    ro.write_batch([Entry(p, b"k3", b"v")])
                with pytest.raises(StoreReadOnlyError):
                    ro.destroy()
            with open_store(url, create=False) as existing:
                existing.set(p, b"k4", b"v4")
            assert pairs(writer.scan(p)) == [(b"k", b"v"), (b"k4", b"v4")]

    def test_identity_names_the_data(self, make_fresh_store_url: Callable[[str], str]) -> None:
        url_a, url_b = make_fresh_store_url("ida"), make_fresh_store_url("idb")
        with open_store(url_a) as a, open_store(url_a) as a2, open_store(url_b) as b:
            assert a.identity() == a2.identity()
            assert a.identity() != b.identity()

    def test_close_while_another_thread_writes(
        self, fresh_store: Store, make_partition: MakePartition
    ) -> None:
        """close() during write_batch on another thread: the writer finishes or gets
        StoreClosedError; the interpreter never crashes."""
        p = make_partition("closing")
        batch = [Entry(p, b"k%06d" % i, b"v" * 100) for i in range(5000)]
        started = threading.Event()
        outcome: list[BaseException | None] = []

        def write() -> None:
            started.set()
            try:
                for i in range(20):
                    fresh_store.write_batch(
                        [Entry(e.partition, e.key + b"-%d" % i, e.value) for e in batch]
                    )
            except StoreClosedError as exc:
                outcome.append(exc)
            else:
                outcome.append(None)

        thread = threading.Thread(target=write)
        thread.start()
        started.wait()
        time.sleep(0.05)  # inside a batch by now
        fresh_store.close()
        thread.join(60)
        assert not thread.is_alive()
        assert len(outcome) == 1
        with pytest.raises(StoreClosedError):
            fresh_store.write_batch(batch[:1])

    # --- partitions ----------------------------------------------------------------------

    def test_partitions_that_are_prefixes_of_each_other_stay_isolated(
        self, store: Store, make_partition: MakePartition
    ) -> None:
        base = make_partition("iso")
        names = [base + b"/m", base + b"/ma", base + b"/a", base + b"/a/b", base + b"/a\x00"]
        for i, name in enumerate(names):
            for k in (b"k1", b"k2"):
                store.set(name, k, b"%d" % i)
        for i, name in enumerate(names):
            assert pairs(store.scan(name)) == [(b"k1", b"%d" % i), (b"k2", b"%d" % i)]
        store.delete(names[0], b"k1")
        assert store.get(names[1], b"k1").value == b"1"
        with pytest.raises(KeyNotFoundError):
            store.get(names[0], b"k1")

    def test_list_partitions(self, store: Store, make_partition: MakePartition) -> None:
        base = make_partition("lp")
        names = [base + s for s in (b"/b", b"/a", b"/a/b", b"/\xff", b"/\x00")]
        if not store.capabilities.list_partitions:
            with pytest.raises(UnsupportedError):
                store.list_partitions()
            return
        for name in names:
            store.set(name, b"k", b"v")
        listed = [p for p in store.list_partitions() if p.startswith(base)]
        assert listed == sorted(names)
        store.delete(names[0], b"k")  # an emptied partition is not listed
        listed = [p for p in store.list_partitions() if p.startswith(base)]
        assert listed == sorted(names[1:])

    # --- snapshots -----------------------------------------------------------------------------

    def test_snapshot_sees_one_point_in_time(
        self, store: Store, make_partition: MakePartition
    ) -> None:
        part, other = make_partition("snap"), make_partition("snap-new")
        if not store.capabilities.snapshot_reads:
            with pytest.raises(UnsupportedError):
                store.snapshot()
            return
        before = sample(b"s", 12)
        fill(store, part, before)
        with store.snapshot() as view:
            store.set(part, before[0].key, b"changed")
            store.delete(part, before[1].key)
            store.set(part, b"s-key-9999", b"inserted")
            store.set(other, b"k", b"v")
            # Many threads read the same point in time.
            with ThreadPoolExecutor(4) as pool:
                scans = list(pool.map(lambda _: pairs(view.scan(part)), range(8)))
            assert all(got == [(e.key, e.value) for e in before] for got in scans)
            assert [(k, v) for page in view.scan_pages(part) for k, v in page] == scans[0]
            assert view.get(part, before[0].key).value == before[0].value
            with pytest.raises(KeyNotFoundError):
                view.get(part, b"s-key-9999")
            if store.capabilities.list_partitions:
                assert other not in set(view.list_partitions())
            with pytest.raises(UnsupportedError):
                view.set(part, b"k", b"v")
            with pytest.raises(UnsupportedError):
                view.write_batch([Entry(part, b"k", b"v")])
        with pytest.raises(StoreClosedError):
            list(view.scan(part))
        assert store.get(part, before[0].key).value == b"changed"
        with store.snapshot() as view:  # a new snapshot sees the writes
            assert view.get(part, b"s-key-9999").value == b"inserted"

    # --- range digests and raw rows ------------------------------------------------------------

    def test_digest_range_is_the_canonical_sha256(
        self, store: Store, make_partition: MakePartition
    ) -> None:
        """Every store hashes the same entries to the same digest (``RangeDigest``), range
        by range, and the ranges chained by ``next_start`` cover the partition once."""
        part = make_partition("digest")
        entries = [(b"\x00", b""), (b"a", b"\xff" * 300), (b"a\x00", b"x")]
        entries += [(b"k%04d" % i, b"v%d" % i) for i in range(40)]
        store.write_batch([Entry(part, k, v) for k, v in entries])

        def canonical(rows: list[tuple[bytes, bytes]]) -> bytes:
            h = hashlib.sha256()
            for k, v in rows:
                h.update(struct.pack(">I", len(k)) + k + struct.pack(">I", len(v)) + v)
            return h.digest()

        whole = store.digest_range(part, b"", 1000)
        assert (whole.entries, whole.next_start) == (len(entries), None)
        assert whole.sha256 == canonical(entries)
        assert whole.payload_bytes == sum(len(k) + len(v) for k, v in entries)
        for limit in (1, 7):
            start: bytes | None = b""
            seen = 0
            while start is not None:
                d = store.digest_range(part, start, limit)
                rows = entries[seen : seen + d.entries]
                assert d.entries == min(limit, len(entries) - seen)
                assert d.sha256 == canonical(rows)
                seen += d.entries
                start = d.next_start
                assert start is None or start == entries[seen][0]
            assert seen == len(entries)
        middle = store.digest_range(part, b"a\x00", 2)  # start is inclusive
        assert middle.sha256 == canonical(entries[2:4])
        assert middle.next_start == entries[4][0]
        empty = store.digest_range(make_partition("digest-none"), b"", 5)
        assert (empty.entries, empty.sha256) == (0, hashlib.sha256().digest())
        store.set(part, b"a", b"changed")
        assert store.digest_range(part, b"", 1000).sha256 != whole.sha256
        with pytest.raises(InvalidArgumentError):
            store.digest_range(part, b"", 0)
        if store.capabilities.snapshot_reads:
            with store.snapshot() as view:
                assert view.digest_range(part, b"", 5) == store.digest_range(part, b"", 5)

    def test_digest_buckets_and_rows_account_for_every_entry(
        self, plain_store: Store, make_partition: MakePartition
    ) -> None:
        """With ``capabilities.digests``: the buckets of a partition count every entry once,
        each bucket's XOR is the XOR of its rows' hashes, a row hash depends on key and value
        (not on the partition), and a changed value changes its row and one bucket. Without
        the capability every digest method raises UnsupportedError (then the test skips)."""
        store = plain_store
        part = make_partition("digests")
        if store.capabilities.digests is None:
            for call in (
                store.digest_probe,
                lambda: store.digest_bits(part),
                lambda: store.digest_buckets(part, 4),
                lambda: store.digest_rows(part, 4, [0]),
                lambda: store.digest_partition(part),
                store.digest_partitions,
            ):
                with pytest.raises(UnsupportedError):
                    call()
            pytest.skip(f"{store.scheme}:// declares no digests")
        entries = [(b"\x00", b""), (b"a", b"\xff" * 300), (b"a\x00", b"x")]
        entries += [(b"d%04d" % i, b"v%d" % i) for i in range(200)]
        store.write_batch([Entry(part, k, v) for k, v in entries])
        keys = sorted(k for k, _ in entries)

        probe = store.digest_probe()
        assert isinstance(probe, int) and store.digest_probe() == probe
        suggested = store.digest_bits(part)
        assert isinstance(suggested, int) and 0 <= suggested <= 24

        def xor(hashes: list[int]) -> int:
            out = 0
            for h in hashes:
                out ^= h
            return out

        hashes: dict[bytes, int] = {}
        for bits in sorted({0, 3, suggested}):
            buckets = store.digest_buckets(part, bits)
            ids = [b for b, _, _ in buckets]
            assert len(set(ids)) == len(ids) and all(0 <= b < 1 << bits for b in ids)
            assert all(count > 0 for _, count, _ in buckets)
            assert sum(count for _, count, _ in buckets) == len(entries)
            seen: list[bytes] = []
            for bucket, count, bucket_xor in buckets:
                rows = store.digest_rows(part, bits, [bucket])
                assert len(rows) == count
                assert xor([h for _, h in rows]) == bucket_xor
                seen += [k for k, _ in rows]
                for k, h in rows:
                    assert hashes.setdefault(k, h) == h  # a row's hash does not depend on bits
            assert sorted(seen) == keys
            every = store.digest_rows(part, bits, ids)
            assert sorted(every) == sorted(hashes.items())
            assert store.digest_rows(part, bits, []) == []
        assert store.digest_buckets(part, 0) == [(0, len(entries), xor(list(hashes.values())))]

        twin = make_partition("digests-twin")
        store.write_batch([Entry(twin, k, v) for k, v in entries])
        assert sorted(store.digest_buckets(twin, 3)) == sorted(store.digest_buckets(part, 3))
        before = {b: (c, x) for b, c, x in store.digest_buckets(part, 3)}
        store.set(part, b"d0007", b"changed")
        after = {b: (c, x) for b, c, x in store.digest_buckets(part, 3)}
        changed = [b for b in before if before[b] != after[b]]
        assert len(changed) == 1 and before[changed[0]][0] == after[changed[0]][0]
        assert dict(store.digest_rows(part, 3, [changed[0]]))[b"d0007"] != hashes[b"d0007"]
        assert store.digest_buckets(make_partition("digests-none"), 3) == []
        for bad in (-1, 31):
            with pytest.raises(InvalidArgumentError):
                store.digest_buckets(part, bad)
            with pytest.raises(InvalidArgumentError):
                store.digest_rows(part, bad, [0])
        if store.capabilities.snapshot_reads:
            with store.snapshot() as view:
                expected = sorted((b, c, x) for b, (c, x) in after.items())
                assert sorted(view.digest_buckets(part, 3)) == expected

    def test_digest_partition_hashes_a_partition_as_a_set(
        self, plain_store: Store, make_partition: MakePartition
    ) -> None:
        """With ``capabilities.digests``: ``digest_partition`` counts a partition's entries and
        bytes exactly, does not depend on the order entries were written in, changes with any
        value, with a value moved to another key and with a byte moved between key and value,
        and is not the bucket digests' row hash. (Without the capability the test above
        checks the UnsupportedError.)"""
        store = plain_store
        if store.capabilities.digests is None:
            pytest.skip(f"{store.scheme}:// declares no digests")
        entries = [(b"\x00", b""), (b"ab", b"c"), (b"k1", b"\xff" * 300), (b"k2", b"v2")]
        entries += [(b"d%04d" % i, b"v%d" % i) for i in range(100)]
        part, twin = make_partition("pdigest"), make_partition("pdigest-twin")
        store.write_batch([Entry(part, k, v) for k, v in entries])
        store.write_batch([Entry(twin, k, v) for k, v in reversed(entries)])
        whole = store.digest_partition(part)
        assert (whole.entries, whole.payload_bytes) == (
            len(entries),
            sum(len(k) + len(v) for k, v in entries),
        )
        assert store.digest_partition(twin) == whole
        assert whole.hash != store.digest_buckets(part, 0)[0][2]

        def altered(name: str, put: list[tuple[bytes, bytes]], drop: bytes | None = None) -> int:
            """The hash of a copy of ``part`` with ``put`` overwritten and ``drop`` deleted
            (changes that keep the count)."""
            copy = make_partition(name)
            store.write_batch([Entry(copy, k, v) for k, v in entries])
            if drop is not None:
                store.delete(copy, drop)
            store.write_batch([Entry(copy, k, v) for k, v in put], "overwrite")
            got = store.digest_partition(copy)
            assert got.entries == whole.entries
            return got.hash

        hashes = {
            whole.hash,
            altered("pdigest-value", [(b"d0007", b"v8")]),
            altered("pdigest-moved", [(b"k1", b"v2"), (b"k2", b"\xff" * 300)]),
            altered("pdigest-split", [(b"a", b"bc")], drop=b"ab"),
            altered("pdigest-byte", [(b"\x00", b"\x00")]),
        }
        assert len(hashes) == 5
        store.delete(twin, b"d0001")
        less = store.digest_partition(twin)
        assert (less.entries, less.payload_bytes) == (whole.entries - 1, whole.payload_bytes - 7)
        assert store.digest_partition(make_partition("pdigest-none")) == PartitionDigest(0, 0, 0)
        every = store.digest_partitions()  # each partition's, in one pass
        assert set(every) == set(store.list_partitions())
        assert every == {p: store.digest_partition(p) for p in every}
        assert every[part] == whole and every[twin] == less
        if store.capabilities.snapshot_reads:
            with store.snapshot() as view:
                assert view.digest_partition(part) == whole
                assert view.digest_partitions() == every

    def test_raw_rows_round_trip_all_or_nothing(
        self, plain_store: Store, make_partition: MakePartition
    ) -> None:
        """Chunks read with ``read_raw`` cover the partition once and write back whole; a
        write meeting an existing key writes nothing and says so (``None``)."""
        store = plain_store
        part = make_partition("raw")
        if store.capabilities.raw_rows is None:
            with pytest.raises(UnsupportedError):
                store.read_raw(part)
            with pytest.raises(UnsupportedError):
                store.write_raw([])
            return
        entries = [Entry(part, b"r%03d" % i, b"\x00v%d" % i) for i in range(25)]
        store.write_batch(entries)
        chunks = []
        start: bytes | None = b""
        while start is not None:
            chunk = store.read_raw(part, start, 10)
            chunks.append(chunk)
            start = chunk.next_start
        assert [c.entries for c in chunks] == [10, 10, 5]
        assert sum(c.payload_bytes for c in chunks) == sum(
            len(e.key) + len(e.value) for e in entries
        )
        assert chunks[1].start == entries[10].key
        if store.capabilities.snapshot_reads:
            with store.snapshot() as view:
                assert view.read_raw(part, b"", 10) == chunks[0]
        assert store.write_raw(chunks) is None  # every key exists
        store.delete_many(part, [e.key for e in entries])
        store.set(part, entries[3].key, b"kept")
        assert store.write_raw(chunks) is None  # one key exists: nothing is written
        assert [e.key for e in store.scan(part)] == [entries[3].key]
        store.delete(part, entries[3].key)
        assert store.write_raw(chunks) == 25
        assert [(e.key, e.value) for e in store.scan(part)] == [(e.key, e.value) for e in entries]
        assert store.read_raw(make_partition("raw-none"), b"", 10).entries == 0

    def test_change_feed_lists_what_changed_until_confirmed(
        self, plain_store: Store, backend_url: str, make_partition: MakePartition
    ) -> None:
        """A feed lists every key written or deleted after it started, and the notes, until
        confirmed; reading forgets nothing; it works on a store opened read-only; dropping
        it twice is no error. Without ``capabilities.change_feed``: UnsupportedError."""
        store = plain_store
        part = make_partition("feed")
        name = "lakekv_t_" + uuid.uuid4().hex[:24]
        if not store.capabilities.change_feed:
            assert not store.feed_exists(name)
            for call in (store.feed_start, store.feed_read, store.feed_drop):
                with pytest.raises(UnsupportedError):
                    call(name)
            return
        with pytest.raises(InvalidArgumentError):
            store.feed_start("Not-A-Name")
        store.set(part, b"before", b"v")
        store.set(part, b"untouched", b"v")
        reader = open_store(backend_url, read_only=True)
        try:
            try:
                reader.feed_start(name)
            except UnsupportedError as exc:  # e.g. a PostgreSQL server without wal_level=logical
                if os.environ.get("CI"):
                    raise
                pytest.skip(f"the server cannot record changes here: {exc}")
            assert reader.feed_exists(name)
            store.set(part, b"a", b"1")
            store.set(part, b"a", b"2")
            store.delete(part, b"before")
            store.write_batch([Entry(part, b"b\x00\xff", b"")])
            reader.feed_mark(name, "first pass done")
            with pytest.raises(InvalidArgumentError):
                reader.feed_mark(name, "no\nnewlines")
            batch = reader.feed_read(name)
            assert batch.keys[part] == {b"a", b"before", b"b\x00\xff"}
            assert batch.notes == ["first pass done"]
            assert batch.unknown is None and batch.changes >= 4
            again = reader.feed_read(name)
            assert again.keys[part] == batch.keys[part] and again.notes == batch.notes
            reader.feed_confirm(name, batch.position)
            later = reader.feed_read(name)
            assert part not in later.keys and later.notes == []
            store.set(part, b"c", b"3")
            assert reader.feed_read(name).keys[part] == {b"c"}
        finally:
            reader.feed_drop(name)
            reader.close()
        assert not store.feed_exists(name)
        store.feed_drop(name)  # no error when there is none

    # --- properties --------------------------------------------------------------------------

    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,  # one instance per store; examples use own partitions
        ],
    )
    @given(keys=st.sets(st.binary(min_size=1, max_size=6), min_size=0, max_size=25))
    def test_bytewise_order_property(
        self, store: Store, partition: bytes, keys: set[bytes]
    ) -> None:
        part = partition + b"/" + uuid.uuid4().hex.encode()
        for k in keys:
            store.set(part, k, k[::-1])
        got = pairs(store.scan(part))
        assert got == [(k, k[::-1]) for k in sorted(keys)]

    # --- concurrency -------------------------------------------------------------------------

    def test_concurrent_cas_increments_lose_nothing(
        self, plain_store: Store, partition: bytes
    ) -> None:
        threads, per_thread = 8, 200
        plain_store.set(partition, b"counter", b"0")

        def worker() -> int:
            retries = 0
            for _ in range(per_thread):
                while True:
                    got = plain_store.get(partition, b"counter")
                    try:
                        plain_store.set_if(
                            partition, b"counter", b"%d" % (int(got.value) + 1), got.predicate
                        )
                        break
                    except PredicateFailedError:
                        retries += 1
            return retries

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda _: worker(), range(threads)))
        assert plain_store.get(partition, b"counter").value == b"%d" % (threads * per_thread)

    def test_racing_create_only_one_wins(self, plain_store: Store, partition: bytes) -> None:
        n = 8
        barrier = threading.Barrier(n)

        def attempt(i: int) -> bool:
            barrier.wait()
            try:
                plain_store.set_if(partition, b"lock", b"owner-%d" % i, None)
                return True
            except PredicateFailedError:
                return False

        with ThreadPoolExecutor(n) as pool:
            results = list(pool.map(attempt, range(n)))
        assert results.count(True) == 1
        winner = results.index(True)
        assert plain_store.get(partition, b"lock").value == b"owner-%d" % winner

    def test_many_threads_share_one_store(self, plain_store: Store, partition: bytes) -> None:
        def worker(t: int) -> None:
            for i in range(25):
                plain_store.set(partition, b"t%d-%02d" % (t, i), b"%d" % i)
                assert plain_store.get(partition, b"t%d-%02d" % (t, i)).value == b"%d" % i

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(worker, range(8)))
        assert len(list(plain_store.scan(partition))) == 200

    # --- sizes -------------------------------------------------------------------------------

    def test_large_value(self, plain_store: Store, partition: bytes) -> None:
        caps = plain_store.capabilities
        big = bytes(range(256)) * 4096  # 1 MiB
        limits = [x for x in (caps.max_value_size, caps.max_item_size) if x is not None]
        if not limits or min(limits) >= len(big) + len(partition) + 16:
            plain_store.set(partition, b"big", big)
            assert plain_store.get(partition, b"big").value == big
            assert list(plain_store.scan(partition)) == [Entry(partition, b"big", big)]
            return
        limit = min(limits)
        with pytest.raises(InvalidArgumentError, match=str(limit)):
            plain_store.set(partition, b"big", big)
        with pytest.raises(KeyNotFoundError):
            plain_store.get(partition, b"big")
        fits = big[: limit // 2]
        plain_store.set(partition, b"half", fits)
        assert plain_store.get(partition, b"half").value == fits

    def test_key_and_partition_limits(self, plain_store: Store, partition: bytes) -> None:
        caps = plain_store.capabilities
        if caps.max_key_size is not None:
            with pytest.raises(InvalidArgumentError, match=str(caps.max_key_size)):
                plain_store.set(partition, b"k" * (caps.max_key_size + 1), b"v")
            plain_store.set(partition, b"k" * caps.max_key_size, b"v")
        else:
            plain_store.set(partition, b"k" * 4096, b"v")
            assert plain_store.get(partition, b"k" * 4096).value == b"v"
        if caps.max_partition_size is not None:
            with pytest.raises(InvalidArgumentError, match=str(caps.max_partition_size)):
                plain_store.set(b"p" * (caps.max_partition_size + 1), b"k", b"v")

    # --- write_batch ---------------------------------------------------------------------------

    def test_write_batch_policies(self, plain_store: Store, make_partition: MakePartition) -> None:
        s = plain_store
        a, b = make_partition("a"), make_partition("b")
        batch = [Entry(a, b"k%03d" % i, b"v%d" % i) for i in range(30)]
        batch += [Entry(b, b"k%03d" % i, b"" if i % 3 == 0 else b"w%d" % i) for i in range(20)]
        assert s.write_batch([]).total == 0
        first = s.write_batch(batch)
        assert (first.written, first.unchanged, first.skipped, first.conflicts) == (50, 0, 0, [])
        again = s.write_batch(batch)
        assert (again.written, again.unchanged, again.skipped, again.conflicts) == (0, 50, 0, [])
        changed = [
            e._replace(value=e.value + b"!") if i % 10 == 0 else e for i, e in enumerate(batch)
        ]
        n_changed = sum(1 for i in range(len(batch)) if i % 10 == 0)
        fail = s.write_batch(changed, OnConflict.FAIL)
        assert fail.written == 0
        assert fail.unchanged == len(batch) - n_changed
        assert sorted(fail.conflicts) == sorted(e for i, e in enumerate(changed) if i % 10 == 0)
        skip = s.write_batch(changed, "skip")
        assert (skip.written, skip.skipped, skip.conflicts) == (0, n_changed, [])
        for e in batch:  # fail and skip kept the target's values
            assert s.get(e.partition, e.key).value == e.value
        over = s.write_batch(changed, OnConflict.OVERWRITE)
        assert (over.written, over.unchanged, over.conflicts) == (
            n_changed,
            len(batch) - n_changed,
            [],
        )
        for e in changed:
            assert s.get(e.partition, e.key).value == e.value
        mixed = [Entry(a, b"new", b"n"), changed[1], batch[0]]
        res = s.write_batch(mixed)
        assert (res.written, res.unchanged, res.conflicts) == (1, 1, [batch[0]])
        with pytest.raises(ValueError):
            s.write_batch(batch, "replace")

    def test_write_batch_refuses_a_repeated_key(
        self, plain_store: Store, make_partition: MakePartition
    ) -> None:
        a, b = make_partition("a"), make_partition("b")
        batch = [Entry(a, b"k1", b"1"), Entry(b, b"k1", b"2"), Entry(a, b"k1", b"3")]
        with pytest.raises(InvalidArgumentError, match="more than once"):
            plain_store.write_batch(batch)
        assert list(plain_store.scan(a)) == []
        assert list(plain_store.scan(b)) == []
        # the same key in two partitions is two keys
        assert plain_store.write_batch(batch[:2]).written == 2

    def test_write_batch_validates_like_set(self, plain_store: Store, partition: bytes) -> None:
        good = Entry(partition, b"ok", b"v")
        with pytest.raises(MissingKeyError):
            plain_store.write_batch([good, (partition, b"", b"v")])
        with pytest.raises(InvalidArgumentError):
            plain_store.write_batch([good, (partition, "str", b"v")])  # type: ignore[list-item]
        assert list(plain_store.scan(partition)) == []
        res = plain_store.write_batch([(bytearray(partition), memoryview(b"k"), b"v")])
        assert res.written == 1
        assert plain_store.get(partition, b"k").value == b"v"
