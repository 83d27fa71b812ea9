"""The bulk path of ``write_batch``: binary ``COPY``, straight into the table or through a
temporary table (see :meth:`BulkWriter.write`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final, TypeVar

import psycopg

from lakekv.kv.drivers.postgres.pool import Connection
from lakekv.kv.store import BatchResult, Entry, OnConflict, Store

if TYPE_CHECKING:
    from lakekv.kv.drivers.postgres.store import PostgresStore

T = TypeVar("T")

BATCH_TABLE: Final = "lakekv_batch"
"""The temporary table a batch is copied into (``ON COMMIT DROP``)."""


class BulkWriter:
    """Writes batches into one store's table; remembers whether the direct COPY pays off."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        t = store._quote(store.table)
        # Sorted, so concurrent batches lock keys in the same order (no deadlock).
        batch = f"SELECT partition_key, key, value FROM {BATCH_TABLE} ORDER BY partition_key, key"
        self._q_overwrite = (
            f"INSERT INTO {t} AS t (partition_key, key, value) {batch} "
            "ON CONFLICT (partition_key, key) DO UPDATE SET value = excluded.value "
            "WHERE t.value <> excluded.value"
        )
        self._q_create = (
            f"INSERT INTO {t} (partition_key, key, value) {batch} ON CONFLICT DO NOTHING"
        )
        self._q_differing = (
            f"SELECT b.n, t.value FROM {BATCH_TABLE} b LEFT JOIN {t} t "
            "ON t.partition_key = b.partition_key AND t.key = b.key "
            "WHERE t.value IS DISTINCT FROM b.value"
        )
        self._q_copy_direct = (
            f"COPY {store._quote(store.table, for_params=False)} (partition_key, key, value) "
            "FROM STDIN (FORMAT BINARY)"
        )
        self._direct_skip = 0
        self._direct_backoff = 0

    def write(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        """Bulk write, fastest path first.

        1. Optimistically, one binary ``COPY`` straight into the table in a transaction: if no
           key of the batch exists, every policy writes every entry, and this is as fast as a
           raw bulk load. A unique violation rolls it back (nothing is written) and step 2
           runs; after such a miss the next few batches skip step 1 (doubling up to 64), so
           re-running a finished copy costs little.
        2. Binary COPY into a temporary table, then one ``INSERT … SELECT … ON CONFLICT``;
           classification matches the generic fallback, and entries whose conflicting row
           vanished in between go through it.

        Each step is retried once if the connection breaks before its commit.
        """
        if self._try_direct_copy(entries):
            return BatchResult(written=len(entries))
        result, vanished = self._batch_transaction(
            lambda conn, state: self._write_batch_on(conn, entries, on_conflict, state)
        )
        if vanished:
            result.add(Store._write_batch(self._store, vanished, on_conflict))
        return result

    def _try_direct_copy(self, entries: Sequence[Entry]) -> bool:
        """Step 1 of :meth:`write`; ``False`` when some key already exists."""
        if self._direct_skip > 0:
            self._direct_skip -= 1
            return False
        return self._batch_transaction(
            lambda conn, state: self._direct_copy_on(conn, entries, state)
        )

    def _direct_copy_on(
        self, conn: Connection, entries: Sequence[Entry], state: _BatchAttempt
    ) -> bool:
        cur = conn.reusable_cursor()
        cur.execute("BEGIN")
        try:
            # No set_types(): bytes then take psycopg's C binary dumper (2× faster).
            with cur.copy(self._q_copy_direct) as copy:
                write = copy.write_row
                for entry in entries:
                    write(entry)
        except psycopg.errors.UniqueViolation:
            cur.execute("ROLLBACK")
            self._direct_backoff = min(64, max(1, self._direct_backoff * 2))
            self._direct_skip = self._direct_backoff
            return False
        except BaseException:
            if not conn.lost():
                cur.execute("ROLLBACK")
            raise
        state.committing = True
        cur.execute("COMMIT")
        self._direct_backoff = 0
        return True

    def _batch_transaction(self, fn: Callable[[Connection, _BatchAttempt], T]) -> T:
        """Run one batch transaction ``fn`` on a pooled connection, once more on a fresh one
        if the connection broke before the COMMIT was sent (after it, the outcome is unknown
        and the error propagates)."""
        for attempt in (0, 1):
            lender, conn = self._store._checkout()
            state = _BatchAttempt()
            try:
                return fn(conn, state)
            except psycopg.OperationalError:
                if attempt or state.committing or not conn.lost():
                    raise
            finally:
                lender.give(conn)
        raise AssertionError("unreachable")  # pragma: no cover

    def _write_batch_on(
        self,
        conn: Connection,
        entries: Sequence[Entry],
        on_conflict: OnConflict,
        state: _BatchAttempt,
    ) -> tuple[BatchResult, list[Entry]]:
        cur = conn.reusable_cursor()
        cur.execute("BEGIN")
        try:
            cur.execute(
                f"CREATE TEMPORARY TABLE {BATCH_TABLE} (n int4 NOT NULL, "
                "partition_key bytea NOT NULL, key bytea NOT NULL, value bytea NOT NULL) "
                "ON COMMIT DROP"
            )
            with cur.copy(f"COPY {BATCH_TABLE} FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int4", "bytea", "bytea", "bytea"])
                for n, entry in enumerate(entries):
                    copy.write_row((n, entry[0], entry[1], entry[2]))
            total = len(entries)
            vanished: list[Entry] = []
            # The INSERT writes exactly the entries BatchResult.classify would write (absent;
            # under OVERWRITE also different) and its row count counts them; the rest are equal
            # (unchanged) or, fetched below, present with another value (classified one by one).
            if on_conflict is OnConflict.OVERWRITE:
                cur.execute(self._q_overwrite, prepare=False)
                written = cur.rowcount
                result = BatchResult(written=written, unchanged=total - written)
            else:
                cur.execute(self._q_create, prepare=False)
                written = cur.rowcount
                result = BatchResult(written=written)
                if written < total:
                    cur.execute(f"ANALYZE {BATCH_TABLE}", prepare=False)
                    # Our own inserts are visible (and locked) in this transaction and equal;
                    # only entries whose stored value differs, or is gone, come back.
                    cur.execute(self._q_differing, prepare=False)
                    differing: list[tuple[int, bytes | None]] = cur.fetchall()
                    classify = result.classify
                    for n, stored in differing:
                        entry = entries[n]
                        if stored is None:
                            vanished.append(entry)
                        else:  # present with another value: never written here
                            classify(entry, stored, on_conflict)
                    result.unchanged = total - written - len(differing)
        except BaseException:
            if not conn.lost():
                cur.execute("ROLLBACK")
            raise
        state.committing = True
        cur.execute("COMMIT")
        return result, vanished


class _BatchAttempt:
    """Whether a batch reached its COMMIT (after which a broken connection is ambiguous)."""

    committing = False
