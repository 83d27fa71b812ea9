"""Helpers shared by the migration tests: store pairs, a capability-hiding wrapper, data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lakekv.errors import LakekvError
from lakekv.kv.registry import open_store
from lakekv.kv.store import (
    BatchResult,
    Capabilities,
    Entry,
    OnConflict,
    Store,
)
from lakekv.kv.url import StoreURL
from lakekv.kv.wrappers import StoreWrapper
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


_NO_LISTING = Capabilities(list_partitions=False)


class HiddenPartitions(StoreWrapper):
    """Wraps a store and hides ``list_partitions`` (and the bulk path), to force the walk.

    Closing it leaves the inner store open."""

    def __init__(
        self,
        inner: Store,
        url: StoreURL | None = None,
        *,
        scheme: str = "hidden",
        capabilities: Capabilities = _NO_LISTING,
    ) -> None:
        super().__init__(inner, url=url, scheme=scheme, capabilities=capabilities)

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        return Store._write_batch(self, entries, on_conflict)  # the per-entry fallback

    def _incarnation(self) -> str | None:
        return self.inner.incarnation()  # the data it reads and writes is the inner store's

    def _row_version(self, partition: bytes, key: bytes) -> str | None:
        return self.inner.row_version(partition, key)

    def _close(self) -> None:
        pass


class FailingWrites(HiddenPartitions):
    """Lists partitions like the inner store, but raises after ``ok_batches`` batches."""

    def __init__(self, inner: Store, ok_batches: int) -> None:
        super().__init__(inner, scheme="failing", capabilities=Capabilities(list_partitions=True))
        self.ok_batches = ok_batches

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        if self.ok_batches <= 0:
            raise LakekvError("simulated crash")
        self.ok_batches -= 1
        return StoreWrapper._write_batch(self, entries, on_conflict)


def all_entries(store: Store) -> list[Entry]:
    out: list[Entry] = []
    for p in store.list_partitions():
        out.extend(store.scan(p))
    return out
