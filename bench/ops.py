"""lakekv against the raw client, operation by operation, in one run on this machine.

For SQLite, PostgreSQL, MySQL/MariaDB and LMDB this measures ``get``, ``set``, ``set_if``
(compare-and-set on the previous value) and a full ``scan`` of one partition, each done once
through lakekv and once with the raw client (``sqlite3``, ``psycopg``, ``pymysql``, ``lmdb``)
issuing the same statements on the same table, and prints operations per second and the
ratio. For point operations the ratio is lakekv's time per operation over the raw client's
(the overhead: lower is better; targets 1.3 on SQLite, MySQL and LMDB, 1.15 on PostgreSQL);
for scans it is lakekv's rows per second over the raw keyset scan's (higher is better; target
0.7). It also compares lakekv's SQLite ``get``/``set`` with
``diskcache`` and ``sqlitedict`` (both durable per write, like lakekv's autocommit).

Timings on a shared machine drift, so raw and lakekv runs alternate in many short rounds and
each side keeps its best. On PostgreSQL the raw client runs on the very connection the store's
pool lends, so both sides talk to the same server process (two different backends land on CPUs
differently, which alone moves a point read by up to 2x between runs). Usage::

    python bench/ops.py                        # everything, about 1-2 minutes
    python bench/ops.py --backend sqlite --n 20000
    python bench/ops.py --backend postgres --pg postgres://postgres@127.0.0.1:5432/test
    python bench/ops.py --backend mysql,lmdb --mysql mysql://root@127.0.0.1:3306/test

Redis (standalone and Cluster) and etcd are measured the same way: the raw side is redis-py
running the driver's own Lua scripts on the same keys through the same connection pool, and
grpcio calling etcd's ``Range``/``Put``/``Txn`` on the same channel (etcd's ``set_if`` compares
revisions, so both sides read the revision first: ``get`` + ``set_if`` against ``Range`` +
``Txn``). Their URLs come from ``--redis``, ``--redis-cluster`` and ``--etcd`` (defaults: the
``LAKEKV_TEST_REDIS``, ``LAKEKV_TEST_REDIS_CLUSTER`` and ``LAKEKV_TEST_ETCD`` variables that
``tests/servers.py run`` exports)::

    python tests/servers.py run --engines redis,redis-cluster,etcd -- \
        .venv/bin/python bench/ops.py --backend redis,redis-cluster,etcd

For LMDB, three more ``get`` lines measure the floor of any Python ``get`` on that engine
(``lmdb_get_floor``): the raw read plus only the result object, then plus the argument checks,
then plus the in-flight registration ``close()`` relies on. The store's ``get`` does all of
these and a little more (the driver hook, error translation, the map-resize guard), so it
cannot be below the last of them.

Exit status 0 even when a target is missed (it is a measurement, not a test); the ``ok``
column says which targets were met.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import diskcache
import psycopg
from sqlitedict import SqliteDict

from lakekv.kv.drivers.etcd import EtcdStore
from lakekv.kv.drivers.etcd import _keys as etcd_keys
from lakekv.kv.drivers.etcd.proto import rpc_pb2
from lakekv.kv.drivers.lmdb import LMDBStore
from lakekv.kv.drivers.mysql import MySQLStore
from lakekv.kv.drivers.postgres import PostgresStore
from lakekv.kv.drivers.redis import RedisStore
from lakekv.kv.drivers.redis._layout import SCRIPTS as REDIS_SCRIPTS
from lakekv.kv.registry import open_store
from lakekv.kv.store import Entry, Store, ValueWithPredicate
from lakekv.kv.url import StoreURL

PARTITION = b"bench-partition"
SCAN_PARTITION = b"bench-scan"
VALUE_SIZE = 100


@dataclass
class Result:
    """One line of the report."""

    backend: str
    op: str
    baseline: str
    base_rate: float
    lakekv_rate: float
    kind: str  # "point": time ratio, lower is better; "scan"/"versus": rate ratio, higher
    target: float

    @property
    def ratio(self) -> float:
        if self.kind == "point":
            return self.base_rate / self.lakekv_rate
        return self.lakekv_rate / self.base_rate

    @property
    def ok(self) -> bool:
        return self.ratio <= self.target if self.kind == "point" else self.ratio >= self.target


def race(
    run_base: Callable[[], int], run_lakekv: Callable[[], int], rounds: int
) -> tuple[float, float]:
    """Best rate (operations per second) of each side over ``rounds`` alternating rounds."""
    best = [0.0, 0.0]
    for r in range(rounds):
        order = [(0, run_base), (1, run_lakekv)]
        if r % 2:
            order.reverse()
        for side, fn in order:
            start = time.perf_counter()
            count = fn()
            elapsed = time.perf_counter() - start
            best[side] = max(best[side], count / elapsed)
    return best[0], best[1]


def keys(n: int) -> list[bytes]:
    return [b"key-%08d" % i for i in range(n)]


def value(i: int, tag: bytes = b"v") -> bytes:
    return (tag + b"%08d" % i) * (VALUE_SIZE // 9) + b"." * (VALUE_SIZE % 9)


# --- the raw clients, same statements as the drivers -------------------------------------------


class RawSQL(Protocol):
    """A raw client: the statements lakekv's driver sends, with the client library alone."""

    def get(self, p: bytes, k: bytes) -> bytes | None: ...
    def set(self, p: bytes, k: bytes, v: bytes) -> None: ...
    def cas(self, p: bytes, k: bytes, v: bytes, old: bytes) -> bool: ...
    def page(self, p: bytes, start: bytes, inclusive: bool, limit: int) -> list[Any]: ...
    def begin(self) -> None: ...
    def end(self) -> None: ...


class RawSQLite:
    def __init__(self, path: Path, table: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        t = table
        self.q_get = f"SELECT value FROM {t} WHERE partition = ? AND key = ?"
        self.q_set = (
            f"INSERT INTO {t} (partition, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (partition, key) DO UPDATE SET value = excluded.value"
        )
        self.q_cas = f"UPDATE {t} SET value = ? WHERE partition = ? AND key = ? AND value = ?"
        self.q_ge = (
            f"SELECT key, value FROM {t} WHERE partition = ? AND key >= ? ORDER BY key LIMIT ?"
        )
        self.q_gt = (
            f"SELECT key, value FROM {t} WHERE partition = ? AND key > ? ORDER BY key LIMIT ?"
        )

    def get(self, p: bytes, k: bytes) -> bytes | None:
        row = self.conn.execute(self.q_get, (p, k)).fetchone()
        return None if row is None else bytes(row[0])

    def set(self, p: bytes, k: bytes, v: bytes) -> None:
        self.conn.execute(self.q_set, (p, k, v))

    def cas(self, p: bytes, k: bytes, v: bytes, old: bytes) -> bool:
        return self.conn.execute(self.q_cas, (v, p, k, old)).rowcount == 1

    def page(self, p: bytes, start: bytes, inclusive: bool, limit: int) -> list[Any]:
        q = self.q_ge if inclusive else self.q_gt
        return self.conn.execute(q, (p, start, limit)).fetchall()

    def begin(self) -> None:
        pass

    def end(self) -> None:
        pass

    def close(self) -> None:
        self.conn.close()


class RawPostgres:
    """psycopg on the very connection the store's pool lends (see ``begin``)."""

    cur: psycopg.Cursor[tuple[Any, ...]]

    def __init__(self, store: PostgresStore) -> None:
        assert store._lender is not None
        self.lender = store._lender
        self.conn: Any = None
        t = f'"{store.table}"'
        self.q_get = f"SELECT value FROM {t} WHERE partition_key = %s AND key = %s"
        self.q_set = (
            f"INSERT INTO {t} (partition_key, key, value) VALUES (%s, %s, %s) "
            "ON CONFLICT (partition_key, key) DO UPDATE SET value = excluded.value"
        )
        self.q_cas = (
            f"UPDATE {t} SET value = %s WHERE partition_key = %s AND key = %s AND value = %s"
        )
        self.q_ge = (
            f"SELECT key, value FROM {t} WHERE partition_key = %s AND key >= %s "
            "ORDER BY key LIMIT %s"
        )
        self.q_gt = (
            f"SELECT key, value FROM {t} WHERE partition_key = %s AND key > %s "
            "ORDER BY key LIMIT %s"
        )

    def begin(self) -> None:
        """Borrow the store's connection for a round, so that both sides talk to the same
        server process: two different backends are scheduled differently on a small machine,
        which alone moves a point read by up to 2x from run to run."""
        conn = self.lender.take()
        self.conn = conn
        self.cur = conn.cursor(binary=True)

    def end(self) -> None:
        assert self.conn is not None
        self.cur.close()
        self.lender.give(self.conn)
        self.conn = None

    def get(self, p: bytes, k: bytes) -> bytes | None:
        row = self.cur.execute(self.q_get, (p, k)).fetchone()
        return None if row is None else bytes(row[0])

    def set(self, p: bytes, k: bytes, v: bytes) -> None:
        self.cur.execute(self.q_set, (p, k, v))

    def cas(self, p: bytes, k: bytes, v: bytes, old: bytes) -> bool:
        return self.cur.execute(self.q_cas, (v, p, k, old)).rowcount == 1

    def page(self, p: bytes, start: bytes, inclusive: bool, limit: int) -> list[Any]:
        q = self.q_ge if inclusive else self.q_gt
        return self.cur.execute(q, (p, start, limit)).fetchall()


class RawMySQL:
    """PyMySQL on the very connection the store's pool lends (as :class:`RawPostgres`)."""

    def __init__(self, store: MySQLStore) -> None:
        assert store._pool is not None
        self.pool = store._pool
        self.conn: Any = None
        t = f"`{store.table}`"
        self.q_get = f"SELECT value FROM {t} WHERE partition_key = %s AND `key` = %s"
        self.q_set = (
            f"INSERT INTO {t} (partition_key, `key`, value) VALUES (%s, %s, %s) "
            "ON DUPLICATE KEY UPDATE value = VALUES(value)"
        )
        self.q_cas = (
            f"UPDATE {t} SET value = %s WHERE partition_key = %s AND `key` = %s AND value = %s"
        )
        page = f"SELECT `key`, value FROM {t} WHERE partition_key = %s AND `key` {{}} %s "
        self.q_ge = page.format(">=") + "ORDER BY `key` LIMIT %s"
        self.q_gt = page.format(">") + "ORDER BY `key` LIMIT %s"

    def begin(self) -> None:
        self.conn = self.pool.take()
        self.cur = self.conn.cursor()

    def end(self) -> None:
        self.pool.give(self.conn)
        self.conn = None

    def get(self, p: bytes, k: bytes) -> bytes | None:
        self.cur.execute(self.q_get, (p, k))
        row = self.cur.fetchone()
        return None if row is None else bytes(row[0])

    def set(self, p: bytes, k: bytes, v: bytes) -> None:
        self.cur.execute(self.q_set, (p, k, v))

    def cas(self, p: bytes, k: bytes, v: bytes, old: bytes) -> bool:
        return bool(self.cur.execute(self.q_cas, (v, p, k, old)) == 1)

    def page(self, p: bytes, start: bytes, inclusive: bool, limit: int) -> list[Any]:
        self.cur.execute(self.q_ge if inclusive else self.q_gt, (p, start, limit))
        return list(self.cur.fetchall())


class RawLMDB:
    """The lmdb package on the store's environment and layout: in one transaction, the
    partition's 8-byte id from the names database, then ``id + key`` in the data database."""

    def __init__(self, store: LMDBStore) -> None:
        self.env = store._env
        self.names = store._names
        self.data = store._data

    def begin(self) -> None:
        pass

    def end(self) -> None:
        pass

    def get(self, p: bytes, k: bytes) -> bytes | None:
        # Positional arguments: py-lmdb parses keywords slowly (a third of a get).
        with self.env.begin() as txn:
            pid = txn.get(p, None, self.names)
            return None if pid is None else txn.get(pid + k, None, self.data)

    def set(self, p: bytes, k: bytes, v: bytes) -> None:
        with self.env.begin(write=True) as txn:
            pid = txn.get(p, db=self.names)
            assert pid is not None
            txn.put(pid + k, v, db=self.data)

    def cas(self, p: bytes, k: bytes, v: bytes, old: bytes) -> bool:
        with self.env.begin(write=True) as txn:
            pid = txn.get(p, db=self.names)
            assert pid is not None
            if txn.get(pid + k, db=self.data) != old:
                return False
            txn.put(pid + k, v, db=self.data)
            return True

    def page(self, p: bytes, start: bytes, inclusive: bool, limit: int) -> list[Any]:
        rows: list[tuple[bytes, bytes]] = []
        with self.env.begin() as txn:
            pid = txn.get(p, None, self.names)
            if pid is None:
                return rows
            cur = txn.cursor(self.data)
            if not cur.set_range(pid + start if inclusive else pid + start + b"\x00"):
                return rows
            for k, v in cur:
                if not k.startswith(pid) or len(rows) == limit:
                    break
                rows.append((k[8:], v))
        return rows


# --- one backend ---------------------------------------------------------------------------


def compare_backend(
    name: str, store: Store, raw: RawSQL, n: int, scan_rows: int, rounds: int, target: float
) -> list[Result]:
    """get / set / set_if / scan through ``store`` and through ``raw`` on the same table."""
    ks = keys(n)
    store.write_batch([Entry(PARTITION, k, value(i)) for i, k in enumerate(ks)], "overwrite")
    store.write_batch(
        [Entry(SCAN_PARTITION, k, value(i)) for i, k in enumerate(keys(scan_rows))], "overwrite"
    )
    order = ks[:]
    random.Random(1).shuffle(order)
    current = {k: value(i) for i, k in enumerate(ks)}
    flip = {k: (value(i, b"a"), value(i, b"b")) for i, k in enumerate(ks)}
    results: list[Result] = []

    def raw_get() -> int:
        for k in order:
            raw.get(PARTITION, k)
        return n

    def lk_get() -> int:
        for k in order:
            store.get(PARTITION, k)
        return n

    def raw_set() -> int:
        for k in order:
            raw.set(PARTITION, k, current[k])
        return n

    def lk_set() -> int:
        for k in order:
            store.set(PARTITION, k, current[k])
        return n

    def next_value(k: bytes) -> bytes:
        a, b = flip[k]
        return b if current[k] == a else a

    def raw_cas() -> int:
        for k in order:
            new = next_value(k)
            if not raw.cas(PARTITION, k, new, current[k]):
                raise RuntimeError("raw set_if failed")
            current[k] = new
        return n

    value_predicates = store.capabilities.value_predicates

    def lk_cas() -> int:
        for k in order:
            new = next_value(k)
            # a version-predicate store needs the current version: get it first
            pred = current[k] if value_predicates else store.get(PARTITION, k).predicate
            store.set_if(PARTITION, k, new, pred)
            current[k] = new
        return n

    def raw_scan() -> int:
        # The same keyset pages lakekv asks for: page_size first, doubling to page_cap.
        page, count, start, inclusive = store.paging.page_size, 0, b"", True
        while True:
            rows = raw.page(SCAN_PARTITION, start, inclusive, page)
            for _key, _value in rows:
                count += 1
            if len(rows) < page:
                return count
            start, inclusive = rows[-1][0], False
            page = min(page * 2, store.paging.page_cap)

    def lk_scan() -> int:
        count = 0
        for _entry in store.scan(SCAN_PARTITION):
            count += 1
        return count

    def round_of(fn: Callable[[], int]) -> Callable[[], int]:
        def run() -> int:
            raw.begin()
            try:
                return fn()
            finally:
                raw.end()

        return run

    for op, rb, rl in (
        ("get", raw_get, lk_get),
        ("set", raw_set, lk_set),
        ("set_if", raw_cas, lk_cas),
    ):
        base, lk = race(round_of(rb), rl, rounds)
        results.append(Result(name, op, "raw", base, lk, "point", target))
    assert round_of(raw_scan)() == lk_scan() == scan_rows
    base, lk = race(round_of(raw_scan), lk_scan, rounds)
    results.append(Result(name, "scan (rows)", "raw keyset", base, lk, "scan", 0.7))
    return results


def bench_sqlite(tmp: Path, n: int, scan_rows: int, rounds: int) -> list[Result]:
    path = tmp / "ops.db"
    with open_store(f"sqlite:///{path}") as store:
        raw = RawSQLite(path, "kv")
        try:
            return compare_backend("sqlite", store, raw, n, scan_rows, rounds, 1.3)
        finally:
            raw.close()


def bench_postgres(url: str, n: int, scan_rows: int, rounds: int) -> list[Result]:
    table = f"bench_ops_{os.getpid()}"
    store_url = StoreURL.parse(url).with_params(table=table).render(reveal_password=True)
    with open_store(store_url) as store:
        assert isinstance(store, PostgresStore)
        try:
            return compare_backend(
                "postgres", store, RawPostgres(store), n, scan_rows, rounds, 1.15
            )
        finally:
            store.destroy()


def bench_mysql(url: str, n: int, scan_rows: int, rounds: int) -> list[Result]:
    table = f"bench_ops_{os.getpid()}"
    store_url = StoreURL.parse(url).with_params(table=table).render(reveal_password=True)
    with open_store(store_url) as store:
        assert isinstance(store, MySQLStore)
        try:
            return compare_backend("mysql", store, RawMySQL(store), n, scan_rows, rounds, 1.3)
        finally:
            store.destroy()


def bench_lmdb(tmp: Path, n: int, scan_rows: int, rounds: int) -> list[Result]:
    with open_store(f"lmdb:///{tmp / 'ops.lmdb'}") as store:
        assert isinstance(store, LMDBStore)
        raw = RawLMDB(store)
        results = compare_backend("lmdb", store, raw, n, scan_rows, rounds, 1.3)
        return results + lmdb_get_floor(store, raw, n, rounds)


def lmdb_get_floor(store: LMDBStore, raw: RawLMDB, n: int, rounds: int) -> list[Result]:
    """What any ``get`` costs on LMDB, whoever writes it, against the raw read: the raw read
    done the cheaper way (``begin``/``abort``, no context manager) plus, one at a time, the
    parts the contract requires of every store: the result (a ``ValueWithPredicate``), the
    argument checks (types, emptiness, size limits), and registering the call for
    ``close()``. No driver hook, error translation or map-resize guard is included, so a
    real ``get`` can only cost more than the last line."""
    env, names, data = raw.env, raw.names, raw.data
    begin, new = env.begin, tuple.__new__
    caps = store.capabilities
    p_limit, k_limit = caps.partition_limit, caps.key_limit
    inflight: list[None] = []
    order = keys(n)
    random.Random(2).shuffle(order)

    def read(p: bytes, k: bytes) -> bytes | None:
        txn = begin()
        try:
            pid = txn.get(p, None, names)
            return None if pid is None else txn.get(pid + k, None, data)
        finally:
            txn.abort()

    def result(p: bytes, k: bytes) -> ValueWithPredicate:
        v = read(p, k)
        return new(ValueWithPredicate, (v, v))

    def checked(p: bytes, k: bytes) -> ValueWithPredicate:
        if not (
            type(p) is bytes is type(k) and p and k and len(p) <= p_limit and len(k) <= k_limit
        ):
            raise ValueError("bad arguments")
        v = read(p, k)
        return new(ValueWithPredicate, (v, v))

    def registered(p: bytes, k: bytes) -> ValueWithPredicate:
        if not (
            type(p) is bytes is type(k) and p and k and len(p) <= p_limit and len(k) <= k_limit
        ):
            raise ValueError("bad arguments")
        inflight.append(None)
        try:
            v = read(p, k)
        finally:
            inflight.pop()
        return new(ValueWithPredicate, (v, v))

    def loop(fn: Callable[[bytes, bytes], object]) -> Callable[[], int]:
        def run() -> int:
            for k in order:
                fn(PARTITION, k)
            return n

        return run

    results = []
    for label, fn in (
        ("floor result", result),
        ("+ checks", checked),
        ("+ in-flight", registered),
    ):
        base, floor = race(loop(raw.get), loop(fn), rounds)
        results.append(Result("lmdb get", label, "raw", base, floor, "point", 1.3))
    return results


class RawRedis:
    """redis-py alone: the driver's Lua scripts by SHA on the same keys, through the store's
    own client (the same connection pool, as for PostgreSQL)."""

    def __init__(self, store: RedisStore) -> None:
        self.client: Any = store._client
        self.sha = {name: self.client.script_load(src) for name, src in REDIS_SCRIPTS.items()}
        self.names = {p: store._keys(p) for p in (PARTITION, SCAN_PARTITION)}

    def get(self, p: bytes, k: bytes) -> bytes | None:
        value: bytes | None = self.client.hget(self.names[p][0], k)
        return value

    def set(self, p: bytes, k: bytes, v: bytes) -> None:
        self.client.evalsha(self.sha["set"], 3, *self.names[p], k, v, p)

    def cas(self, p: bytes, k: bytes, v: bytes, old: bytes) -> bool:
        sha = self.sha["set_if"]
        return bool(self.client.evalsha(sha, 3, *self.names[p], k, v, p, b"v", old))

    def page(self, p: bytes, start: bytes, inclusive: bool, limit: int) -> list[Any]:
        low = (b"[" if inclusive else b"(") + start
        flat = self.client.evalsha(self.sha["page"], 2, *self.names[p][:2], low, limit)
        it = iter(flat)
        return list(zip(it, it, strict=True))

    def begin(self) -> None:
        pass

    def end(self) -> None:
        pass


class RawEtcd:
    """grpcio alone on the store's channel: Range, Put, and Range + Txn for compare-and-set."""

    def __init__(self, store: EtcdStore) -> None:
        channel = store._channel

        def method(name: str, req: Any, resp: Any) -> Any:
            return channel.unary_unary(
                f"/etcdserverpb.KV/{name}",
                request_serializer=req.SerializeToString,
                response_deserializer=resp.FromString,
            )

        self.range = method("Range", rpc_pb2.RangeRequest, rpc_pb2.RangeResponse)
        self.put = method("Put", rpc_pb2.PutRequest, rpc_pb2.PutResponse)
        self.txn = method("Txn", rpc_pb2.TxnRequest, rpc_pb2.TxnResponse)
        self.heads = {
            p: etcd_keys.partition_head(store.prefix, p) for p in (PARTITION, SCAN_PARTITION)
        }
        self.timeout = store.timeout

    def get(self, p: bytes, k: bytes) -> bytes | None:
        kvs = self.range(rpc_pb2.RangeRequest(key=self.heads[p] + k), timeout=self.timeout).kvs
        return kvs[0].value if kvs else None

    def set(self, p: bytes, k: bytes, v: bytes) -> None:
        self.put(rpc_pb2.PutRequest(key=self.heads[p] + k, value=v), timeout=self.timeout)

    def cas(self, p: bytes, k: bytes, v: bytes, old: bytes) -> bool:
        key = self.heads[p] + k
        kvs = self.range(rpc_pb2.RangeRequest(key=key), timeout=self.timeout).kvs
        if not kvs or kvs[0].value != old:
            return False
        compare = rpc_pb2.Compare(
            key=key,
            target=rpc_pb2.Compare.MOD,
            result=rpc_pb2.Compare.EQUAL,
            mod_revision=kvs[0].mod_revision,
        )
        put = rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=v))
        request = rpc_pb2.TxnRequest(compare=[compare], success=[put])
        return bool(self.txn(request, timeout=self.timeout).succeeded)

    def page(self, p: bytes, start: bytes, inclusive: bool, limit: int) -> list[Any]:
        head = self.heads[p]
        first = head + start if inclusive else head + start + b"\x00"
        request = rpc_pb2.RangeRequest(key=first, range_end=etcd_keys.head_end(head), limit=limit)
        cut = len(head)
        return [(kv.key[cut:], kv.value) for kv in self.range(request, timeout=self.timeout).kvs]

    def begin(self) -> None:
        pass

    def end(self) -> None:
        pass


def bench_redis(name: str, url: str, n: int, scan_rows: int, rounds: int) -> list[Result]:
    store_url = StoreURL.parse(url).with_params(namespace=f"bench-ops-{os.getpid()}")
    with open_store(store_url) as store:
        assert isinstance(store, RedisStore)
        try:
            return compare_backend(name, store, RawRedis(store), n, scan_rows, rounds, 1.3)
        finally:
            store.destroy()


def bench_etcd(url: str, n: int, scan_rows: int, rounds: int) -> list[Result]:
    store_url = StoreURL.parse(url).with_params(prefix=f"bench-ops-{os.getpid()}")
    with open_store(store_url) as store:
        assert isinstance(store, EtcdStore)
        try:
            return compare_backend("etcd", store, RawEtcd(store), n, scan_rows, rounds, 1.3)
        finally:
            store.destroy()


def bench_kv_libraries(tmp: Path, n: int, rounds: int) -> list[Result]:
    """lakekv SQLite get/set against diskcache and sqlitedict (each on its own file)."""
    ks = keys(n)
    order = ks[:]
    random.Random(2).shuffle(order)
    results: list[Result] = []
    with open_store(f"sqlite:///{tmp / 'libs.db'}") as store:
        cache = diskcache.Cache(str(tmp / "diskcache"))
        sdict = SqliteDict(str(tmp / "sqlitedict.db"), autocommit=True)
        try:
            others: list[tuple[str, Callable[[bytes], object], Callable[[bytes, bytes], object]]]
            others = [
                ("diskcache", cache.get, cache.set),
                ("sqlitedict", sdict.__getitem__, sdict.__setitem__),
            ]
            for i, k in enumerate(ks):
                store.set(PARTITION, k, value(i))
                cache.set(k, value(i))
            for i, k in enumerate(ks):
                sdict[k] = value(i)  # sqlitedict writes in a background thread
            sdict.commit()

            def lk_get() -> int:
                for k in order:
                    store.get(PARTITION, k)
                return n

            def lk_set() -> int:
                for i, k in enumerate(order):
                    store.set(PARTITION, k, value(i, b"s"))
                return n

            for lib, get, put in others:

                def other_get(get: Callable[[bytes], object] = get) -> int:
                    for k in order:
                        get(k)
                    return n

                def other_set(put: Callable[[bytes, bytes], object] = put) -> int:
                    for i, k in enumerate(order):
                        put(k, value(i, b"s"))
                    return n

                base, lk = race(other_get, lk_get, rounds)
                results.append(Result("sqlite", "get", lib, base, lk, "versus", 1.0))
                base, lk = race(other_set, lk_set, rounds)
                results.append(Result("sqlite", "set", lib, base, lk, "versus", 1.0))
        finally:
            cache.close()
            sdict.close()
    return results


def report(results: list[Result]) -> None:
    header = (
        f"{'backend':<9} {'operation':<12} {'vs':<11} {'other ops/s':>12} {'lakekv ops/s':>13} "
        f"{'ratio':>7}  {'target':<9} ok"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if r.kind == "point":
            target = f"<= {r.target:g}"
            note = "time"
        else:
            target = f">= {r.target:g}"
            note = "rate"
        print(
            f"{r.backend:<9} {r.op:<12} {r.baseline:<11} {r.base_rate:>12,.0f} "
            f"{r.lakekv_rate:>13,.0f} {r.ratio:>6.2f}{note[0]}  {target:<9} "
            f"{'yes' if r.ok else 'NO'}"
        )
    print(
        "\nratio: t = lakekv time per op / other's (lower is better); "
        "r = lakekv rate / other's (higher is better)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=200, help="point operations per round (200)")
    parser.add_argument("--scan-rows", type=int, default=50000, help="rows scanned (50000)")
    parser.add_argument("--rounds", type=int, default=40, help="alternating rounds per side (40)")
    parser.add_argument(
        "--backend",
        default="sqlite,postgres,mysql,lmdb,kvlibs",
        help="comma-separated: sqlite, postgres, mysql, lmdb, kvlibs (diskcache/sqlitedict), "
        "redis, redis-cluster, etcd; default sqlite,postgres,mysql,lmdb,kvlibs",
    )
    parser.add_argument(
        "--pg",
        default=os.environ.get("LAKEKV_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test"),
        help="PostgreSQL URL (a table bench_ops_<pid> is created and dropped)",
    )
    parser.add_argument(
        "--mysql",
        default=os.environ.get("LAKEKV_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test"),
        help="MySQL/MariaDB URL (a table bench_ops_<pid> is created and dropped)",
    )
    for engine, default in (
        ("redis", "redis://127.0.0.1:6379/0"),
        ("redis-cluster", "redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002"),
        ("etcd", "etcd://127.0.0.1:2379"),
    ):
        variable = "LAKEKV_TEST_" + engine.upper().replace("-", "_")
        parser.add_argument(
            f"--{engine}",
            default=os.environ.get(variable, default),
            help=f"{engine} URL (default ${variable}, else {default})",
        )
    args = parser.parse_args(argv)
    chosen = {b.strip() for b in args.backend.split(",") if b.strip()}
    known = {"sqlite", "postgres", "mysql", "lmdb", "kvlibs", "redis", "redis-cluster", "etcd"}
    unknown = chosen - known
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    results: list[Result] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lakekv-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if "sqlite" in chosen:
            results += bench_sqlite(tmp, args.n, args.scan_rows, args.rounds)
        if "postgres" in chosen:
            results += bench_postgres(args.pg, args.n, args.scan_rows, args.rounds)
        if "mysql" in chosen:
            results += bench_mysql(args.mysql, args.n, args.scan_rows, args.rounds)
        if "lmdb" in chosen:
            results += bench_lmdb(tmp, args.n, args.scan_rows, args.rounds)
        if "kvlibs" in chosen:
            results += bench_kv_libraries(tmp, args.n, args.rounds)
        if "redis" in chosen:
            results += bench_redis("redis", args.redis, args.n, args.scan_rows, args.rounds)
        if "redis-cluster" in chosen:
            results += bench_redis(
                "rediscl", args.redis_cluster, args.n, args.scan_rows, args.rounds
            )
        if "etcd" in chosen:
            results += bench_etcd(args.etcd, args.n, args.scan_rows, args.rounds)
    print(
        f"n={args.n} point ops, {args.scan_rows} scanned rows, best of {args.rounds} "
        f"alternating rounds, value {VALUE_SIZE} bytes, python {sys.version.split()[0]}\n"
    )
    report(results)
    print(f"\ntook {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
