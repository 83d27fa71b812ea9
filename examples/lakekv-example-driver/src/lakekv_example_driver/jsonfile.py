"""``jsonfile:///path/to/store.json`` — a whole store in one JSON file.

A small store for configuration, demos and tests, and the model of an out-of-tree driver. It
needs nothing outside the standard library. The data lives in memory (per partition, a sorted
key list searched with ``bisect`` and a dict of values) and every write rewrites the whole
file: a temporary file in the same directory (mode 0600), flushed to disk, renamed over the
old one. The file always holds either the old or the new document, never a mix; a write costs
time in proportion to the whole store, so keep it small.

URL
    ``jsonfile:///relative/path.json`` or ``jsonfile:////absolute/path.json`` (as SQLite's).
    Parameters: ``table`` (default ``kv``: one file holds several independent tables),
    ``fsync`` (default ``true``: flush before the rename; ``false`` survives a crash of the
    process but not of the machine), ``page_size``/``page_cap`` (default 1000/1000). Any
    other parameter is a ConfigurationError.

File
    ``{"format": "lakekv-example-jsonfile", "version": 1, "tables": {TABLE: {PARTITION:
    {KEY: VALUE}}}}`` with partitions, keys and values in standard base64: bytes are bytes.

Concurrency
    Every store opened on one file in this process shares one in-memory copy and one lock, so
    threads see each other's writes at once and ``set_if`` is atomic among them. Other
    processes are not coordinated (``shared_between_processes=False``): open a file from one
    process at a time.

Opening
    With ``create`` (the default) a missing file and table are created and written at once.
    With ``create=False`` or ``read_only`` a missing file or table is StoreNotFoundError
    naming it, and nothing is written. The identity is the resolved path (symlinks and
    relative paths followed) and the table. ``destroy()`` removes the table, and the file
    with its last table.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import json
import os
import re
import tempfile
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lakekv.errors import (
    ConfigurationError,
    LakekvError,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
)
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

_FORMAT = "lakekv-example-jsonfile"
_VERSION = 1
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class _Table:
    """One table: partition → (sorted keys, key → value). Empty partitions are dropped."""

    def __init__(self) -> None:
        self.partitions: dict[bytes, tuple[list[bytes], dict[bytes, bytes]]] = {}

    def get(self, partition: bytes, key: bytes) -> bytes | None:
        part = self.partitions.get(partition)
        return None if part is None else part[1].get(key)

    def put(self, partition: bytes, key: bytes, value: bytes) -> None:
        keys, values = self.partitions.setdefault(partition, ([], {}))
        if key not in values:
            keys.insert(bisect_left(keys, key), key)
        values[key] = value

    def remove(self, partition: bytes, key: bytes) -> bool:
        """Delete ``key``; whether it was there."""
        part = self.partitions.get(partition)
        if part is None or key not in part[1]:
            return False
        keys, values = part
        del values[key]
        del keys[bisect_left(keys, key)]
        if not values:
            del self.partitions[partition]
        return True

    def to_json(self) -> dict[str, dict[str, str]]:
        b64 = _b64encode
        return {
            b64(p): {b64(k): b64(values[k]) for k in keys}
            for p, (keys, values) in self.partitions.items()
        }

    @classmethod
    def from_json(cls, data: dict[str, dict[str, str]]) -> _Table:
        table = cls()
        for p, entries in data.items():
            for k, v in entries.items():
                table.put(_b64decode(p), _b64decode(k), _b64decode(v))
        return table


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


class _File:
    """The in-memory copy of one file, shared by every store open on it in this process.

    ``lock`` guards ``tables``; every change is followed by :meth:`commit` under the lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.users = 0
        self.tables: dict[str, _Table] = self._read() if path.exists() else {}

    def _read(self) -> dict[str, _Table]:
        """The tables the file holds; StoreError if it is not a store of this format."""
        with open(self.path, "rb") as f:
            raw = f.read()
        try:
            doc = json.loads(raw)
            if doc.get("format") != _FORMAT or doc.get("version") != _VERSION:
                raise ValueError(f"expected format {_FORMAT!r} version {_VERSION}")
            return {name: _Table.from_json(t) for name, t in doc["tables"].items()}
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise StoreError(f"jsonfile {self.path} is not a jsonfile store: {exc}") from exc

    def commit(self, fsync: bool) -> None:
        """Write every table to the file atomically. If that fails, the in-memory copy goes
        back to what the file holds, so memory never shows data the file does not have."""
        doc = {
            "format": _FORMAT,
            "version": _VERSION,
            "tables": {name: t.to_json() for name, t in sorted(self.tables.items())},
        }
        tmp = ""
        try:
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            with os.fdopen(fd, "w", encoding="ascii") as f:
                json.dump(doc, f, separators=(",", ":"))
                f.flush()
                if fsync:
                    os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                if tmp:
                    os.unlink(tmp)
            with contextlib.suppress(OSError, LakekvError):
                self.tables = self._read() if self.path.exists() else {}
            raise


_files: dict[Path, _File] = {}
_files_lock = threading.Lock()


@dataclass(frozen=True)
class JSONFileSettings:
    """What the URL says, parsed without any I/O (see :meth:`JSONFileStore.parse_settings`)."""

    path: Path
    table: str
    fsync: bool


class JSONFileStore(Store):
    """A store in one JSON file; see the module docstring."""

    scheme = "jsonfile"
    capabilities = Capabilities(
        list_partitions=True,
        native_write_batch=True,  # one file write per batch, not one per entry
        persistent=True,
        shared_between_processes=False,
        concurrent_writes=False,  # one lock per file: parallel writers only queue
        snapshot_reads=False,
        value_predicates=True,
    )
    driver_errors = (OSError,)

    @classmethod
    def parse_settings(
        cls, url: StoreURL, params: ParamReader, options: OpenOptions
    ) -> JSONFileSettings:
        """Step 1 of the life cycle (``Store.from_url``): take every query parameter this
        driver knows (the base class reads ``page_size``/``page_cap`` and refuses the rest),
        refuse credentials (this driver takes none). Pure: no I/O."""
        table = params.take_str("table", "kv")
        if not _TABLE_NAME.match(table):
            raise ConfigurationError(f"{url}: table {table!r} is not 1-64 of A-Z a-z 0-9 _ . -")
        fsync = params.take_bool("fsync", True)
        options.take_credentials(url, ())
        if url.host or url.username or url.port:
            raise ConfigurationError(
                f"{url}: a jsonfile URL has no host; write jsonfile:///relative.json or "
                "jsonfile:////absolute/path.json"
            )
        raw = url.path[1:] if url.path.startswith("/") else url.path
        if not raw or raw.endswith("/"):
            raise ConfigurationError(f"{url}: give a file path (jsonfile:///path.json)")
        return JSONFileSettings(Path(raw), table, fsync)

    def __init__(
        self, url: StoreURL, paging: ScanPaging, options: OpenOptions, settings: JSONFileSettings
    ) -> None:
        """Step 3: remember the settings. Pure: no I/O (that is :meth:`_open`)."""
        super().__init__(url, paging, options)
        self.path = Path(os.path.realpath(settings.path))
        self._table_name = settings.table
        self._fsync = settings.fsync
        self._file: _File | None = None

    def _open(self) -> None:
        """Step 4, the I/O: join the shared copy of the file (reading it if nobody has),
        creating the file and the table if allowed; StoreNotFoundError naming what is
        missing otherwise. On any error the base class calls :meth:`_close` and translates."""
        create = self.options.may_create
        with _files_lock:
            shared = _files.get(self.path)
            if shared is None:
                if not create and not self.path.is_file():
                    raise StoreNotFoundError(f"jsonfile {self.path} does not exist")
                shared = _files[self.path] = _File(self.path)
            shared.users += 1
            self._file = shared
        with shared.lock:
            if self._table_name not in shared.tables:
                if not create:
                    raise StoreNotFoundError(
                        f"jsonfile {self.path} has no table {self._table_name!r}"
                    )
                shared.tables[self._table_name] = _Table()
                shared.commit(self._fsync)

    def _shared(self) -> _File:
        assert self._file is not None, "opened by from_url"
        return self._file

    def _table(self) -> _Table:
        """This store's table (call under the lock); empty if another store destroyed it."""
        return self._shared().tables.setdefault(self._table_name, _Table())

    def _identity(self) -> str:
        return f"jsonfile://{self.path}?table={self._table_name}"

    def _translate_error(self, exc: BaseException) -> LakekvError:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            return StoreUnavailableError(f"jsonfile {self.path}: {exc.strerror}")
        return StoreError(f"jsonfile {self.path}: {exc}")

    # --- reads -------------------------------------------------------------------------------

    def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        with self._shared().lock:
            value = self._table().get(partition, key)
        # The predicate is the value: set_if compares values (A → B → A passes).
        return None if value is None else ValueWithPredicate(value, value)

    def _scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        with self._shared().lock:
            part = self._table().partitions.get(partition)
            if part is None:
                return [], False
            keys, values = part
            i = (bisect_left if inclusive else bisect_right)(keys, start)
            return [(k, values[k]) for k in keys[i : i + limit]], i + limit < len(keys)

    def _list_partitions(self) -> Iterator[bytes]:
        with self._shared().lock:
            names = sorted(self._table().partitions)
        yield from names

    # --- writes: change the table, then commit, under one lock ----------------------------

    def _set(self, partition: bytes, key: bytes, value: bytes) -> None:
        shared = self._shared()
        with shared.lock:
            self._table().put(partition, key, value)
            shared.commit(self._fsync)

    def _set_if(self, partition: bytes, key: bytes, value: bytes, predicate: object) -> bool:
        expected = (
            None if predicate is None or predicate is MUST_EXIST else value_predicate(predicate)
        )
        shared = self._shared()
        with shared.lock:
            current = self._table().get(partition, key)
            if predicate is None:
                ok = current is None
            elif predicate is MUST_EXIST:
                ok = current is not None
            else:
                ok = current == expected
            if ok:
                self._table().put(partition, key, value)
                shared.commit(self._fsync)
            return ok

    def _delete(self, partition: bytes, key: bytes) -> None:
        shared = self._shared()
        with shared.lock:
            if self._table().remove(partition, key):
                shared.commit(self._fsync)

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        """The bulk path: classify every entry by the one statement of the rules
        (:meth:`BatchResult.classify`), apply those to write, and commit once."""
        result = BatchResult()
        shared = self._shared()
        with shared.lock:
            table = self._table()
            for entry in entries:
                if result.classify(entry, table.get(entry.partition, entry.key), on_conflict):
                    table.put(*entry)
            if result.written:
                shared.commit(self._fsync)
        return result

    def _destroy(self) -> None:
        shared = self._shared()
        with shared.lock:
            shared.tables.pop(self._table_name, None)
            if shared.tables:
                shared.commit(self._fsync)
            elif self.path.exists():
                self.path.unlink()

    def _close(self) -> None:
        shared, self._file = self._file, None
        if shared is None:
            return
        with _files_lock:
            shared.users -= 1
            if shared.users == 0:
                del _files[self.path]
