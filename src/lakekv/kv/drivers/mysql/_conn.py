"""Connections for the MySQL driver: a small pool, a liveness check, error codes."""

from __future__ import annotations

import contextlib
import select
import threading
import time
from collections.abc import Callable
from typing import Any, Final, TypeAlias

import pymysql

from lakekv.errors import StoreClosedError, StoreUnavailableError

Connection: TypeAlias = "pymysql.connections.Connection[Any]"

DUPLICATE_KEY: Final = 1062
UNKNOWN_DATABASE: Final = 1049
RETRYABLE: Final = frozenset(
    {
        1040,  # too many connections
        1053,  # server shutdown in progress
        1205,  # lock wait timeout
        1213,  # deadlock
        1927,  # connection killed (MariaDB)
        2003,  # cannot connect
        2006,  # server has gone away
        2013,  # lost connection during query
        2014,  # commands out of sync
        2055,  # lost connection
    }
)
LOST: Final = frozenset({0, 2006, 2013, 2014, 2055, 1927})
"""Error codes after which a connection is unusable (0: PyMySQL's "already closed")."""


def error_code(exc: BaseException) -> int:
    """The MySQL error number of a PyMySQL exception (0 when it has none)."""
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else 0


class Pool:
    """At most ``size`` connections, most recently used first; waits up to ``timeout``.

    Taking an idle connection is a list pop (atomic under the GIL); only opening a new one or
    waiting takes the condition's lock.
    """

    def __init__(self, connect: Callable[[], Connection], size: int, timeout: float) -> None:
        self._connect = connect
        self._size = size
        self._timeout = timeout
        self._idle: list[Connection] = []
        self._open = 0
        self._cond = threading.Condition()
        self.closed = False

    def take(self) -> Connection:
        try:
            return self._idle.pop()
        except IndexError:
            pass
        deadline = time.monotonic() + self._timeout
        with self._cond:
            while True:
                if self.closed:
                    raise StoreClosedError("store is closed")
                if self._idle:
                    return self._idle.pop()
                if self._open < self._size:
                    self._open += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StoreUnavailableError(
                        f"no free connection within {self._timeout:g} s (pool_size={self._size})"
                    )
                self._cond.wait(min(remaining, 0.05))
        try:
            return self._connect()
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise

    def give(self, conn: Connection) -> None:
        if self.closed:
            self.discard(conn)
            return
        self._idle.append(conn)

    def discard(self, conn: Connection) -> None:
        with contextlib.suppress(pymysql.err.Error, OSError):  # already closed, or gone
            conn.close()
        with self._cond:
            self._open -= 1
            self._cond.notify()

    def close(self) -> None:
        self.closed = True
        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                return
            self.discard(conn)


def alive(conn: Connection) -> bool:
    """False if the server closed this idle connection; never waits on the network."""
    sock = getattr(conn, "_sock", None)
    if sock is None:
        return False
    try:
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return not poller.poll(0)  # an idle connection has nothing to read
    except (OSError, ValueError):
        return False
