"""``lmdb:///path/to/dir`` — LMDB, the fastest embedded store (the ``lmdb`` package).

URL: ``lmdb:///relative/dir`` or ``lmdb:////absolute/dir`` (as ``sqlite://``); the directory
is created if missing (its parent must exist) and holds LMDB's ``data.mdb`` and ``lock.mdb``.
Parameters:

``table``        name of the store inside the environment (default ``kv``); several tables
                 share one file, up to 250 of them
``map_size``     initial map size in bytes (default 64 MiB); it grows by itself
``synchronous``  ``normal`` (default: fsync the data on commit, not the meta page: a system
                 crash may undo the last transaction, never corrupt), ``full`` (fsync both:
                 durable) or ``off`` (no fsync: the OS writes when it likes)
``page_size``/``page_cap``  scan pages (default 1000/10000)

Layout: two named databases per table. ``<table>:partitions`` maps each non-empty partition
name to an 8-byte id; ``<table>`` holds ``id + key → value``. So a partition is one contiguous
range of keys in bytewise order, no partition's range contains another's, and
``list_partitions`` reads the names in order. The id costs 8 bytes of LMDB's 511-byte key
limit: keys may be up to 503 bytes, partition names up to 511 (declared, checked before I/O).

Behaviour: every operation is one LMDB transaction, and every write (``set_if`` included) is
one write transaction, which LMDB serialises across threads and processes, so ``set_if`` is
atomic everywhere; the predicate is the value ``get`` returned. Readers never block writers.
Scans open a read transaction per page and hold nothing in between. Processes share a store
through LMDB's lock file in shared memory: a local file system only, not NFS. One environment
is opened per file and process (LMDB forbids two) and shared by every store on it (the first
opens it with its ``map_size`` and ``synchronous``); do not use a store across ``fork()``.
Opened with ``create=False`` or ``read_only=True``, the directory, its ``data.mdb`` and the
table must exist (StoreNotFoundError naming the missing one; nothing is created). The identity
is the resolved directory and the table. When a write finds the map full (``MapFullError``),
the transaction is rolled back, the map doubled and the write run again; when another process
grew the map (``MapResizedError``), this one adopts the new size. A resize waits until no
transaction of this process runs. No
LMDB exception reaches a caller: a full disk or a lock error is a StoreUnavailableError,
anything else a StoreError.
"""

from lakekv.kv.drivers.lmdb.store import (
    ID_SIZE,
    LMDB_MAX_KEY,
    MAX_KEY_SIZE,
    MAX_PARTITION_SIZE,
    LMDBSettings,
    LMDBStore,
)

__all__ = [
    "ID_SIZE",
    "LMDB_MAX_KEY",
    "MAX_KEY_SIZE",
    "MAX_PARTITION_SIZE",
    "LMDBSettings",
    "LMDBStore",
]
