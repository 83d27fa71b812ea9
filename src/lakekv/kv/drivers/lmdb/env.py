"""The LMDB environment shared by every ``lmdb://`` store of a process on one directory, and
the map growth that keeps ``MapFullError`` away from callers."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Final

import lmdb

from lakekv.errors import ConfigurationError, StoreNotFoundError

MAX_DBS: Final = 500
SYNC_MODES: Final = {"full": (True, True), "normal": (True, False), "off": (False, False)}
"""``synchronous`` parameter → (sync, metasync) of ``lmdb.open``."""


class SharedEnv:
    """One LMDB environment shared by every store of a process on that directory.

    Transactions run concurrently and a map resize runs alone (LMDB requires that no
    transaction of the process is active while the map changes): a transaction appends to
    ``active`` and only then checks ``resizing``, and pops when it ends (``active`` is a
    counter: list append and pop are atomic, and cheaper than a lock on the read path); a
    resize sets ``resizing`` under ``lock`` and waits for ``active`` to drain. ``lock`` also guards
    opening named databases, whose hidden write transaction is not in ``active``.
    """

    def __init__(self, key: tuple[int, str], env: lmdb.Environment) -> None:
        self.key = key
        self.env = env
        self.map_size = env.info()["map_size"]
        self.active: list[None] = []
        self.resizing = False
        self.lock = threading.Lock()
        self.refs = 0
        self.dbs: dict[bytes, lmdb._Database] = {}

    def enter(self) -> None:
        """Count a transaction as active (waiting out a resize); ``active.pop()`` ends it."""
        while True:
            self.active.append(None)
            if not self.resizing:
                return
            self.active.pop()
            with self.lock:  # held by the resize: wait for it
                pass

    def resize(self, seen: int, grow: bool) -> None:
        """Double the map (``grow``) or adopt another process's size, unless someone in this
        process already changed it since ``seen``."""
        with self.lock:
            if self.map_size != seen:
                return
            self.resizing = True
            try:
                while self.active:
                    time.sleep(0.0002)
                self.env.set_mapsize(seen * 2 if grow else 0)
                self.map_size = self.env.info()["map_size"]
            finally:
                self.resizing = False

    def db(self, name: bytes, create: bool) -> lmdb._Database | None:
        """The named database (``None`` when it does not exist and ``create`` is false). A
        map another process grew meanwhile (``MapResizedError`` from the hidden
        transaction) is adopted and the open tried again; a full map is grown."""
        while True:
            seen = self.map_size
            with self.lock:
                handle = self.dbs.get(name)
                if handle is not None:
                    return handle
                try:
                    handle = self.env.open_db(name, create=create)
                except lmdb.NotFoundError:
                    return None
                except (lmdb.MapResizedError, lmdb.MapFullError) as exc:
                    grow = isinstance(exc, lmdb.MapFullError)
                else:
                    self.dbs[name] = handle
                    return handle
            self.resize(seen, grow=grow)


_envs: dict[tuple[int, str], SharedEnv] = {}
_envs_lock = threading.Lock()


def acquire_env(path: Path, map_size: int, sync: str, create: bool = True) -> SharedEnv:
    if path.exists() and not path.is_dir():
        raise ConfigurationError(f"lmdb path {path} is a file, not an environment directory")
    if not create and not (path / "data.mdb").is_file():
        raise StoreNotFoundError(f"lmdb environment {path} does not exist")
    # The directory, not its parents: a typo creates no tree. Private: it may hold lakeFS
    # credentials.
    path.mkdir(mode=0o700, exist_ok=True)
    key = (os.getpid(), str(path.resolve()))
    with _envs_lock:
        shared = _envs.get(key)
        if shared is None:
            do_sync, metasync = SYNC_MODES[sync]
            env = lmdb.open(
                str(path),
                map_size=map_size,
                max_dbs=MAX_DBS,
                sync=do_sync,
                metasync=metasync,
                max_spare_txns=4,
                mode=0o600,
            )
            # Reader slots left by processes that died hold old pages from reuse: free them.
            env.reader_check()
            shared = _envs[key] = SharedEnv(key, env)
        shared.refs += 1
        return shared


def release_env(shared: SharedEnv) -> None:
    with _envs_lock:
        shared.refs -= 1
        if shared.refs == 0:
            del _envs[shared.key]
            shared.env.close()
