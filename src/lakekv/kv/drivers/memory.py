"""``memory://`` — an in-process store, for tests and scratch work.

``memory://`` opens a fresh, private store each time. ``memory://NAME`` opens the store
called NAME, shared by every ``memory://NAME`` opened in this process until the last one is
closed. The predicate is the value itself (as in lakeFS). Nothing is persisted.

Opened with ``create=False`` (or ``read_only``), ``memory://NAME`` must be open elsewhere in the
process, and ``memory://`` (always new, so always missing) is refused: StoreNotFoundError.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence

from lakekv.errors import StoreNotFoundError
from lakekv.kv.store import (
    MUST_EXIST,
    BatchResult,
    Capabilities,
    Entry,
    OnConflict,
    OpenOptions,
    ScanPaging,
    Store,
    ValueWithPredicate,
    value_predicate,
)
from lakekv.kv.url import ParamReader, StoreURL


class _Data:
    """The shared state: partition -> (sorted keys, key -> value), guarded by one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.partitions: dict[bytes, tuple[list[bytes], dict[bytes, bytes]]] = {}
        self.users = 0

    def put(self, partition: bytes, key: bytes, value: bytes) -> None:
        keys, values = self.partitions.setdefault(partition, ([], {}))
        if key not in values:
            bisect.insort(keys, key)
        values[key] = value


_named: dict[str, _Data] = {}
_named_lock = threading.Lock()


class MemoryStore(Store):
    scheme = "memory"
    capabilities = Capabilities(
        list_partitions=True,
        native_write_batch=True,
        persistent=False,
        shared_between_processes=False,
    )

    @classmethod
    def parse_settings(cls, url: StoreURL, params: ParamReader, options: OpenOptions) -> str:
        """The store's name (``""``: a private store)."""
        options.take_credentials(url, ())
        return (url.host or "") + url.path.rstrip("/")

    def __init__(
        self, url: StoreURL, paging: ScanPaging, options: OpenOptions, settings: str
    ) -> None:
        super().__init__(url, paging, options)
        self._name = settings
        self._data = _Data()

    def _open(self) -> None:
        """Join the named store (creating it, if allowed), or start a private one."""
        name, options = self._name, self.options
        if not name:
            if not options.may_create:
                raise StoreNotFoundError(
                    "memory:// is a new, empty store; name one that exists (memory://NAME)"
                )
            return
        with _named_lock:
            data = _named.get(name)
            if data is None:
                if not options.may_create:
                    raise StoreNotFoundError(f"memory store {name!r} does not exist")
                data = _named[name] = _Data()
            data.users += 1
            self._data = data

    def _identity(self) -> str:
        return f"memory://{self._name}" if self._name else f"memory://#{id(self._data):x}"

    def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        with self._data.lock:
            part = self._data.partitions.get(partition)
            value = None if part is None else part[1].get(key)
        return None if value is None else ValueWithPredicate(value, value)

    def _set(self, partition: bytes, key: bytes, value: bytes) -> None:
        with self._data.lock:
            self._data.put(partition, key, value)

    def _set_if(self, partition: bytes, key: bytes, value: bytes, predicate: object) -> bool:
        expected = (
            None if predicate is None or predicate is MUST_EXIST else value_predicate(predicate)
        )
        with self._data.lock:
            part = self._data.partitions.get(partition)
            current = None if part is None else part[1].get(key)
            if predicate is None:
                ok = current is None
            elif predicate is MUST_EXIST:
                ok = current is not None
            else:
                ok = current is not None and current == expected
            if ok:
                self._data.put(partition, key, value)
            return ok

    def _delete(self, partition: bytes, key: bytes) -> None:
        with self._data.lock:
            part = self._data.partitions.get(partition)
            if part is None or key not in part[1]:
                return
            keys, values = part
            del values[key]
            del keys[bisect.bisect_left(keys, key)]
            if not values:
                del self._data.partitions[partition]

    def _scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        with self._data.lock:
            part = self._data.partitions.get(partition)
            if part is None:
                return [], False
            keys, values = part
            find = bisect.bisect_left if inclusive else bisect.bisect_right
            i = find(keys, start)
            chosen = keys[i : i + limit]
            return [(k, values[k]) for k in chosen], i + limit < len(keys)

    def _list_partitions(self) -> Iterator[bytes]:
        with self._data.lock:
            names = sorted(self._data.partitions)
        yield from names

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        result = BatchResult()
        with self._data.lock:
            for entry in entries:
                p, k, v = entry
                part = self._data.partitions.get(p)
                current = None if part is None else part[1].get(k)
                if result.classify(entry, current, on_conflict):
                    self._data.put(p, k, v)
        return result

    def _destroy(self) -> None:
        with self._data.lock:
            self._data.partitions.clear()

    def _close(self) -> None:
        if self._name and self._data.users:  # joined the named store in _open
            with _named_lock:
                self._data.users -= 1
                if self._data.users == 0:
                    _named.pop(self._name, None)
