"""Migration benchmark: lakekv's copy, dump and load against raw database code, one run.

Usage::

    .venv/bin/python bench/migrate.py [--entries 1000000] [--pg postgres://postgres@127.0.0.1:5432/test]

Steps, all on `lakekv sample` data, each printed as a ratio (raw time / lakekv time, so 1.0
means as fast as the raw code and higher is better):

1. copy SQLite -> PostgreSQL vs a raw binary COPY of the same rows into the same table layout
   (best of two alternating rounds, each after a CHECKPOINT into an emptied table);
2. copy PostgreSQL -> SQLite vs raw sqlite3 executemany in large transactions;
3. dump to a file vs a raw ordered scan of the source (best of two alternating rounds, each
   after os.sync());
4. load from the file vs a raw bulk load (executemany in large transactions) into SQLite;
5. peak RSS of an N-entry copy vs an N/10-entry copy, each measured in its own process;
9. cutover, PostgreSQL -> PostgreSQL (lakeFS's 100-partition table): a fresh
   ``copy --track-changes`` into a table of another database vs ``pg_dump --table 'T*' |
   psql`` of the same table into an empty database (best of two alternating rounds, each
   after a CHECKPOINT); then 1% of the source changes (0.4% updates, 0.3% deletes, 0.3%
   inserts, spread over partitions) and the catch-up ``sync`` is timed against the fresh copy
   (best of two rounds, each after its own changes: a rehearsal that keeps the change feed,
   then the catch-up that ends it; the target is then verified identical), with, for
   reference, the same catch-up without a feed (by digests) and one right after a fresh
   tracked copy, without the rehearsal; ``verify`` vs a raw ordered
   scan of the slower side (best of two alternating rounds). The server needs
   ``wal_level = logical`` (``tests/servers.py`` starts it so). ``--only cutover`` runs this
   step alone.

With ``--mysql URL``, ``--lmdb`` and ``--to redis,redis-cluster,etcd``, first (and with
``--only-engines``, only):

6. copy SQLite -> MySQL/MariaDB vs the raw bulk path PyMySQL has, ``LOAD DATA LOCAL INFILE``
   of the escaped rows, 50 000 per transaction, into the same table layout;
7. copy SQLite -> LMDB vs raw ``lmdb`` in the same layout (an 8-byte id per partition, then
   the key): ``putmulti(append=True)`` of the sorted rows, 50 000 per write transaction.

8. copy SQLite -> Redis, Redis Cluster and etcd vs each one's raw bulk path (Redis:
   pipelined ``HSET`` + ``ZADD`` of the same keys, 10,000 rows per pipeline, in a cluster one
   pipeline per node; etcd: ``Txn`` requests of 128 plain ``Put`` operations, etcd's
   ``--max-txn-ops``). URLs come from ``--redis``, ``--redis-cluster`` and ``--etcd``
   (defaults: the ``LAKEKV_TEST_*`` variables that ``tests/servers.py run`` exports)::

    python tests/servers.py run --engines redis,redis-cluster,etcd -- .venv/bin/python \
        bench/migrate.py --only-engines --to redis,redis-cluster,etcd --entries 200000

Each of these is the best of two alternating rounds into emptied tables / environments /
namespaces.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lmdb
import psycopg
import pymysql

from lakekv.errors import LakekvError
from lakekv.kv.drivers.etcd import EtcdStore
from lakekv.kv.drivers.etcd import _keys as etcd_keys
from lakekv.kv.drivers.etcd.proto import rpc_pb2
from lakekv.kv.drivers.redis import RedisClusterStore, RedisStore
from lakekv.kv.registry import open_store
from lakekv.kv.store import Store
from lakekv.kv.url import StoreURL
from lakekv.migrate import copy, dump, load, sync, untrack, verify
from lakekv.migrate.sample import sample

TARGETS = {
    "copy_to_pg": 0.6,
    "copy_to_sqlite": 0.6,
    "dump": 0.5,
    "load": 0.6,
    "copy_to_mysql": 0.6,
    "copy_to_lmdb": 0.6,
    "copy_pg_to_pg": 1.0,
    "verify": 1 / 1.5,
    "copy_to_redis": 0.6,
    "copy_to_rediscl": 0.6,
    "copy_to_etcd": 0.6,
}
"""Lowest acceptable ratio (raw time / lakekv time) per step."""
ENGINE_URLS = {
    "redis": ("LAKEKV_TEST_REDIS", "redis://127.0.0.1:6379/0", "namespace"),
    "redis-cluster": (
        "LAKEKV_TEST_REDIS_CLUSTER",
        "redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002",
        "namespace",
    ),
    "etcd": ("LAKEKV_TEST_ETCD", "etcd://127.0.0.1:2379", "prefix"),
}
CATCH_UP_TARGET = 0.25
"""Highest acceptable catch-up time as a fraction of a fresh copy."""
_FETCH = 10000
_TXN = 50000


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def sqlite_rows(path: Path) -> Iterator[list[tuple[bytes, bytes, bytes]]]:
    conn = sqlite3.connect(path)
    cur = conn.execute("SELECT partition, key, value FROM kv ORDER BY partition, key")
    while rows := cur.fetchmany(_FETCH):
        yield rows
    conn.close()


def raw_scan(path: Path) -> None:
    n = 0
    for rows in sqlite_rows(path):
        n += len(rows)


def raw_sqlite_load(rows: Iterator[list[tuple[bytes, bytes, bytes]]], path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE kv (partition BLOB NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, "
        "PRIMARY KEY (partition, key)) WITHOUT ROWID"
    )
    pending = 0
    conn.execute("BEGIN")
    for chunk in rows:
        conn.executemany("INSERT INTO kv VALUES (?, ?, ?)", chunk)
        pending += len(chunk)
        if pending >= _TXN:
            conn.execute("COMMIT")
            conn.execute("BEGIN")
            pending = 0
    conn.execute("COMMIT")
    conn.close()


def pg_conninfo(url: str) -> str:
    parsed = StoreURL.parse(url).without_params()
    return parsed.render(reveal_password=True).replace("postgres://", "postgresql://", 1)


def raw_pg_copy(src: Path, pg_url: str, table: str) -> None:
    with psycopg.connect(pg_conninfo(pg_url)) as conn, conn.cursor() as cur:
        with cur.copy(
            f'COPY "{table}" (partition_key, key, value) FROM STDIN (FORMAT BINARY)'
        ) as cp:
            # bytes take psycopg's C binary dumper without set_types() (its fastest path)
            for rows in sqlite_rows(src):
                for row in rows:
                    cp.write_row(row)
        conn.commit()


def pg_reset(pg_url: str, table: str) -> None:
    """Empty ``table`` and flush the server's dirty pages (CHECKPOINT) before a timed run."""
    with psycopg.connect(pg_conninfo(pg_url), autocommit=True) as conn:
        conn.execute(f'TRUNCATE "{table}"')
        conn.execute("CHECKPOINT")


def pg_rows(pg_url: str, table: str) -> Iterator[list[tuple[bytes, bytes, bytes]]]:
    with (
        psycopg.connect(pg_conninfo(pg_url)) as conn,
        conn.cursor(name="bench", binary=True) as cur,
    ):
        cur.execute(f'SELECT partition_key, key, value FROM "{table}"')
        while rows := cur.fetchmany(_FETCH):
            yield rows


def raw_mysql_load(src: Path, url: str, table: str) -> None:
    """LOAD DATA LOCAL INFILE of escaped tab-separated rows, 50 000 per transaction."""
    u = StoreURL.parse(url)
    conn = pymysql.connect(
        host=u.host or "localhost",
        port=u.port or 3306,
        user=u.username,
        password=u.password or "",
        database=u.path.lstrip("/"),
        local_infile=True,
    )

    def esc(b: bytes) -> bytes:
        b = b.replace(b"\\", b"\\\\")
        return b.replace(b"\t", b"\\t").replace(b"\n", b"\\n").replace(b"\0", b"\\0")

    load = (
        f"LOAD DATA LOCAL INFILE %s INTO TABLE `{table}` CHARACTER SET binary FIELDS "
        "TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
        "(partition_key, `key`, value)"
    )
    cur = conn.cursor()
    pending: list[bytes] = []
    count = 0

    def flush() -> None:
        with tempfile.NamedTemporaryFile(dir="/dev/shm") as f:
            f.write(b"".join(pending))
            f.flush()
            cur.execute(load, (f.name,))
        conn.commit()
        pending.clear()

    for rows in sqlite_rows(src):
        pending.extend(esc(p) + b"\t" + esc(k) + b"\t" + esc(v) + b"\n" for p, k, v in rows)
        count += len(rows)
        if len(pending) >= _TXN:
            flush()
    if pending:
        flush()
    conn.close()


def mysql_reset(url: str, table: str) -> None:
    with open_store(StoreURL.parse(url).with_params(table=table)) as s:
        s.destroy()
    open_store(StoreURL.parse(url).with_params(table=table)).close()


def raw_lmdb_load(src: Path, path: Path) -> None:
    """lmdb putmulti(append=True) in the store's layout, 50 000 rows per transaction."""
    env = lmdb.open(str(path), map_size=1 << 34, max_dbs=4)
    names = env.open_db(b"kv:partitions")
    data = env.open_db(b"kv")
    ids: dict[bytes, bytes] = {}
    txn = env.begin(write=True)
    pending = 0
    for rows in sqlite_rows(src):
        items = []
        for p, k, v in rows:
            pid = ids.get(p)
            if pid is None:
                pid = ids[p] = (len(ids) + 1).to_bytes(8)
                txn.put(p, pid, db=names)
            items.append((pid + k, v))
        txn.cursor(db=data).putmulti(items, append=True)
        pending += len(rows)
        if pending >= _TXN:
            txn.commit()
            txn = env.begin(write=True)
            pending = 0
    txn.commit()
    env.close()


def raw_redis_bulk(src: Path, store: RedisStore) -> None:
    """Pipelined HSET + ZADD of every row (and one ZADD per partition into its list). In a
    cluster, one plain pipeline per node (redis-py's cluster pipeline is several times
    slower), each partition's commands to the node serving its slot."""
    client = store._client
    cluster = isinstance(store, RedisClusterStore)
    names: dict[bytes, tuple[tuple[bytes, bytes, bytes], Any]] = {}
    for rows in sqlite_rows(src):
        pipes: dict[int, Any] = {}
        for p, k, v in rows:
            known = names.get(p)
            first = known is None
            if known is None:
                keys = store._keys(p)
                node = client.get_node_from_key(keys[0]).redis_connection if cluster else client
                known = names[p] = (keys, node)
            keys, node = known
            pipe = pipes.get(id(node))
            if pipe is None:
                pipe = pipes[id(node)] = node.pipeline(transaction=False)
            if first:
                pipe.zadd(keys[2], {p: 0})
            pipe.hset(keys[0], k, v)
            pipe.zadd(keys[1], {k: 0})
        for pipe in pipes.values():
            pipe.execute()


def raw_etcd_bulk(src: Path, store: EtcdStore) -> None:
    """Txn requests of 128 plain Puts (etcd's default --max-txn-ops), one after another."""
    txn = store._channel.unary_unary(
        "/etcdserverpb.KV/Txn",
        request_serializer=rpc_pb2.TxnRequest.SerializeToString,
        response_deserializer=rpc_pb2.TxnResponse.FromString,
    )
    ops: list[rpc_pb2.RequestOp] = []
    heads: dict[bytes, bytes] = {}
    for rows in sqlite_rows(src):
        for p, k, v in rows:
            head = heads.get(p)
            if head is None:
                head = heads[p] = etcd_keys.partition_head(store.prefix, p)
            ops.append(rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=head + k, value=v)))
            if len(ops) == 128:
                txn(rpc_pb2.TxnRequest(success=ops), timeout=30)
                ops = []
    if ops:
        txn(rpc_pb2.TxnRequest(success=ops), timeout=30)


def bench_copy_to_engine(engine: str, base: str, src: Path, n: int, run: str) -> None:
    """copy SQLite -> ``engine`` against its raw bulk path, best of two alternating rounds."""
    param = ENGINE_URLS[engine][2]
    urls = [
        StoreURL.parse(base)
        .with_params(**{param: f"bench-{side}-{run}"})
        .render(reveal_password=True)
        for side in ("raw", "kv")
    ]

    def emptied(url: str) -> Store:
        """The store at ``url``, emptied (not timed)."""
        store = open_store(url)
        store.destroy()
        return open_store(url)

    def raw_run(store: Store) -> None:
        if isinstance(store, RedisStore):
            raw_redis_bulk(src, store)
        else:
            assert isinstance(store, EtcdStore)
            raw_etcd_bulk(src, store)

    raw_times, our_times = [], []
    try:
        for _round in range(2):
            with emptied(urls[0]) as target:
                raw_times.append(timed(lambda: raw_run(target)))
            emptied(urls[1]).close()
            our_times.append(timed(lambda: copy(f"sqlite:///{src}", urls[1])))
        with open_store(urls[0]) as a, open_store(urls[1]) as b:  # both hold every entry
            assert sum(1 for _ in a.list_partitions()) == sum(1 for _ in b.list_partitions())
        name = "copy_to_" + engine.replace("redis-cluster", "rediscl")
        ratio_line(name, min(raw_times), min(our_times), n)
    finally:
        for url in urls:
            with open_store(url) as s:
                s.destroy()


def engine_copies(args: argparse.Namespace, a: Path, n: int, tmp: Path) -> None:
    """Steps 6 to 8: copy SQLite -> MySQL, LMDB, Redis, Redis Cluster and etcd against each
    one's raw bulk path."""
    for engine in args.to_engines:
        bench_copy_to_engine(
            engine, getattr(args, engine.replace("-", "_")), a, n, f"{os.getpid()}"
        )
    if args.mysql:
        raw_t, our_t = f"bench_myraw_{os.getpid()}", f"bench_mykv_{os.getpid()}"
        ours_url = StoreURL.parse(args.mysql).with_params(table=our_t).render(reveal_password=True)
        raw_times, our_times = [], []
        try:
            for _round in range(2):
                mysql_reset(args.mysql, raw_t)
                raw_times.append(timed(lambda: raw_mysql_load(a, args.mysql, raw_t)))
                mysql_reset(args.mysql, our_t)
                our_times.append(timed(lambda: copy(f"sqlite:///{a}", ours_url)))
        finally:
            for t_name in (raw_t, our_t):
                with open_store(StoreURL.parse(args.mysql).with_params(table=t_name)) as s:
                    s.destroy()
        ratio_line("copy_to_mysql", min(raw_times), min(our_times), n)
    if args.lmdb:
        raw_times, our_times, floor_times = [], [], []
        for r in range(2):
            for d in ("raw.lmdb", "kv.lmdb"):
                shutil.rmtree(tmp / d, ignore_errors=True)
            os.sync()
            raw_times.append(timed(lambda: raw_lmdb_load(a, tmp / "raw.lmdb")))
            os.sync()
            our_times.append(timed(lambda: copy(f"sqlite:///{a}", f"lmdb:///{tmp}/kv.lmdb")))
            # The same copy into memory://, whose writes cost next to nothing: what the copy
            # itself (read, check, batch) costs, whatever the target.
            floor = f"memory://floor{r}"
            floor_times.append(timed(functools.partial(copy, f"sqlite:///{a}", floor)))
        for d in ("raw.lmdb", "kv.lmdb"):
            shutil.rmtree(tmp / d, ignore_errors=True)
        ratio_line("copy_to_lmdb", min(raw_times), min(our_times), n)
        ratio_line("  copy_to_memory", min(raw_times), min(floor_times), n)


def rss_child(src: str, dst: str) -> None:
    copy(src, dst)
    print(json.dumps({"max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def measure_rss(src: str, dst: str) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--rss-child", src, dst], check=True, capture_output=True
    )
    return float(json.loads(out.stdout.splitlines()[-1])["max_rss_kb"]) / 1024


def ratio_line(name: str, raw: float, ours: float, n: int) -> float:
    ratio = raw / ours
    target = TARGETS.get(name)
    verdict = (
        "" if target is None else f"  target >= {target}: {'ok' if ratio >= target else 'MISSED'}"
    )
    print(
        f"{name:<15} raw {raw:7.2f}s ({n / raw:>9,.0f}/s)   lakekv {ours:7.2f}s "
        f"({n / ours:>9,.0f}/s)   ratio {ratio:.2f}{verdict}",
        flush=True,
    )
    return ratio


def pg_tool(name: str) -> str:
    """``name`` (pg_dump, psql) from PATH, else from Debian's PostgreSQL directory."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        raise SystemExit(f"{name} not found (install postgresql-client)")
    return str(candidates[-1])


def pg_database_url(pg_url: str, database: str) -> str:
    parsed = StoreURL.parse(pg_url).without_params()
    moved = StoreURL(
        parsed.scheme, parsed.username, parsed.password, parsed.host, parsed.port, "/" + database
    )
    return moved.render(reveal_password=True).replace("postgres://", "postgresql://", 1)


def pg_exec(pg_url: str, *statements: str) -> None:
    with psycopg.connect(pg_conninfo(pg_url), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())


def pg_dump_psql(pg_url: str, table: str, database: str) -> None:
    """What a PostgreSQL user runs: ``pg_dump --table 'T*' | psql`` into an empty database."""
    dump_cmd = [pg_tool("pg_dump"), "--table", f"{table}*", "--dbname", pg_conninfo(pg_url)]
    psql_cmd = [
        pg_tool("psql"),
        "--quiet",
        "--set",
        "ON_ERROR_STOP=1",
        "--dbname",
        pg_database_url(pg_url, database),
    ]
    with subprocess.Popen(dump_cmd, stdout=subprocess.PIPE) as producer:
        subprocess.run(psql_cmd, stdin=producer.stdout, stdout=subprocess.DEVNULL, check=True)
        assert producer.stdout is not None
        producer.stdout.close()
    if producer.returncode:
        raise SystemExit(f"pg_dump failed with {producer.returncode}")


def pg_ordered_scan(pg_url: str, table: str) -> int:
    """A raw ordered scan of the whole table (server-side cursor, binary): the floor for
    reading one side."""
    n = 0
    with (
        psycopg.connect(pg_conninfo(pg_url)) as conn,
        conn.cursor(name="scan", binary=True) as cur,
    ):
        cur.execute(f'SELECT partition_key, key, value FROM "{table}" ORDER BY partition_key, key')
        while rows := cur.fetchmany(_FETCH):
            n += len(rows)
    return n


def pg_change(pg_url: str, table: str, fraction: float, seed: int) -> tuple[int, int, int]:
    """Change ``fraction`` of the entries, spread over partitions at random: 40% of the
    changes update a value, 30% delete an entry, 30% insert a new key next to an old one."""
    rng = random.Random(seed)
    with psycopg.connect(pg_conninfo(pg_url)) as conn, conn.cursor() as cur:
        keys: list[tuple[bytes, bytes]] = cur.execute(
            f'SELECT partition_key, key FROM "{table}"'
        ).fetchall()
        k = max(3, int(len(keys) * fraction))
        picked = rng.sample(keys, k)
        n_up, n_del = int(k * 0.4), int(k * 0.3)
        cur.executemany(
            f"UPDATE \"{table}\" SET value = value || '\\x2a'::bytea "
            "WHERE partition_key = %s AND key = %s",
            picked[:n_up],
        )
        cur.executemany(
            f'DELETE FROM "{table}" WHERE partition_key = %s AND key = %s',
            picked[n_up : n_up + n_del],
        )
        inserts = [
            (p, key + b"/v%d-%d" % (seed, i), b"new value %d" % i)
            for i, (p, key) in enumerate(picked[n_up + n_del :])
        ]
        cur.executemany(f'INSERT INTO "{table}" VALUES (%s, %s, %s)', inserts)
        conn.commit()
    return n_up, n_del, len(inserts)


def pg_store_url(pg_url: str, database: str, table: str) -> str:
    """The lakekv URL of ``table`` in ``database`` on the server of ``pg_url``."""
    parsed = StoreURL.parse(pg_url).without_params()
    moved = StoreURL(
        parsed.scheme, parsed.username, parsed.password, parsed.host, parsed.port, "/" + database
    )
    return moved.with_params(table=table).render(reveal_password=True)


def cutover(args: argparse.Namespace, n: int, a: Path, run: str) -> None:
    """Step 9: fresh tracked copy vs pg_dump | psql, catch-up vs fresh copy, verify vs raw
    scans. The target is a table in its own database, as in a real cutover (the source's
    change feed then never decodes the copy's own writes)."""
    src_t, dst_t, dump_db, dst_db = (
        f"bench_csrc_{run}",
        f"bench_cdst_{run}",
        f"bench_dump_{run}",
        f"bench_cdst_{run}",
    )
    src = StoreURL.parse(args.pg).with_params(table=src_t).render(reveal_password=True)
    dst = pg_store_url(args.pg, dst_db, dst_t)
    pg_exec(args.pg, f'DROP DATABASE IF EXISTS "{dst_db}"', f'CREATE DATABASE "{dst_db}"')
    try:
        t = timed(lambda: copy(f"sqlite:///{a}", src))
        print(f"cutover setup   source table {src_t} loaded in {t:.2f}s", flush=True)
        open_store(dst).close()
        dump_times, copy_times = [], []
        for _round in range(2):
            pg_exec(args.pg, f'DROP DATABASE IF EXISTS "{dump_db}"', f'CREATE DATABASE "{dump_db}"')
            pg_exec(args.pg, "CHECKPOINT")
            dump_times.append(timed(lambda: pg_dump_psql(args.pg, src_t, dump_db)))
            pg_reset(dst, dst_t)
            copy_times.append(timed(lambda: copy(src, dst, track_changes=True)))
        fresh = min(copy_times)
        ratio_line("copy_pg_to_pg", min(dump_times), fresh, n)
        print(
            "                (raw = pg_dump --table 'T*' | psql into an empty database; "
            "lakekv = copy --track-changes into another empty database)"
        )

        # Round 1 is a rehearsal that keeps the feed, round 2 the catch-up that ends it.
        sync_times, methods = [], []
        for seed, keep in ((1, True), (2, False)):
            changed = pg_change(args.pg, src_t, 0.01, seed)
            pg_exec(args.pg, "CHECKPOINT")
            t0 = time.perf_counter()
            report = sync(src, dst, keep_tracking=keep)
            sync_times.append(time.perf_counter() - t0)
            methods.append(report.method)
        catch_up = min(sync_times)
        check = verify(src, dst)
        if not check.equal:
            raise SystemExit(f"catch-up left differences: {check.to_json()}")
        frac = catch_up / fresh
        print(
            f"catch_up        fresh copy {fresh:7.2f}s   sync after 1% changed "
            f"(updates/deletes/inserts {changed[0]:,}/{changed[1]:,}/{changed[2]:,}) "
            f"{catch_up:7.2f}s   fraction {frac:.3f}  target <= {CATCH_UP_TARGET}: "
            f"{'ok' if frac <= CATCH_UP_TARGET else 'MISSED'}",
            flush=True,
        )
        print(
            f"                (by {'/'.join(methods)}: rounds {sync_times[0]:.2f}s with the "
            f"feed kept, {sync_times[1]:.2f}s ending it)",
            flush=True,
        )
        pg_change(args.pg, src_t, 0.01, 3)
        pg_exec(args.pg, "CHECKPOINT")
        by_digests = timed(lambda: sync(src, dst))
        print(
            f"                (the same catch-up without a change feed, by digests: "
            f"{by_digests:.2f}s, fraction {by_digests / fresh:.3f})",
            flush=True,
        )

        # The runbook without the rehearsal: a fresh tracked copy, 1% changed, one catch-up
        # that also decodes the first pass's WAL (both databases share this server).
        pg_reset(dst, dst_t)
        again = timed(lambda: copy(src, dst, track_changes=True))
        pg_change(args.pg, src_t, 0.01, 4)
        pg_exec(args.pg, "CHECKPOINT")
        direct = timed(lambda: sync(src, dst))
        print(
            f"                (without the rehearsal: a catch-up right after a fresh copy of "
            f"{again:.2f}s took {direct:.2f}s, fraction {direct / again:.3f})",
            flush=True,
        )

        raw_times, our_times = [], []
        for _round in range(2):
            raw_times.append(
                max(
                    timed(lambda: pg_ordered_scan(args.pg, src_t)),
                    timed(lambda: pg_ordered_scan(dst, dst_t)),
                )
            )
            our_times.append(timed(lambda: verify(src, dst)))
        ratio_line("verify", min(raw_times), min(our_times), n)
        print("                (raw = ordered scan of the slower side)")
        print(
            f"downtime        stop lakeFS, sync, verify: {catch_up + min(our_times):.1f}s "
            f"for {n:,} entries (copy while lakeFS runs: {fresh:.1f}s)",
            flush=True,
        )
    finally:
        with contextlib.suppress(LakekvError):
            untrack(src, dst)
        for url in (src, dst):
            with open_store(url) as s:
                s.destroy()
        for db in (dump_db, dst_db):
            pg_exec(args.pg, f'DROP DATABASE IF EXISTS "{db}"')


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument(
        "--pg",
        default=os.environ.get("LAKEKV_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test"),
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--only",
        choices=["all", "cutover"],
        default="all",
        help="Run every step, or step 9 (the cutover).",
    )
    ap.add_argument(
        "--mysql",
        default=os.environ.get("LAKEKV_TEST_MYSQL"),
        help="also copy to MySQL/MariaDB at this URL (step 6; default $LAKEKV_TEST_MYSQL)",
    )
    ap.add_argument("--lmdb", action="store_true", help="also copy to LMDB (step 7)")
    ap.add_argument(
        "--to", default="", help="also copy to these (step 8): redis, redis-cluster, etcd"
    )
    for engine, (variable, default, _param) in ENGINE_URLS.items():
        ap.add_argument(f"--{engine}", default=os.environ.get(variable, default))
    ap.add_argument(
        "--only-engines", action="store_true", help="run steps 6 to 8 only (no PostgreSQL)"
    )
    ap.add_argument("--rss-child", nargs=2, metavar=("SRC", "DST"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.to_engines = [e.strip() for e in args.to.split(",") if e.strip()]
    unknown = set(args.to_engines) - set(ENGINE_URLS)
    if unknown:
        ap.error(f"--to: unknown engine(s) {', '.join(sorted(unknown))}")
    if args.rss_child:
        rss_child(*args.rss_child)
        return
    n = args.entries
    run = f"{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix="lakekv-bench-"))
    a = tmp / "a.db"
    tables = [f"bench_raw_{run}", f"bench_kv_{run}", f"bench_rss_{run}", f"bench_rss10_{run}"]
    pg = {
        t: StoreURL.parse(args.pg).with_params(table=t).render(reveal_password=True) for t in tables
    }
    print(f"lakekv migration benchmark: N = {n:,} sample entries, temp dir {tmp}", flush=True)
    t = timed(lambda: sample(f"sqlite:///{a}", n, seed=args.seed))
    print(f"sample          {t:7.2f}s", flush=True)
    if args.only == "cutover":
        try:
            cutover(args, n, a, run)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    if args.only_engines:
        try:
            engine_copies(args, a, n, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    engine_copies(args, a, n, tmp)
    try:
        for t_name in tables:
            open_store(pg[t_name]).close()  # lakeFS's layout: 100 hash partitions
        # Two alternating rounds, each into an emptied table after a CHECKPOINT, so neither
        # side pays for the other's dirty pages; the best round of each side counts.
        raw_times, our_times = [], []
        for _round in range(2):
            pg_reset(args.pg, tables[0])
            raw_times.append(timed(lambda: raw_pg_copy(a, args.pg, tables[0])))
            pg_reset(args.pg, tables[1])
            our_times.append(timed(lambda: copy(f"sqlite:///{a}", pg[tables[1]])))
        ratio_line("copy_to_pg", min(raw_times), min(our_times), n)

        raw = timed(lambda: raw_sqlite_load(pg_rows(args.pg, tables[1]), tmp / "raw_b.db"))
        ours = timed(lambda: copy(pg[tables[1]], f"sqlite:///{tmp}/b.db"))
        ratio_line("copy_to_sqlite", raw, ours, n)

        # Best of two alternating rounds, each after os.sync(): the dump writes a large file,
        # and dirty pages left by the previous steps would otherwise throttle only its side.
        raw_times, our_times = [], []
        for _round in range(2):
            (tmp / "a.lkv").unlink(missing_ok=True)
            os.sync()
            raw_times.append(timed(lambda: raw_scan(a)))
            os.sync()
            our_times.append(timed(lambda: dump(f"sqlite:///{a}", tmp / "a.lkv")))
        ratio_line("dump", min(raw_times), min(our_times), n)
        print(
            f"                dump file {(tmp / 'a.lkv').stat().st_size / 1e6:,.1f} MB", flush=True
        )

        raw = timed(lambda: raw_sqlite_load(sqlite_rows(a), tmp / "raw_c.db"))
        ours = timed(lambda: load(f"sqlite:///{tmp}/c.db", tmp / "a.lkv"))
        ratio_line("load", raw, ours, n)

        small = tmp / "small.db"
        sample(f"sqlite:///{small}", max(1, n // 10), seed=args.seed)
        rss_small = measure_rss(f"sqlite:///{small}", pg[tables[3]])
        rss_big = measure_rss(f"sqlite:///{a}", pg[tables[2]])
        factor = rss_big / rss_small
        ok = factor <= 1.25 and rss_big < 250
        print(
            f"peak_rss        copy of {n // 10:,}: {rss_small:.0f} MB   copy of {n:,}: "
            f"{rss_big:.0f} MB   ratio {factor:.2f}  target <= 1.25 and < 250 MB: "
            f"{'ok' if ok else 'MISSED'}",
            flush=True,
        )
        cutover(args, n, a, run)
    finally:
        for t_name in tables:
            with open_store(pg[t_name]) as s:
                s.destroy()
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


if __name__ == "__main__":
    main()
