"""``sqlite:///path/to.db`` — the embedded default (standard library ``sqlite3``).

URL: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (three slashes, then the
path as written; a fourth slash makes it absolute). Parameters: ``table`` (default ``kv``),
``busy_timeout`` in ms (default 30000), ``synchronous`` (``normal`` default, ``full``, ``off``),
``page_size``/``page_cap`` for scans (default 1000/10000).

Layout: one ``WITHOUT ROWID`` table ``(partition BLOB, key BLOB, value BLOB)`` keyed by
``(partition, key)`` — BLOBs compare bytewise, so the primary key order is the scan order. The
database is in WAL mode: readers never block the writer. Every thread gets its own connection
in autocommit mode; ``set_if`` is a single conditional statement, atomic across threads and
processes. Scans are keyset queries, each page its own statement: nothing is held between pages.

Opened with ``create=False`` the file and the table must exist (StoreNotFoundError naming the
missing one; the file is opened in SQLite's ``mode=rw`` and nothing is created); with
``read_only=True`` the file is opened in ``mode=ro`` and the journal mode is left as it is.
``close()`` interrupts statements running on other threads (``sqlite3_interrupt``) and closes
the connections only after they returned. The identity is the resolved path (symlinks and
relative paths followed) and the table.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import quote

from lakekv.errors import (
    ConfigurationError,
    LakekvError,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
)
from lakekv.kv.contract import SnapshotReads
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

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SYNC_MODES = {"off": "OFF", "normal": "NORMAL", "full": "FULL"}
_IN_CHUNK = 400  # keys per IN (...) lookup; well under SQLite's 32766 variable limit


@dataclass(frozen=True)
class SQLiteSettings:
    """What a ``sqlite://`` URL says (see the module docstring)."""

    path: Path
    table: str
    busy_ms: int
    synchronous: str


class SQLiteStore(Store):
    scheme = "sqlite"
    capabilities = Capabilities(
        list_partitions=True, native_write_batch=True, snapshot_reads=True, concurrent_writes=False
    )
    driver_errors = (sqlite3.Error,)

    default_paging = ScanPaging(page_size=1000, page_cap=10000)

    @classmethod
    def parse_settings(
        cls, url: StoreURL, params: ParamReader, options: OpenOptions
    ) -> SQLiteSettings:
        table = params.take_str("table", "kv")
        if not _IDENT.match(table):
            raise ConfigurationError(f"{url}: table {table!r} is not a plain SQL identifier")
        if table.lower() == _META:
            raise ConfigurationError(f"{url}: table {_META!r} is lakekv's own; choose another")
        busy_ms = params.take_int("busy_timeout", 30000, minimum=0)
        sync = params.take_str("synchronous", "normal").lower()
        if sync not in _SYNC_MODES:
            raise ConfigurationError(f"{url}: synchronous must be one of {', '.join(_SYNC_MODES)}")
        options.take_credentials(url, ())
        if url.host or url.username or url.port:
            raise ConfigurationError(
                f"{url}: a sqlite URL has no host; write sqlite:///relative.db or "
                "sqlite:////absolute/path.db"
            )
        raw = url.path[1:] if url.path.startswith("/") else url.path
        if not raw or raw == ":memory:":
            raise ConfigurationError(
                f"{url}: give a database file path (sqlite:///path.db); for a store in memory "
                "use memory://"
            )
        return SQLiteSettings(Path(raw), table, busy_ms, _SYNC_MODES[sync])

    def __init__(
        self,
        url: StoreURL,
        paging: ScanPaging,
        options: OpenOptions,
        settings: SQLiteSettings,
    ) -> None:
        super().__init__(url, paging, options)
        self.path = settings.path
        table = self._table = settings.table
        self._busy_ms = settings.busy_ms
        self._sync = settings.synchronous
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        t = table
        self._q_get = f"SELECT value FROM {t} WHERE partition = ? AND key = ?"
        self._q_set = (
            f"INSERT INTO {t} (partition, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (partition, key) DO UPDATE SET value = excluded.value"
        )
        self._q_create = (
            f"INSERT INTO {t} (partition, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (partition, key) DO NOTHING"
        )
        self._q_update = f"UPDATE {t} SET value = ? WHERE partition = ? AND key = ?"
        self._q_update_if = (
            f"UPDATE {t} SET value = ? WHERE partition = ? AND key = ? AND value = ?"
        )
        self._q_delete = f"DELETE FROM {t} WHERE partition = ? AND key = ?"
        self._q_page_ge = (
            f"SELECT key, value FROM {t} WHERE partition = ? AND key >= ? ORDER BY key LIMIT ?"
        )
        self._q_page_gt = (
            f"SELECT key, value FROM {t} WHERE partition = ? AND key > ? ORDER BY key LIMIT ?"
        )
        self._q_next_partition = (
            f"SELECT partition FROM {t} WHERE partition > ? ORDER BY partition LIMIT 1"
        )
        self._q_upsert_changed = (
            f"INSERT INTO {t} (partition, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (partition, key) DO UPDATE SET value = excluded.value "
            "WHERE value IS NOT excluded.value"
        )

    def _open(self) -> None:
        """Open this thread's connection; create the table, or (without create) check that
        the file and the table exist."""
        path, table = self.path, self._table
        if not self.options.may_create and not path.is_file():
            raise StoreNotFoundError(f"sqlite database {path} does not exist")
        if self.options.may_create:
            # Created private (it may hold lakeFS credentials); SQLite gives its -wal and
            # -shm files the database file's permissions.
            with contextlib.suppress(OSError):  # there already, or sqlite3 says what is wrong
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        conn = self._conn()
        if self.options.may_create:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (partition BLOB NOT NULL, "
                "key BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (partition, key)) "
                "WITHOUT ROWID"
            )
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_META} (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            conn.execute(
                f"INSERT OR IGNORE INTO {_META} VALUES ('incarnation', ?)", (uuid.uuid4().hex,)
            )
        elif not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone():
            raise StoreNotFoundError(f"sqlite database {path} has no table {table!r}")

    # --- connections ---------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        self._check_open()
        options = self.options
        if options.may_create:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=self._busy_ms / 1000,
            )
        else:  # never create the file
            mode = "ro" if options.read_only else "rw"
            conn = sqlite3.connect(
                f"file:{quote(os.path.abspath(self.path))}?mode={mode}",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=self._busy_ms / 1000,
            )
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            if not options.read_only:
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._sync}")
        except BaseException:
            conn.close()
            raise
        with self._conns_lock:
            self._conns.append(conn)
        self._local.conn = conn
        self._local.cur = conn.cursor()
        return conn

    def _cur(self) -> sqlite3.Cursor:
        """This thread's reusable cursor (every statement on it is fully read at once)."""
        try:
            cur: sqlite3.Cursor = self._local.cur
        except AttributeError:
            self._conn()
            cur = self._local.cur
        return cur

    def _translate_error(self, exc: BaseException) -> LakekvError:
        message = str(exc)
        if isinstance(exc, sqlite3.OperationalError):
            if "locked" in message or "busy" in message:
                return StoreUnavailableError(f"sqlite database {self.path} is busy: {message}")
            if "unable to open" in message:
                return StoreUnavailableError(f"cannot open sqlite database {self.path}: {message}")
            if "disk" in message or "I/O" in message:
                return StoreUnavailableError(f"sqlite database {self.path}: {message}")
        return StoreError(f"sqlite database {self.path}: {message}")

    # --- the contract ------------------------------------------------------------------------

    def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        row = self._cur().execute(self._q_get, (partition, key)).fetchone()
        if row is None:
            return None
        value = row[0]
        if type(value) is not bytes:  # not a BLOB: converted as always
            value = bytes(value)
        return ValueWithPredicate(value, value)

    def _set(self, partition: bytes, key: bytes, value: bytes) -> None:
        self._cur().execute(self._q_set, (partition, key, value))

    def _set_if(self, partition: bytes, key: bytes, value: bytes, predicate: object) -> bool:
        cur = self._cur()
        if predicate is None:
            cur.execute(self._q_create, (partition, key, value))
        elif predicate is MUST_EXIST:
            cur.execute(self._q_update, (value, partition, key))
        else:
            cur.execute(self._q_update_if, (value, partition, key, value_predicate(predicate)))
        return cur.rowcount == 1

    def _delete(self, partition: bytes, key: bytes) -> None:
        self._cur().execute(self._q_delete, (partition, key))

    def _scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        query = self._q_page_ge if inclusive else self._q_page_gt
        rows: list[tuple[bytes, bytes]] = (
            self._cur().execute(query, (partition, start, limit)).fetchall()
        )
        return rows, len(rows) == limit

    def _list_partitions(self) -> Iterator[bytes]:
        # A skip scan over the primary key: one index seek per partition.
        last = b""
        while True:
            row = self._conn().execute(self._q_next_partition, (last,)).fetchone()
            if row is None:
                return
            last = bytes(row[0])
            yield last

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = self._write_batch_in_txn(conn, entries, on_conflict)
        except BaseException:
            if conn.in_transaction:  # an interrupted statement rolls back by itself
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def _write_batch_in_txn(
        self, conn: sqlite3.Connection, entries: Sequence[Entry], on_conflict: OnConflict
    ) -> BatchResult:
        before = conn.total_changes
        if on_conflict is OnConflict.OVERWRITE:
            conn.executemany(self._q_upsert_changed, entries)
            written = conn.total_changes - before
            return BatchResult(written=written, unchanged=len(entries) - written)
        conn.executemany(self._q_create, entries)
        written = conn.total_changes - before
        if written == len(entries):
            return BatchResult(written=written)
        # Some keys existed. Inside this transaction every key is now present: classify each
        # entry against what the table holds (anything with a different value existed
        # before). The entries this batch inserted read back equal, so they are counted as
        # unchanged by the rules: move those to written.
        result = BatchResult()
        existing = self._lookup(conn, entries)
        for entry in entries:
            result.classify(entry, existing[(entry.partition, entry.key)], on_conflict)
        result.unchanged -= written
        result.written += written
        return result

    def _lookup(
        self, conn: sqlite3.Connection, entries: Sequence[Entry]
    ) -> dict[tuple[bytes, bytes], bytes]:
        found: dict[tuple[bytes, bytes], bytes] = {}
        by_partition: dict[bytes, list[bytes]] = {}
        for entry in entries:
            by_partition.setdefault(entry.partition, []).append(entry.key)
        for partition, keys in by_partition.items():
            for i in range(0, len(keys), _IN_CHUNK):
                chunk = keys[i : i + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key, value FROM {self._table} WHERE partition = ? "
                    f"AND key IN ({marks})",
                    (partition, *chunk),
                )
                for key, value in rows:
                    found[(partition, bytes(key))] = bytes(value)
        return found

    def _open_snapshot(self) -> SnapshotReads:
        """One connection holding one read transaction (WAL: writers go on meanwhile)."""
        self._check_open()
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self._busy_ms / 1000
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            conn.execute("BEGIN")
            # A WAL read transaction starts at its first read: take it now.
            conn.execute(f"SELECT 1 FROM {self._table} LIMIT 1").fetchall()
        except BaseException:
            conn.close()
            raise
        return _Snapshot(self, conn)

    def _destroy(self) -> None:
        self._conn().execute(f"DROP TABLE IF EXISTS {self._table}")

    def _identity(self) -> str:
        """The file's device and inode (every path to it, symbolic or hard link, is one
        store; a file deleted and created again is another), else its resolved path."""
        try:
            st = os.stat(self.path)
        except OSError:
            return f"sqlite://{os.path.realpath(self.path)}?table={self._table}"
        return f"sqlite://dev-{st.st_dev}/ino-{st.st_ino}?table={self._table}"

    def _incarnation(self) -> str | None:
        """A random ID written into the file when lakekv creates it (table ``lakekv_meta``):
        a file deleted and created again has another, even when it gets the same inode; a
        file from before that table existed falls back to its inode."""
        try:
            row = self._cur().execute(f"SELECT value FROM {_META} WHERE name = 'incarnation'")
            found = row.fetchone()
        except sqlite3.OperationalError:  # no such table (an older file)
            found = None
        if found is not None:
            return f"id-{found[0]}"
        try:
            return f"ino-{os.stat(self.path).st_ino}"
        except OSError:
            return None

    def _interrupt(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            conn.interrupt()  # thread-safe by design; the connection stays open

    def _close(self) -> None:
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        self._local = threading.local()


_META: Final = "lakekv_meta"
"""lakekv's own table in the file: ``incarnation`` (see ``SQLiteStore._incarnation``)."""


class _Snapshot(SnapshotReads):
    """One connection in one read transaction; threads take turns on it (a lock), since an
    SQLite transaction belongs to one connection and a connection runs one statement at a
    time. Every statement is read to the end before the lock is released."""

    def __init__(self, store: SQLiteStore, conn: sqlite3.Connection) -> None:
        self._store = store
        self._conn = conn
        self._cur = conn.cursor()  # reused: every statement is read to its end at once
        self._lock = threading.Lock()

    def get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        with self._lock:
            row = self._cur.execute(self._store._q_get, (partition, key)).fetchone()
        if row is None:
            return None
        value = bytes(row[0])
        return ValueWithPredicate(value, value)

    def scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        store = self._store
        query = store._q_page_ge if inclusive else store._q_page_gt
        with self._lock:
            rows: list[tuple[bytes, bytes]] = self._cur.execute(
                query, (partition, start, limit)
            ).fetchall()
        return rows, len(rows) == limit

    def list_partitions(self) -> Iterator[bytes]:
        last = b""
        while True:
            with self._lock:
                row = self._cur.execute(self._store._q_next_partition, (last,)).fetchone()
            if row is None:
                return
            last = bytes(row[0])
            yield last

    def close(self) -> None:
        with self._lock:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            self._conn.close()
