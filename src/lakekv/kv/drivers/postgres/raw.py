"""Raw rows (see *Raw rows* in the store contract) in PostgreSQL's binary ``COPY`` format.

A chunk is what ``COPY (SELECT partition_key, key, value … ORDER BY key) TO STDOUT (FORMAT
BINARY)`` sends: the 19-byte header, one tuple per entry, the 2-byte trailer. Writing chunks
is one ``COPY … FROM STDIN (FORMAT BINARY)`` of their tuples under one header, so a copy
between two PostgreSQL stores never decodes an entry, and two chunks of the same range are
byte-equal exactly when their entries are (``bytea`` compares and sorts bytewise).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import psycopg

from lakekv.errors import InvalidArgumentError
from lakekv.kv.drivers.postgres.pool import Connection, Execute
from lakekv.kv.types import RawChunk

if TYPE_CHECKING:
    from lakekv.kv.drivers.postgres.bulk import _BatchAttempt
    from lakekv.kv.drivers.postgres.store import PostgresStore

RAW_FORMAT: Final = "postgres-copy-binary-v1"
"""``capabilities.raw_rows`` of the PostgreSQL driver: binary COPY tuples of
``(partition_key, key, value)``, all three ``bytea``."""
HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
"""The signature, no flags (no OIDs), no header extension."""
TRAILER: Final = b"\xff\xff"
_TUPLE_OVERHEAD: Final = 2 + 3 * 4
"""Per tuple: the field count (int16) and each field's length (int32)."""


class RawRows:
    """Reads and writes one store's table in the raw format."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        t = store._quote(store.table)
        rows = f"SELECT partition_key, key, value FROM {t} WHERE partition_key = %s AND key >= %s"
        # ``ORDER BY key LIMIT n``, never a key range: with a range the planner may prefer a
        # sequential scan and a sort of the whole partition (measured: 9 chunks of a
        # 160,000-entry partition took 0.55 s instead of 0.1 s).
        self._q_out = f"COPY ({rows} ORDER BY key LIMIT %s) TO STDOUT (FORMAT BINARY)"
        # Where the next chunk starts: the key ``n`` entries on (read in the same snapshot).
        self._q_next = (
            f"SELECT key FROM {t} WHERE partition_key = %s AND key >= %s "
            "ORDER BY key OFFSET %s LIMIT 1"
        )
        self._q_in = (
            f"COPY {store._quote(store.table, for_params=False)} (partition_key, key, value) "
            "FROM STDIN (FORMAT BINARY)"
        )

    def read(
        self, partition: bytes, start: bytes, limit: int, execute: Execute, *, snapshot: bool
    ) -> RawChunk:
        """One chunk, on the connection ``execute`` runs on: the boundary query, then the
        COPY of ``limit`` entries, both in one snapshot (``snapshot``: the connection is in
        one already; otherwise a read-only REPEATABLE READ transaction around the two), in
        one call, so a retry after a lost connection repeats both."""

        params = (partition, start, limit)

        def copy_chunk(cur: psycopg.Cursor[Any], after: tuple[bytes] | None) -> RawChunk:
            """The COPY, on the cursor that just ran the boundary query (``after``: its row)."""
            buf = bytearray()
            with cur.copy(self._q_out, params) as copy:
                for block in copy:  # one tuple each; copied now, so psycopg reuses its buffer
                    buf += block  # (measured 2.7x faster than joining the blocks at the end)
            data = bytes(buf)
            entries = max(0, cur.rowcount)
            return RawChunk(
                partition=partition,
                start=start,
                data=data,
                entries=entries,
                payload_bytes=len(data)
                - len(HEADER)
                - len(TRAILER)
                - entries * (_TUPLE_OVERHEAD + len(partition)),
                next_start=None if after is None else after[0],
            )

        if snapshot:
            chunk: RawChunk = execute(
                self._q_next, params, lambda cur: copy_chunk(cur, cur.fetchone())
            )
            return chunk

        def in_transaction(cur: psycopg.Cursor[Any]) -> RawChunk:
            try:
                chunk = copy_chunk(cur, cur.execute(self._q_next, params).fetchone())
            except BaseException:
                if not cur.connection.broken:
                    cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
            return chunk

        chunk = execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", (), in_transaction)
        return chunk

    def write_on(
        self, conn: Connection, chunks: Sequence[RawChunk], state: _BatchAttempt
    ) -> int | None:
        """One transaction: COPY every chunk's tuples under one header. ``None`` (rolled back,
        nothing written) when a key already exists."""
        for c in chunks:
            if not (c.data.startswith(HEADER) and c.data.endswith(TRAILER)):
                raise InvalidArgumentError(
                    f"a raw chunk of partition {c.partition!r} is not in the {RAW_FORMAT} format"
                )
        cur = conn.reusable_cursor()
        cur.execute("BEGIN")
        try:
            with cur.copy(self._q_in) as copy:
                copy.write(HEADER)
                for c in chunks:
                    if c.entries:
                        copy.write(memoryview(c.data)[len(HEADER) : -len(TRAILER)])
                copy.write(TRAILER)
        except psycopg.errors.UniqueViolation:
            cur.execute("ROLLBACK")
            return None
        except BaseException:
            if not conn.lost():
                cur.execute("ROLLBACK")
            raise
        written = cur.rowcount
        state.committing = True
        cur.execute("COMMIT")
        return written
