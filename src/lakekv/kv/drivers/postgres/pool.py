"""The connection lender: PostgreSQL connections lent to statements, cheaply.

A :class:`Lender` fronts a ``psycopg_pool.ConnectionPool`` of :class:`Connection` (one reusable
binary cursor each, and a liveness check that never waits on the network); see the store's
module docstring for how statements use them.
"""

from __future__ import annotations

import math
import select
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg.pq import ConnStatus, TransactionStatus
from psycopg_pool import ConnectionPool

Execute = Callable[[str, Sequence[object] | Mapping[str, object], Callable[..., Any]], Any]
"""Runs one read statement and returns ``fetch(cursor)``."""


class Connection(psycopg.Connection[tuple[Any, ...]]):
    """A pooled connection with one reusable cursor (binary results) and a socket poller."""

    lakekv_cursor: psycopg.Cursor[tuple[Any, ...]] | None = None
    lakekv_poller: select.poll | None = None
    lakekv_expires: float = math.inf
    lakekv_idle_since: float = 0.0

    def reusable_cursor(self) -> psycopg.Cursor[tuple[Any, ...]]:
        """This connection's cursor; only one thread uses a lent connection at a time."""
        cur = self.lakekv_cursor
        if cur is None or cur.closed:
            cur = self.lakekv_cursor = self.cursor(binary=True)
        return cur

    def alive(self) -> bool:
        """False if the server closed this idle connection; never waits on the network.

        An idle connection has nothing to read. If its socket is readable, the server sent
        something: a notice (harmless, consumed here) or an error and end of file (a restart,
        ``pg_terminate_backend``), which leaves the connection bad.
        """
        pgconn = self.pgconn
        try:
            poller = self.lakekv_poller
            if poller is None:
                poller = self.lakekv_poller = select.poll()
                poller.register(pgconn.socket, select.POLLIN)
            for _ in range(8):
                if not poller.poll(0):
                    return pgconn.status == ConnStatus.OK
                pgconn.consume_input()
                if pgconn.status != ConnStatus.OK:
                    return False
        except (OSError, ValueError, psycopg.Error):
            return False
        return False  # still chattering: not an idle connection to trust

    def lost(self) -> bool:
        """True if this connection is unusable after an error."""
        return self.broken or self.pgconn.status != ConnStatus.OK


class Lender:
    """Lends the pool's connections to statements, cheaply.

    The ``ConnectionPool`` opens connections, caps them at ``pool_size``, replaces broken ones
    and makes callers wait (up to ``pool_timeout``) when all are busy. Its per-loan bookkeeping
    costs about a fifth of a point read on a local server, so connections borrowed from it
    stay here between statements, most recently used first (a warm server process serves the
    next statement), and a loan is a list pop. A connection goes back to the pool when a caller
    waits on the pool, when it is unclean or older than ``max_lifetime``, after ``max_idle``
    seconds unused, and on close.

    Thread safety rests on the atomicity of ``list.append``/``pop``/``remove`` and of reading
    an int. A caller that finds no idle connection registers as waiting, then looks once more;
    a connection given back while someone waits is moved to the pool (which hands it to the
    waiter) unless another caller took it first. So no connection sits idle here while a
    caller waits on the pool.
    """

    def __init__(self, pool: ConnectionPool[Connection], max_idle: float) -> None:
        self.pool = pool
        self._max_idle = max_idle
        self._lock = threading.Lock()
        self._idle: list[Connection] = []
        self._waiting = 0

    def take(self) -> Connection:
        """A connection (not checked for liveness); may wait on the pool."""
        try:
            return self._idle.pop()
        except IndexError:
            pass
        with self._lock:
            self._waiting += 1
        try:
            try:
                return self._idle.pop()
            except IndexError:
                return self.pool.getconn()
        finally:
            with self._lock:
                self._waiting -= 1

    def give(self, conn: Connection) -> None:
        """Take back a connection lent by :meth:`take`."""
        now = time.monotonic()
        if now < conn.lakekv_expires and conn.pgconn.transaction_status == TransactionStatus.IDLE:
            idle = self._idle
            conn.lakekv_idle_since = now
            idle.append(conn)
            if self._waiting:
                self._to_pool(conn)
                return
            try:
                oldest = idle[0]
            except IndexError:  # taken meanwhile by other threads
                return
            if now - oldest.lakekv_idle_since > self._max_idle:
                self._to_pool(oldest)  # the pool's own max_idle shrinking closes it
            return
        if now >= conn.lakekv_expires:
            conn.close()  # the pool opens a replacement
        self.pool.putconn(conn)  # rolls back or discards a connection left unclean

    def _to_pool(self, conn: Connection) -> None:
        try:
            self._idle.remove(conn)
        except ValueError:
            return  # another caller took it
        self.pool.putconn(conn)

    def discard(self, conn: Connection) -> None:
        """Give back a dead connection; the pool opens a replacement."""
        conn.close()
        self.pool.putconn(conn)

    def close(self) -> None:
        """Return every idle connection and close the pool."""
        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                break
            self.pool.putconn(conn)
        self.pool.close(timeout=5.0)


class Borrowed:
    """A lent connection for a ``with`` block, given back at its end."""

    def __init__(self, lender: Lender, conn: Connection) -> None:
        self._lender = lender
        self._conn = conn

    def __enter__(self) -> Connection:
        return self._conn

    def __exit__(self, *exc: object) -> None:
        self._lender.give(self._conn)


def fetchone(cur: psycopg.Cursor[Any]) -> Any:
    return cur.fetchone()


def fetchall(cur: psycopg.Cursor[Any]) -> Any:
    return cur.fetchall()


def rowcount(cur: psycopg.Cursor[Any]) -> int:
    return cur.rowcount
