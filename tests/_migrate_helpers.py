"""Helpers shared by the migration tests: store pairs, a capability-hiding wrapper, data."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Self

from lakekv.errors import LakekvError
from lakekv.kv.registry import open_store
from lakekv.kv.store import (
    BatchResult,
    Capabilities,
    Entry,
    OnConflict,
    Store,
    ValueWithPredicate,
)
from lakekv.kv.url import StoreURL
from lakekv.testing import fresh_url, materialize, require_available

BINARY_ENTRIES = [
    Entry(b"bin\x00\xff", b"\x00", b""),
    Entry(b"bin\x00\xff", b"\xff\xfe", b"\x00\x01\x02"),
    Entry(b"bin\x00\xff", b"k\x00k", b"value"),
    Entry(b"graveler", "repos/ünïcode".encode(), b""),
]
"""Entries no text format could hold: NUL and invalid UTF-8 in names, empty values."""


class StoreMaker:
    """Opens empty, isolated stores of a backend and destroys them afterwards."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.opened: list[Store] = []

    def fresh(self, base: str, name: str = "") -> Store:
        url = materialize(base, self.tmp)
        require_available(url)
        store = open_store(fresh_url(url, name))
        self.opened.append(store)
        return store

    def cleanup(self) -> None:
        for store in self.opened:
            try:
                if not store.closed:
                    store.destroy()
            except LakekvError:
                store.close()


class HiddenPartitions(Store):
    """Wraps a store and hides ``list_partitions`` (and the bulk path), to force the walk."""

    scheme = "hidden"
    capabilities = Capabilities(list_partitions=False)

    def __init__(self, inner: Store, url: StoreURL | None = None) -> None:
        super().__init__(url or inner.url, inner.paging)
        self.inner = inner

    @classmethod
    def from_url(cls, url: StoreURL) -> Self:
        raise NotImplementedError

    def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        return self.inner._get(partition, key)

    def _set(self, partition: bytes, key: bytes, value: bytes) -> None:
        self.inner._set(partition, key, value)

    def _set_if(self, partition: bytes, key: bytes, value: bytes, predicate: object) -> bool:
        return self.inner._set_if(partition, key, value, predicate)

    def _delete(self, partition: bytes, key: bytes) -> None:
        self.inner._delete(partition, key)

    def _scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        return self.inner._scan_page(partition, start, inclusive, limit)

    def _incarnation(self) -> str | None:
        return self.inner.incarnation()  # the data it reads and writes is the inner store's

    def _row_version(self, partition: bytes, key: bytes) -> str | None:
        return self.inner.row_version(partition, key)

    def _close(self) -> None:
        pass


class FailingWrites(HiddenPartitions):
    """Lists partitions like the inner store, but raises after ``ok_batches`` batches."""

    scheme = "failing"
    capabilities = Capabilities(list_partitions=True)

    def __init__(self, inner: Store, ok_batches: int) -> None:
        super().__init__(inner)
        self.ok_batches = ok_batches

    def _identity(self) -> str:
        return self.inner.identity()  # the data it writes is the inner store's

    def _list_partitions(self) -> Iterator[bytes]:
        return self.inner._list_partitions()

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        if self.ok_batches <= 0:
            raise LakekvError("simulated crash")
        self.ok_batches -= 1
        return self.inner._write_batch(entries, on_conflict)


def all_entries(store: Store) -> list[Entry]:
    out: list[Entry] = []
    for p in store.list_partitions():
        out.extend(store.scan(p))
    return out
