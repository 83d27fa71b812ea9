"""The ``lmdb://`` store: see the package docstring for URL, layout and behaviour."""

from __future__ import annotations

import functools
import itertools
import operator
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeAlias, TypeVar

import lmdb

from lakekv.errors import (
    ConfigurationError,
    LakekvError,
    StoreClosedError,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
)
from lakekv.kv.drivers.lmdb.env import SYNC_MODES, SharedEnv, acquire_env, release_env
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

T = TypeVar("T")
Txn: TypeAlias = "lmdb.Transaction[bytes]"

ID_SIZE: Final = 8
LMDB_MAX_KEY: Final = 511
"""LMDB's compiled-in key limit (``mdb_env_get_maxkeysize``)."""
MAX_KEY_SIZE: Final = LMDB_MAX_KEY - ID_SIZE
MAX_PARTITION_SIZE: Final = LMDB_MAX_KEY
MAX_DBS: Final = 500
_IDENT = re.compile(r"^[A-Za-z0-9_.$-]{1,128}$")
_strip_id = operator.itemgetter(slice(ID_SIZE, None))
_first = operator.itemgetter(0)
_second = operator.itemgetter(1)
_value = operator.itemgetter(2)
_partition = operator.itemgetter(0)
_tuple_new = tuple.__new__


def _get_in(
    names: lmdb._Database, data: lmdb._Database, partition: bytes, key: bytes, txn: Txn
) -> bytes | None:
    pid = txn.get(partition, db=names)
    return None if pid is None else txn.get(pid + key, db=data)


def _names_page(
    names: lmdb._Database, start: bytes, inclusive: bool, limit: int, txn: Txn
) -> list[bytes]:
    """Up to ``limit`` partition names from ``start``, in order."""
    cur = txn.cursor(db=names)
    if not cur.set_range(start):
        return []
    it = cur.iternext(keys=True, values=False)
    if not inclusive and cur.key() == start:
        next(it)
    return list(itertools.islice(it, limit))


def _translate(path: Path, exc: BaseException, table: str | None = None) -> LakekvError:
    """An LMDB exception as a lakekv error: resource trouble is retryable, the rest is not."""
    where = f"lmdb environment {path}" + (f", table {table}" if table else "")
    if isinstance(exc, lmdb.DiskError | lmdb.LockError | lmdb.ReadersFullError):
        return StoreUnavailableError(f"{where}: {exc}")
    return StoreError(f"{where}: {exc}")


_Hot = tuple[SharedEnv, list[None], Callable[[], Txn], lmdb._Database, lmdb._Database]


@dataclass(frozen=True)
class LMDBSettings:
    """What an ``lmdb://`` URL says, besides paging (see the module docstring)."""

    path: Path
    table: str
    map_size: int
    synchronous: str


class LMDBStore(Store):
    """The LMDB driver; see the module docstring for URL, layout and behaviour."""

    scheme = "lmdb"
    capabilities = Capabilities(
        list_partitions=True,
        native_write_batch=True,
        persistent=True,
        shared_between_processes=True,
        max_partition_size=MAX_PARTITION_SIZE,
        max_key_size=MAX_KEY_SIZE,
        concurrent_writes=False,  # one write transaction at a time
    )
    driver_errors = (lmdb.Error,)

    default_paging = ScanPaging(page_size=1000, page_cap=10000)

    _env: lmdb.Environment
    _begin: Callable[[], Txn]
    _active: list[None]
    _data: lmdb._Database
    _names: lmdb._Database

    @classmethod
    def parse_settings(
        cls, url: StoreURL, params: ParamReader, options: OpenOptions
    ) -> LMDBSettings:
        table = params.take_str("table", "kv")
        if not _IDENT.match(table):
            raise ConfigurationError(
                f"{url}: table must be 1-128 letters, digits or '_.$-', not {table!r}"
            )
        map_size = params.take_int("map_size", 64 << 20, minimum=1 << 20)
        sync = params.take_str("synchronous", "normal").lower()
        if sync not in SYNC_MODES:
            raise ConfigurationError(f"{url}: synchronous must be one of {', '.join(SYNC_MODES)}")
        options.take_credentials(url, ())
        if url.host or url.username or url.port:
            raise ConfigurationError(
                f"{url}: an lmdb URL has no host; write lmdb:///relative/dir or "
                "lmdb:////absolute/dir"
            )
        raw = url.path[1:] if url.path.startswith("/") else url.path
        if not raw:
            raise ConfigurationError(f"{url}: give a directory path (lmdb:///path/to/dir)")
        return LMDBSettings(Path(raw), table, map_size, sync)

    def __init__(
        self,
        url: StoreURL,
        paging: ScanPaging,
        options: OpenOptions,
        settings: LMDBSettings,
    ) -> None:
        super().__init__(url, paging, options)
        self.path = settings.path
        self.table = settings.table
        self._map_size = settings.map_size
        self._sync = settings.synchronous
        self._shared: SharedEnv | None = None
        self._hot: _Hot | None = None
        """What ``_get`` needs, in one attribute (each attribute read costs 3 % of a get)."""

    def _open(self) -> None:
        """Share (or open) the environment, then open the table's two databases (creating
        them if allowed)."""
        path, table = self.path, self.table
        try:
            shared = acquire_env(path, self._map_size, self._sync, self.options.may_create)
        except OSError as exc:
            raise StoreUnavailableError(f"cannot open lmdb environment {path}: {exc}") from exc
        except lmdb.Error as exc:
            raise _translate(path, exc) from exc
        self._shared = shared
        self._env = shared.env
        self._begin = shared.env.begin
        self._active = shared.active
        create = self.options.may_create
        try:
            data = shared.db(table.encode(), create=create)
            names = shared.db(f"{table}:partitions".encode(), create=create)
        except lmdb.Error as exc:
            raise _translate(path, exc) from exc
        if data is None or names is None:
            raise StoreNotFoundError(f"lmdb environment {path} has no table {table!r}")
        self._data = data
        self._names = names
        self._hot = (shared, shared.active, shared.env.begin, names, data)

    def _translate_error(self, exc: BaseException) -> LakekvError:
        return _translate(self.path, exc, self.table)

    def _identity(self) -> str:
        """The device and inode of the directory's ``data.mdb`` (every path to it is one
        store; a directory created again is another), else the resolved path."""
        try:
            st = os.stat(os.path.join(self.path, "data.mdb"))
        except OSError:
            return f"lmdb://{os.path.realpath(self.path)}?table={self.table}"
        return f"lmdb://dev-{st.st_dev}/ino-{st.st_ino}?table={self.table}"

    def _incarnation(self) -> str | None:
        try:
            return f"ino-{os.stat(os.path.join(self.path, 'data.mdb')).st_ino}"
        except OSError:
            return None

    # --- transactions --------------------------------------------------------------------

    def _read(self, fn: Callable[[Txn], T]) -> T:
        """Run ``fn`` in a read transaction (adopting a map another process grew)."""
        while True:
            shared = self._live()
            seen = shared.map_size
            shared.enter()
            try:
                with self._env.begin() as txn:
                    return fn(txn)
            except lmdb.MapResizedError:
                pass
            finally:
                self._active.pop()
            shared.resize(seen, grow=False)

    def _write(self, fn: Callable[[Txn], T]) -> T:
        """Run ``fn`` in a write transaction; if the map is full, grow it and run it again."""
        while True:
            shared = self._live()
            seen = shared.map_size
            shared.enter()
            try:
                with self._env.begin(write=True) as txn:
                    return fn(txn)
            except lmdb.MapFullError:
                grow = True
            except lmdb.MapResizedError:
                grow = False
            finally:
                self._active.pop()
            shared.resize(seen, grow=grow)

    def _live(self) -> SharedEnv:
        shared = self._shared
        if shared is None:
            raise StoreClosedError(f"store {self._url} is closed")
        return shared

    def _pid(self, txn: Txn, partition: bytes) -> bytes:
        """The partition's id, allocating one (after the largest in use) if it has none."""
        pid = txn.get(partition, db=self._names)
        if pid is not None:
            return pid
        cur = txn.cursor(db=self._data)
        last = int.from_bytes(cur.key()[:ID_SIZE]) if cur.last() else 0
        pid = (last + 1).to_bytes(ID_SIZE)
        txn.put(partition, pid, db=self._names)
        return pid

    # --- the contract ----------------------------------------------------------------------

    def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        # The hot path, written out: _read() with its retry costs twice the lookup itself, and
        # py-lmdb's transaction context manager a fifth of it (begin and abort instead; a read
        # transaction is only ended, abort or commit alike).
        hot = self._hot
        if hot is not None:
            shared, active, begin, names, data = hot
            active.append(None)  # see SharedEnv: counted active before resizing is checked
            try:
                if not shared.resizing:
                    txn = begin()
                    try:
                        pid = txn.get(partition, None, names)  # positional: keywords cost
                        value = None if pid is None else txn.get(pid + key, None, data)
                    finally:  # a third of a get
                        txn.abort()
                    if value is None:
                        return None
                    return _tuple_new(ValueWithPredicate, (value, value))  # no Python frame
            except lmdb.MapResizedError:
                pass
            finally:
                active.pop()
        value = self._read(functools.partial(_get_in, self._names, self._data, partition, key))
        return None if value is None else ValueWithPredicate(value, value)

    def _set(self, partition: bytes, key: bytes, value: bytes) -> None:
        self._write(lambda txn: txn.put(self._pid(txn, partition) + key, value, db=self._data))

    def _set_if(self, partition: bytes, key: bytes, value: bytes, predicate: object) -> bool:
        expected = (
            None if predicate is None or predicate is MUST_EXIST else value_predicate(predicate)
        )
        data = self._data

        def set_if(txn: Txn) -> bool:
            pid = txn.get(partition, db=self._names)
            current = None if pid is None else txn.get(pid + key, db=data)
            if predicate is None:
                if current is not None:
                    return False
            elif current is None or (expected is not None and current != expected):
                return False
            txn.put(self._pid(txn, partition) + key, value, db=data)
            return True

        return self._write(set_if)

    def _delete(self, partition: bytes, key: bytes) -> None:
        names, data = self._names, self._data

        def delete(txn: Txn) -> None:
            pid = txn.get(partition, db=names)
            if pid is None or not txn.delete(pid + key, db=data):
                return
            cur = txn.cursor(db=data)
            if not (cur.set_range(pid) and cur.key().startswith(pid)):
                txn.delete(partition, db=names)  # emptied: no longer listed

        self._write(delete)

    def _scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        names, data = self._names, self._data

        def page(txn: Txn) -> tuple[list[tuple[bytes, bytes]], bool]:
            pid = txn.get(partition, None, names)  # positional: py-lmdb parses keywords slowly
            if pid is None:
                return [], False
            cur = txn.cursor(data)
            if not cur.set_range(pid + start if inclusive else pid + start + b"\x00"):
                return [], False
            rows = list(itertools.islice(cur.iternext(), limit))
            full = len(rows) == limit
            if not rows[-1][0].startswith(pid):  # ran past the partition: cut there
                end = (int.from_bytes(pid) + 1).to_bytes(ID_SIZE)
                lo, hi = 0, len(rows)
                while lo < hi:
                    mid = (lo + hi) // 2
                    if rows[mid][0] < end:
                        lo = mid + 1
                    else:
                        hi = mid
                rows, full = rows[:lo], False
            keys = map(_strip_id, map(_first, rows))
            return list(zip(keys, map(_second, rows), strict=True)), full

        return self._read(page)

    def _list_partitions(self) -> Iterator[bytes]:
        names = self._names
        after, inclusive = b"", True
        size = self.paging.page_size
        while True:
            found = self._read(functools.partial(_names_page, names, after, inclusive, size))
            yield from found
            if len(found) < size:
                return
            after, inclusive = found[-1], False
            size = min(size * 2, self.paging.page_cap)

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        """One write transaction; per partition, one ``putmulti`` that creates the new keys
        (in C), and only if some existed, one ``getmulti`` to classify the rest."""
        # Runs of one partition (a copy's batches are whole runs), split without Python code
        # per entry; a partition met again later is simply another run.
        runs = [(p, list(run)) for p, run in itertools.groupby(entries, _partition)]
        return self._write(functools.partial(self._batch_in, runs, on_conflict))

    def _batch_in(
        self, runs: list[tuple[bytes, list[Entry]]], on_conflict: OnConflict, txn: Txn
    ) -> BatchResult:
        result = BatchResult()
        cur = txn.cursor(db=self._data)
        for partition, group in runs:
            pid = txn.get(partition, db=self._names)
            # A new partition's id follows the last key in use; if its keys come in order
            # (a copy's do), they are appended without searching the tree.
            append = pid is None
            pid = pid or self._pid(txn, partition)
            full = [pid + e[1] for e in group]
            append = append and all(map(operator.lt, full, itertools.islice(full, 1, None)))
            items = zip(full, map(_value, group), strict=True)
            _, added = cur.putmulti(items, dupdata=False, overwrite=False, append=append)
            if added == len(group):
                result.written += added
                continue
            stored = dict(cur.getmulti(full))
            classify = result.classify
            for entry, key in zip(group, full, strict=True):
                if classify(entry, stored[key], on_conflict):
                    cur.put(key, entry[2])
            result.inserted_first(added)
        return result

    # --- lifecycle -------------------------------------------------------------------------

    def _destroy(self) -> None:
        shared = self._live()

        def drop(txn: Txn) -> None:
            txn.drop(self._data, delete=True)
            txn.drop(self._names, delete=True)

        self._write(drop)
        with shared.lock:
            shared.dbs.pop(self.table.encode(), None)
            shared.dbs.pop(f"{self.table}:partitions".encode(), None)

    def _close(self) -> None:
        self._hot = None
        shared, self._shared = self._shared, None
        if shared is not None:
            release_env(shared)
