"""Snapshots: reads at one point in time, on connections sharing one exported snapshot."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolClosed

from lakekv.errors import StoreClosedError
from lakekv.kv.contract import SnapshotReads
from lakekv.kv.drivers.postgres.pool import Connection, fetchall, fetchone
from lakekv.kv.store import PartitionDigest, RangeDigest, RawChunk, ValueWithPredicate

if TYPE_CHECKING:
    from lakekv.kv.drivers.postgres.store import PostgresStore


class Snapshot(SnapshotReads):
    """Connections sharing one exported snapshot, each in its own read-only transaction.

    The first connection's transaction exports the snapshot and stays open until
    :meth:`close`, which keeps the snapshot importable; a statement borrows an idle snapshot
    connection, or opens one more (importing the snapshot), so concurrent readers never wait
    for each other. All of them are rolled back and given back to the pool at the end.
    """

    def __init__(self, store: PostgresStore, pool: ConnectionPool[Connection]) -> None:
        self._store = store
        self._pool = pool
        self._lock = threading.Lock()
        self._idle: list[Connection] = []
        self._all: list[Connection] = []
        self._closed = False
        self.snapshot_id = ""
        conn = self._begin()
        try:
            row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        except BaseException:
            self.close()
            raise
        assert row is not None
        self.snapshot_id = str(row[0])
        self._idle.append(conn)

    def _begin(self) -> Connection:
        conn = self._pool.getconn()
        with self._lock:
            self._all.append(conn)
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        if self.snapshot_id:
            conn.execute(
                sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(self.snapshot_id))
            )
        return conn

    def execute(
        self,
        query: str,
        params: Sequence[object] | Mapping[str, object],
        fetch: Callable[..., Any],
    ) -> Any:
        if self._closed:
            raise StoreClosedError(f"the snapshot of {self._store.url} has ended")
        try:
            conn = self._idle.pop()
        except IndexError:
            conn = self._begin()
        try:
            cur = conn.reusable_cursor()
            cur.execute(query, params)
            return fetch(cur)
        finally:
            self._idle.append(conn)

    def get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        row = self.execute(self._store._q_get, (partition, key), fetchone)
        if row is None:
            return None
        value: bytes = row[0]
        return ValueWithPredicate(value, value)

    def scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        store = self._store
        query = store._q_page_ge if inclusive else store._q_page_gt
        rows: list[tuple[bytes, bytes]] = self.execute(query, (partition, start, limit), fetchall)
        return rows, len(rows) == limit

    def list_partitions(self) -> Iterator[bytes]:
        return self._store._list_partitions(self.execute)

    def get_many(self, partition: bytes, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        return self._store._get_many(partition, keys, self.execute)

    def digest_buckets(self, partition: bytes, bits: int) -> list[tuple[int, int, int]]:
        return self._store._digest_buckets(partition, bits, self.execute)

    def digest_rows(
        self, partition: bytes, bits: int, buckets: list[int]
    ) -> list[tuple[bytes, int]]:
        return self._store._digest_rows(partition, bits, buckets, self.execute)

    def read_raw(self, partition: bytes, start: bytes, limit: int) -> RawChunk:
        return self._store._read_raw(partition, start, limit, self.execute)

    def digest_partition(self, partition: bytes) -> PartitionDigest:
        return self._store._digest_partition(partition, self.execute)

    def digest_partitions(self) -> dict[bytes, PartitionDigest]:
        return self._store._digest_partitions(self.execute)

    def digest_range(self, partition: bytes, start: bytes, limit: int) -> RangeDigest:
        return self._store._digest_range(partition, start, limit, self.execute)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, self._all, self._idle = self._all, [], []
        for conn in conns:
            try:
                if not conn.lost():
                    conn.execute("ROLLBACK")
            except psycopg.Error:
                conn.close()
            try:
                self._pool.putconn(conn)
            except PoolClosed:
                conn.close()
