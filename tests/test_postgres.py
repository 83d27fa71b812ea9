"""PostgreSQL driver tests beyond the shared contract: lakeFS's exact layout, interoperability
with plain SQL, concurrent opening, errors, batches and recovery from killed connections.

Run with ``pytest tests/test_postgres.py --store postgres://postgres@127.0.0.1:5432/test``
(or set ``LAKEKV_TEST_POSTGRES``). Without a reachable server the tests are skipped, unless
``CI`` is set. Each test works in its own table, dropped afterwards.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lakekv.errors import (
    ConfigurationError,
    PredicateFailedError,
    SameStoreError,
    StoreError,
    StoreNotFoundError,
    StoreReadOnlyError,
    StoreUnavailableError,
    UnsafeOperationError,
    UnsupportedError,
)
from lakekv.kv.registry import open_store
from lakekv.kv.store import MUST_EXIST, BatchResult, Entry, OnConflict, Store
from lakekv.kv.url import StoreURL
from lakekv.migrate import (
    LAKEFS_SCHEMA_VERSION,
    SCHEMA_KEY,
    SCHEMA_PARTITION,
    copy,
    sync,
    untrack,
    verify,
)
from lakekv.testing import RUN_ID, require_available

pytest.importorskip("psycopg")

import psycopg

from lakekv.kv.drivers.postgres import (
    PARTITIONS,
    PostgresStore,
    advisory_lock_id,
    feed,
    partition_table_names,
    view_name,
)

ROOT = Path(__file__).resolve().parent.parent

MakeTable = Callable[[str], str]


@pytest.fixture(scope="module")
def pg_url(pytestconfig: pytest.Config) -> str:
    """The PostgreSQL server under test: the first ``--store postgres://…``, else
    ``$LAKEKV_TEST_POSTGRES``; without either the tests skip (fail when ``CI`` is set)."""
    urls = [
        u
        for u in pytestconfig.getoption("--store")
        if StoreURL.parse(u).scheme in ("postgres", "postgresql")
    ]
    url = urls[0] if urls else os.environ.get("LAKEKV_TEST_POSTGRES", "")
    if not url:
        reason = "no PostgreSQL server: pass --store postgres://… or set LAKEKV_TEST_POSTGRES"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (required because CI is set)", pytrace=False)
        pytest.skip(reason)
    base = StoreURL.parse(url)
    return base.without_params().render(reveal_password=True)


def conninfo(url: str) -> str:
    u = StoreURL.parse(url)
    parts = {
        "host": u.host,
        "port": u.port,
        "dbname": u.path.lstrip("/"),
        "user": u.username,
        "password": u.password,
    }
    return " ".join(f"{k}={v}" for k, v in parts.items() if v not in (None, ""))


@pytest.fixture
def raw(pg_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A plain psycopg connection to the test database (autocommit)."""
    require_available(pg_url)
    with psycopg.connect(conninfo(pg_url), autocommit=True) as conn:
        yield conn


@pytest.fixture
def make_table(pg_url: str) -> Iterator[MakeTable]:
    """``make_table(suffix) -> name``: unique table names, dropped (with their views) after."""
    require_available(pg_url)
    made: list[str] = []

    def make(suffix: str = "") -> str:
        name = f"lk_{RUN_ID}_{uuid.uuid4().hex[:8]}{suffix}"
        made.append(name)
        return name

    yield make
    with psycopg.connect(conninfo(pg_url), autocommit=True) as conn:
        for name in made:
            conn.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')
            conn.execute(f'DROP VIEW IF EXISTS "{name}_v"')
            conn.execute(f'DROP TABLE IF EXISTS "{name}_ref" CASCADE')


def url_for(pg_url: str, table: str, **params: str | float) -> str:
    text = {name: str(value) for name, value in params.items()}
    return StoreURL.parse(pg_url).with_params(table=table, **text).render(reveal_password=True)


@pytest.fixture
def table(make_table: MakeTable) -> str:
    return make_table("")


@pytest.fixture
def store(pg_url: str, table: str) -> Iterator[Store]:
    s = open_store(url_for(pg_url, table))
    try:
        yield s
    finally:
        s.close()


def lakefs_ddl(table: str) -> list[str]:
    """lakeFS's setup statements for ``table``, written out by hand from its documentation."""
    t = f'"{table}"'
    ddl = [
        f"CREATE TABLE IF NOT EXISTS {t} (partition_key BYTEA NOT NULL, key BYTEA NOT NULL, "
        "value BYTEA NOT NULL, PRIMARY KEY (partition_key, key)) PARTITION BY HASH (partition_key)"
    ]
    ddl += [
        f'CREATE TABLE IF NOT EXISTS "{table}_{i}" PARTITION OF {t} '
        f"FOR VALUES WITH (MODULUS 100, REMAINDER {i})"
        for i in range(100)
    ]
    ddl.append(
        f"CREATE OR REPLACE VIEW \"{table}_v\" AS SELECT ENCODE(partition_key, 'escape') "
        f"AS partition_key, ENCODE(key, 'escape') AS key, value FROM {t}"
    )
    return ddl


def describe(conn: psycopg.Connection[tuple[object, ...]], table: str) -> dict[str, object]:
    """The layout of ``table`` as the catalog reports it, with the table name abstracted."""
    oid = conn.execute("SELECT to_regclass(%s)::oid", (f'"{table}"',)).fetchone()
    assert oid is not None and oid[0] is not None, f"table {table} missing"
    toid = oid[0]
    columns = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
        "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (toid,),
    ).fetchall()
    kind = conn.execute("SELECT relkind FROM pg_class WHERE oid = %s", (toid,)).fetchone()
    strategy = conn.execute(
        "SELECT partstrat, partnatts, pg_get_partkeydef(partrelid) "
        "FROM pg_partitioned_table WHERE partrelid = %s",
        (toid,),
    ).fetchone()
    pk = conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s AND contype = 'p'",
        (toid,),
    ).fetchall()
    children = conn.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s ORDER BY c.relname",
        (toid,),
    ).fetchall()
    view = conn.execute("SELECT pg_get_viewdef(to_regclass(%s))", (f'"{table}_v"',)).fetchone()
    assert view is not None and view[0] is not None, f"view {table}_v missing"
    return {
        "kind": kind,
        "columns": columns,
        "strategy": strategy,
        "pk": pk,
        "children": sorted((str(name).replace(table, "T", 1), bound) for name, bound in children),
        "view": " ".join(str(view[0]).replace(table, "T").split()),
    }


# --- layout ------------------------------------------------------------------------------------


def test_advisory_lock_id_is_lakefs_fnv1a() -> None:
    assert advisory_lock_id("kv") == 4109714936

    def fnv1a32(data: bytes) -> int:
        h = 2166136261
        for b in data:
            h = ((h ^ b) * 16777619) % 2**32
        return h

    assert fnv1a32(b"a") == 0xE40C292C  # published FNV-1a test vector
    for name in ("kvstore", "t_1", "Kv", "ünï", "a%b"):
        assert advisory_lock_id(name) == fnv1a32(b"lakefs:" + name.encode())


def test_names_of_partitions_and_view() -> None:
    assert partition_table_names("kv")[:2] == ["kv_0", "kv_1"]
    assert partition_table_names("kv")[-1] == "kv_99"
    assert len(partition_table_names("my")) == PARTITIONS == 100
    assert view_name("kv") == "kv_v"


def test_layout_is_exactly_lakefs(
    store: Store, table: str, raw: psycopg.Connection[tuple[object, ...]]
) -> None:
    got = describe(raw, table)
    assert got["kind"] == ("p",)
    assert got["columns"] == [
        ("partition_key", "bytea", True),
        ("key", "bytea", True),
        ("value", "bytea", True),
    ]
    assert got["strategy"] == ("h", 1, "HASH (partition_key)")
    assert got["pk"] == [("PRIMARY KEY (partition_key, key)",)]
    pairs = got["children"]
    assert isinstance(pairs, list)
    children = dict(pairs)
    assert len(children) == 100
    for i in range(100):
        assert children[f"T_{i}"] == f"FOR VALUES WITH (modulus 100, remainder {i})"
    assert got["view"] == (
        "SELECT encode(T.partition_key, 'escape'::text) AS partition_key, "
        "encode(T.key, 'escape'::text) AS key, T.value FROM T;"
    )
    # The same DDL run by hand, as lakeFS runs it, yields an identical catalog description.
    ref = table + "_ref"
    for statement in lakefs_ddl(ref):
        raw.execute(statement)
    assert describe(raw, ref) == got
    raw.execute(f'DROP TABLE "{ref}" CASCADE')


def test_quoted_names_and_schema(
    pg_url: str, make_table: MakeTable, raw: psycopg.Connection[tuple[object, ...]]
) -> None:
    odd = make_table("_Odd%Name")
    schema = f"lk_schema_{uuid.uuid4().hex[:8]}"
    raw.execute(f'CREATE SCHEMA "{schema}"')
    try:
        with open_store(url_for(pg_url, odd)) as s:
            s.set(b"p", b"k", b"v")
            assert s.get(b"p", b"k").value == b"v"
            assert list(s.list_partitions()) == [b"p"]
        row = raw.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass(%s)", (f'"{odd}"',)
        ).fetchone()
        assert row == (100,)
        assert raw.execute(f'SELECT value FROM "{odd}_v"').fetchall() == [(b"v",)]

        with open_store(url_for(pg_url, "kv", schema=schema)) as s:
            s.set(b"p", b"k", b"in-schema")
            assert s.get(b"p", b"k").value == b"in-schema"
        names = raw.execute(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s ORDER BY relname",
            (schema,),
        ).fetchall()
        assert {n for (n,) in names} >= {"kv", "kv_0", "kv_99", "kv_v"}
        assert raw.execute(f'SELECT value FROM "{schema}".kv').fetchall() == [(b"in-schema",)]
    finally:
        raw.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_opening_takes_the_lakefs_advisory_lock(
    pg_url: str, table: str, raw: psycopg.Connection[tuple[object, ...]]
) -> None:
    raw.execute("SELECT pg_advisory_lock(%s)", (advisory_lock_id(table),))
    opened: list[Store] = []
    thread = threading.Thread(target=lambda: opened.append(open_store(url_for(pg_url, table))))
    thread.start()
    try:
        time.sleep(0.5)
        assert not opened, "the store was created without waiting for lakeFS's advisory lock"
    finally:
        raw.execute("SELECT pg_advisory_unlock(%s)", (advisory_lock_id(table),))
    thread.join(10)
    assert len(opened) == 1
    opened[0].close()


def test_many_threads_and_processes_open_a_new_table_at_once(
    pg_url: str, table: str, raw: psycopg.Connection[tuple[object, ...]]
) -> None:
    url = url_for(pg_url, table)
    script = (
        "import sys\nfrom lakekv.kv.registry import open_store\n"
        "with open_store(sys.argv[1]) as s:\n    s.set(b'p', sys.argv[2].encode(), b'v')\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, url, f"proc{i}"], cwd=ROOT)
        for i in range(2)
    ]
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def opener(i: int) -> None:
        try:
            barrier.wait()
            with open_store(url) as s:
                s.set(b"p", b"thread%d" % i, b"v")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [p.wait(60) for p in procs] == [0, 0]
    assert errors == []
    with open_store(url) as s:
        keys = [e.key for e in s.scan(b"p")]
    assert keys == sorted([b"proc0", b"proc1"] + [b"thread%d" % i for i in range(4)])
    row = raw.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass(%s)", (f'"{table}"',)
    ).fetchone()
    assert row == (100,)


# --- interoperability with lakeFS (plain SQL in lakeFS's shape) ---------------------------------


def test_written_by_lakekv_read_by_plain_sql(
    store: Store, table: str, raw: psycopg.Connection[tuple[object, ...]]
) -> None:
    entries = [
        Entry(b"graveler", b"repos/r1", b"\x0a\x02r1"),
        Entry(b"graveler", b"repos/r2", b""),
        Entry(b"\xff\x00bin", b"\x00\x01", bytes(range(256))),
    ]
    for e in entries:
        store.set(*e)
    rows = raw.execute(
        f'SELECT partition_key, key, value FROM "{table}" ORDER BY partition_key, key'
    ).fetchall()
    assert rows == [tuple(e) for e in sorted(entries)]
    # lakeFS's own get and scan statements.
    got = raw.execute(
        f'SELECT value FROM "{table}" WHERE key = %s AND partition_key = %s',
        (b"repos/r1", b"graveler"),
    ).fetchone()
    assert got == (b"\x0a\x02r1",)
    page = raw.execute(
        f'SELECT partition_key, key, value FROM "{table}" WHERE partition_key = %s '
        "AND key >= %s ORDER BY key LIMIT %s",
        (b"graveler", b"repos/", 1000),
    ).fetchall()
    assert [r[1] for r in page] == [b"repos/r1", b"repos/r2"]
    # The helper view shows names as text.
    view = raw.execute(
        f"SELECT partition_key, key FROM \"{table}_v\" WHERE partition_key = 'graveler' "
        "ORDER BY key"
    ).fetchall()
    assert view == [("graveler", "repos/r1"), ("graveler", "repos/r2")]


def test_written_by_plain_sql_read_by_lakekv(
    store: Store, table: str, raw: psycopg.Connection[tuple[object, ...]]
) -> None:
    t = f'"{table}"'
    # lakeFS's set, set_if(nil) and set_if(predicate) statements.
    raw.execute(
        f"INSERT INTO {t}(partition_key,key,value) VALUES(%s,%s,%s) "
        "ON CONFLICT (partition_key,key) DO UPDATE SET value = %s",
        (b"kv-internal-metadata", b"kv/schema/version", b"4", b"4"),
    )
    raw.execute(
        f"INSERT INTO {t}(partition_key,key,value) VALUES(%s,%s,%s) ON CONFLICT DO NOTHING",
        (b"graveler", b"repos/r1", b"old"),
    )
    cur = raw.execute(
        f"UPDATE {t} SET value=%s WHERE key=%s AND partition_key=%s AND value=%s",
        (b"new", b"repos/r1", b"graveler", b"old"),
    )
    assert cur.rowcount == 1
    raw.execute(
        f"INSERT INTO {t}(partition_key,key,value) VALUES(%s,%s,%s)",
        (b"r1-abc", b"branches/main", b""),
    )
    assert store.get(b"kv-internal-metadata", b"kv/schema/version").value == b"4"
    got = store.get(b"graveler", b"repos/r1")
    assert got.value == b"new"
    store.set_if(b"graveler", b"repos/r1", b"newer", got.predicate)
    with pytest.raises(PredicateFailedError):
        store.set_if(b"graveler", b"repos/r1", b"x", got.predicate)
    assert store.get(b"r1-abc", b"branches/main").value == b""
    assert list(store.scan(b"graveler")) == [Entry(b"graveler", b"repos/r1", b"newer")]
    assert list(store.list_partitions()) == [b"graveler", b"kv-internal-metadata", b"r1-abc"]
    # And lakeFS's predicate update sees lakekv's write.
    cur = raw.execute(
        f"UPDATE {t} SET value=%s WHERE key=%s AND partition_key=%s AND value=%s",
        (b"by-lakefs", b"repos/r1", b"graveler", b"newer"),
    )
    assert cur.rowcount == 1


def test_size_limits_hold_in_the_primary_key(store: Store) -> None:
    caps = store.capabilities
    assert caps.max_partition_size is not None and caps.max_key_size is not None
    rnd = random.Random(7)
    partition = rnd.randbytes(caps.max_partition_size)
    key = rnd.randbytes(caps.max_key_size)
    big = rnd.randbytes(1 << 20)
    store.set(partition, key, big)
    assert store.get(partition, key).value == big
    assert list(store.scan(partition)) == [Entry(partition, key, big)]


# --- list_partitions ---------------------------------------------------------------------------


@pytest.mark.parametrize("page", [1, 3, 1000])
def test_list_partitions_pages_in_bytewise_order(pg_url: str, table: str, page: int) -> None:
    rnd = random.Random(page)
    names = {rnd.randbytes(rnd.randint(1, 6)) for _ in range(400)} | {b"\x00", b"\xff" * 3}
    with open_store(url_for(pg_url, table, page_size=page, page_cap=max(page, 2))) as s:
        assert list(s.list_partitions()) == []
        s.write_batch([Entry(n, b"k%d" % i, b"v") for n in names for i in range(2)])
        assert list(s.list_partitions()) == sorted(names)
        # Emptying partitions while listing never skips an untouched one.
        ordered = sorted(names)
        seen = []
        for i, name in enumerate(s.list_partitions()):
            seen.append(name)
            if i + 5 < len(ordered) and i % 7 == 0:
                s.delete(ordered[i + 5], b"k0")
                s.delete(ordered[i + 5], b"k1")
        gone = {ordered[i + 5] for i in range(0, len(ordered) - 5, 7)}
        assert set(ordered) - gone <= set(seen) <= set(ordered)
        assert seen == sorted(seen)


# --- write_batch -------------------------------------------------------------------------------


def _prepare(s: Store, n: int) -> list[Entry]:
    """Existing rows: even keys hold v<i>; the batch has half equal, half different, some new."""
    for i in range(0, n, 2):
        s.set(b"p%d" % (i % 3), b"k%04d" % i, b"v%d" % i)
    batch = []
    for i in range(n + 20):
        value = b"v%d" % i if i % 4 == 0 else (b"" if i % 5 == 0 else b"x%d" % i)
        batch.append(Entry(b"p%d" % (i % 3), b"k%04d" % i, value))
    return batch


@pytest.mark.parametrize("policy", list(OnConflict))
def test_write_batch_classifies_like_the_generic_fallback(
    pg_url: str, make_table: MakeTable, policy: OnConflict
) -> None:
    fast_url, slow_url = url_for(pg_url, make_table("a")), url_for(pg_url, make_table("b"))
    with open_store(fast_url) as fast, open_store(slow_url) as slow:
        assert isinstance(fast, PostgresStore)
        batch = _prepare(fast, 300)
        _prepare(slow, 300)
        got = fast.write_batch(batch, policy)
        want = Store._write_batch(slow, batch, policy)  # the per-entry reference
        assert got.total == len(batch)
        assert (got.written, got.unchanged, got.skipped) == (
            want.written,
            want.unchanged,
            want.skipped,
        )
        assert sorted(got.conflicts) == sorted(want.conflicts)
        for p in (b"p0", b"p1", b"p2"):
            assert list(fast.scan(p)) == list(slow.scan(p))
        expected = {
            OnConflict.FAIL: (170, 75, 0, 75),
            OnConflict.SKIP: (170, 75, 75, 0),
            OnConflict.OVERWRITE: (245, 75, 0, 0),
        }[policy]
        assert (got.written, got.unchanged, got.skipped, len(got.conflicts)) == expected
        again = fast.write_batch(batch, policy)
        if policy is OnConflict.OVERWRITE:
            assert again == BatchResult(unchanged=len(batch))
        else:
            assert again.written == 0 and again.unchanged == got.written + got.unchanged


def test_write_batch_large_values_and_many_partitions(store: Store) -> None:
    big = bytes(range(256)) * 4096
    batch = [Entry(b"part%d" % i, b"key", big if i == 0 else b"%d" % i) for i in range(500)]
    assert store.write_batch(batch) == BatchResult(written=500)
    assert store.get(b"part0", b"key").value == big
    assert len(list(store.list_partitions())) == 500


# --- errors ------------------------------------------------------------------------------------


def test_unreachable_server_fails_fast_without_the_password() -> None:
    start = time.monotonic()
    with pytest.raises(StoreUnavailableError) as info:
        open_store("postgres://u:secret@127.0.0.1:1/x?connect_timeout=2")
    assert time.monotonic() - start < 3
    assert "secret" not in str(info.value) and "secret" not in repr(info.value)


def test_cli_unreachable_exits_3_with_one_line() -> None:
    cmd = [
        sys.executable,
        "-c",
        "from lakekv.cli.main import main; main()",
        "--store",
        "postgres://u:secret@127.0.0.1:1/x",
        "get",
        "a",
        "b",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "secret" not in proc.stderr and "secret" not in proc.stdout


@pytest.mark.parametrize(
    "params",
    [
        "bogus=1",
        "pool_size=0",
        "pool_size=2&pool_min=3",
        "pool_timeout=x",
        "connect_timeout=0",
        "sslmode=sometimes",
        "table=",
        "table=" + "t" * 61,
        "schema=" + "s" * 64,
        "page_size=0",
    ],
)
def test_bad_parameters_are_configuration_errors(params: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        open_store(f"postgres://u:secret@127.0.0.1:1/db?{params}")
    assert "secret" not in str(info.value)


def test_bad_path_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        open_store("postgresql://u:secret@127.0.0.1:1/db/extra")


def test_errors_and_repr_hide_the_password(pg_url: str, table: str) -> None:
    # The test server trusts local users, so any password opens it.
    secret_url = StoreURL.parse(url_for(pg_url, table))
    secret_url = StoreURL(
        secret_url.scheme,
        secret_url.username,
        "s3cr3t-pw",
        secret_url.host,
        secret_url.port,
        secret_url.path,
        secret_url.query,
    )
    text = secret_url.render(reveal_password=True)
    with open_store(text) as a, open_store(text) as b:
        assert "s3cr3t-pw" not in repr(a) and "s3cr3t-pw" not in str(a.url)
        a.set(b"p", b"k", b"v")
        a.destroy()
        with pytest.raises(StoreError) as info:
            b.get(b"p", b"k")
        assert not isinstance(info.value, StoreUnavailableError)
        assert "s3cr3t-pw" not in str(info.value)


def test_destroy_drops_table_partitions_and_view(
    store: Store, table: str, raw: psycopg.Connection[tuple[object, ...]]
) -> None:
    store.set(b"p", b"k", b"v")
    store.destroy()
    left = raw.execute(
        "SELECT count(*) FROM pg_class WHERE relname = %s OR relname = %s OR relname LIKE %s",
        (table, f"{table}_v", f"{table}\\_%"),
    ).fetchone()
    assert left == (0,)


# --- surviving the server ----------------------------------------------------------------------


def _terminate(raw: psycopg.Connection[tuple[object, ...]], app: str) -> int:
    rows = raw.execute(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = %s",
        (app,),
    ).fetchall()
    return len(rows)


def test_recovers_after_pg_terminate_backend(
    pg_url: str, table: str, raw: psycopg.Connection[tuple[object, ...]]
) -> None:
    app = f"lakekv-test-{uuid.uuid4().hex[:8]}"
    with open_store(url_for(pg_url, table, application_name=app, pool_min=3)) as s:
        s.set(b"p", b"k", b"v0")
        # Several threads at once, so the pool holds several connections.
        threads = [
            threading.Thread(target=lambda i=i: s.set(b"p", b"t%d" % i, b"x")) for i in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert _terminate(raw, app) >= 1
        # Each operation finds dead connections first and must still succeed.
        assert s.get(b"p", b"k").value == b"v0"
        assert _terminate(raw, app) >= 1
        s.set_if(b"p", b"k", b"v1", b"v0")
        assert _terminate(raw, app) >= 1
        s.set_if(b"p", b"new", b"n", None)
        s.set_if(b"p", b"new", b"m", MUST_EXIST)
        assert _terminate(raw, app) >= 1
        assert [e.key for e in s.scan(b"p")][:2] == [b"k", b"new"]
        assert _terminate(raw, app) >= 1
        assert s.write_batch([Entry(b"q", b"a", b"1")]) == BatchResult(written=1)
        assert _terminate(raw, app) >= 1
        assert list(s.list_partitions()) == [b"p", b"q"]
        assert _terminate(raw, app) >= 1
        s.delete(b"p", b"new")
        assert s.get(b"p", b"k").value == b"v1"


def test_pool_timeout_is_unavailable(pg_url: str, table: str) -> None:
    with open_store(url_for(pg_url, table, pool_size=1, pool_timeout=0.2)) as s:
        assert isinstance(s, PostgresStore)
        lender, held = s._checkout()  # occupy the only connection
        try:
            with pytest.raises(StoreUnavailableError, match="pool_size=1"):
                s.get(b"p", b"k")
        finally:
            lender.give(held)
        s.set(b"p", b"k", b"v")


def test_more_threads_than_connections(pg_url: str, table: str) -> None:
    url = url_for(pg_url, table, pool_size=2, pool_timeout=10).replace(
        "postgres://", "postgresql://", 1
    )
    with open_store(url) as s:
        assert isinstance(s, PostgresStore)
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                for j in range(40):
                    key = b"t%d-%d" % (i, j)
                    s.set(b"p", key, b"v")
                    s.set_if(b"p", key, b"w", b"v")
                    assert s.get(b"p", key).value == b"w"
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert len(list(s.scan(b"p"))) == 8 * 40


def _relations(raw: psycopg.Connection[tuple[object, ...]], table: str) -> int:
    row = raw.execute(
        "SELECT count(*) FROM pg_class WHERE relname = %s OR relname LIKE %s",
        (table, table + "\\_%"),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def test_a_missing_table_opened_without_create_runs_no_ddl(
    pg_url: str, make_table: MakeTable, raw: psycopg.Connection[tuple[object, ...]]
) -> None:
    """A mistyped ?table= as a migration source used to create 100 tables and a view."""
    table = make_table("_typo")
    for kwargs in ({"create": False}, {"read_only": True}):
        with pytest.raises(StoreNotFoundError, match=f"no table '{table}'"):
            open_store(url_for(pg_url, table), **kwargs)  # type: ignore[arg-type]
    assert _relations(raw, table) == 0
    dst = f"sqlite:///{ROOT}/never-created-{RUN_ID}.db"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "lakekv",
            "copy",
            "--sync",
            "--from",
            url_for(pg_url, table),
            "--to",
            dst,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert _relations(raw, table) == 0


def test_read_only_sessions_refuse_writes_even_below_lakekv(pg_url: str, table: str) -> None:
    with open_store(url_for(pg_url, table)) as s:
        s.set(b"p", b"k", b"v")
    with open_store(url_for(pg_url, table), read_only=True) as ro:
        assert ro.get(b"p", b"k").value == b"v"
        with pytest.raises(StoreReadOnlyError):
            ro.set(b"p", b"k", b"w")
        assert isinstance(ro, PostgresStore)
        with ro._pool_connection() as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute(f'DELETE FROM "{table}"')


def test_identity_folds_host_aliases_default_port_and_parameter_order(
    pg_url: str, table: str
) -> None:
    base = StoreURL.parse(url_for(pg_url, table))
    if base.host not in ("127.0.0.1", "localhost"):
        pytest.skip("needs a server on the loopback interface")
    port = base.port or 5432
    spellings = [
        base.render(reveal_password=True),
        StoreURL(
            base.scheme,
            base.username,
            base.password,
            "localhost",
            port,
            base.path,
            (("pool_size", "3"), ("table", table)),
        ).render(reveal_password=True),
        StoreURL(
            "postgresql",
            base.username,
            base.password,
            "127.0.0.1",
            port,
            base.path,
            (("table", table), ("application_name", "x")),
        ).render(reveal_password=True),
    ]
    stores = [open_store(u) for u in spellings]
    try:
        assert len({s.identity() for s in stores}) == 1
        with open_store(url_for(pg_url, table + "_other")) as other:
            assert other.identity() != stores[0].identity()
            other.destroy()
        with pytest.raises(SameStoreError):
            copy(spellings[0], spellings[1], sync=True)
        with pytest.raises(SameStoreError):
            verify(spellings[2], spellings[0])
    finally:
        for s in stores:
            s.close()


# --- change feeds -------------------------------------------------------------------------------


def test_feed_lines_are_read_exactly() -> None:
    """Only the store's tables (matched whole, a quoted name with ": " too) and this feed's
    lakekv notes count; every key of a change is listed; a change without keys is unknown."""
    prefixes = ["table public.kv: ", "table public.kv_1: ", 'table "odd: name".kv_2: ']
    lines = [
        "table public.kv_1: INSERT: partition_key[bytea]:'\\x7031' key[bytea]:'\\x6b31'",
        "table public.kv_10: INSERT: partition_key[bytea]:'\\x7032' key[bytea]:'\\x6b32'",
        "table public.kv_1: UPDATE: old-key: partition_key[bytea]:'\\x7031' "
        "key[bytea]:'\\x6b30' new-tuple: partition_key[bytea]:'\\x7031' key[bytea]:'\\x6b33'",
        "table \"odd: name\".kv_2: DELETE: partition_key[bytea]:'\\x7033' key[bytea]:'\\x'",
        "message: transactional: 1 prefix: lakekv, sz: 14 content:lakekv_x ready",
        "message: transactional: 1 prefix: lakekv, sz: 14 content:lakekv_y ready",
        "message: transactional: 1 prefix: other, sz: 13 content:lakekv_x fake",
        "message: transactional: 1 prefix: lakekv, sz: 14 content:lakekv_x flush",
    ]
    batch = feed.parse("lakekv_x", lines, prefixes, "0/1")
    assert batch.keys == {b"p1": {b"k1", b"k0", b"k3"}, b"p3": {b""}}
    assert batch.notes == ["ready"] and batch.changes == 3 and batch.unknown is None
    assert batch.position == "0/1"
    odd = feed.parse(
        "lakekv_x",
        ["table public.kv_1: DELETE: (no-tuple-data)", "table public.kv: TRUNCATE: (no-flags)"],
        prefixes,
        "0/2",
    )
    assert odd.unknown is not None and odd.unknown.startswith("DELETE on public.kv_1")
    assert odd.changes == 2 and odd.keys == {}
    # One TRUNCATE lists every table it empties; one of ours among them is enough.
    for tables, ours in (
        ("public.kv, public.kv_1, public.other", True),
        ('public.x, "odd: name".kv_2', True),
        ("public.kv_10, public.kvx", False),
    ):
        truncate = feed.parse(
            "lakekv_x", [f"table {tables}: TRUNCATE: (no-flags)"], prefixes, "0/3"
        )
        assert (truncate.unknown is not None) is ours, tables


def test_a_truncate_makes_the_change_feed_untrusted(
    pg_url: str, make_table: MakeTable, raw: psycopg.Connection[tuple[object, ...]]
) -> None:
    src_table, dst_table = make_table("_s"), make_table("_d")
    with (
        open_store(url_for(pg_url, src_table)) as src,
        open_store(url_for(pg_url, dst_table)) as dst,
    ):
        src.write_batch([Entry(b"p", b"k%d" % i, b"v") for i in range(10)])
        src.set(SCHEMA_PARTITION, SCHEMA_KEY, LAKEFS_SCHEMA_VERSION)
        try:
            assert copy(src, dst, track_changes=True).change_feed_ready
            raw.execute(f'TRUNCATE "{src_table}"')
            src.set(SCHEMA_PARTITION, SCHEMA_KEY, LAKEFS_SCHEMA_VERSION)
            with pytest.raises(UnsafeOperationError, match=r"not told by key \(TRUNCATE of"):
                sync(src, dst, method="changes")
            report = sync(src, dst)
            assert report.method == "digests" and report.deleted == 10
            assert any("TRUNCATE" in w for w in report.warnings)
            assert verify(src, dst).equal
        finally:
            untrack(src, dst)


def test_recording_changes_needs_wal_level_logical(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server without ``wal_level = logical`` is told apart before anything is created."""
    real = psycopg.Connection.execute

    def execute(
        self: psycopg.Connection[tuple[object, ...]], query: object, *a: object, **k: object
    ) -> object:
        if query == "SHOW wal_level":
            query = "SELECT 'replica'::text"
        return real(self, query, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(psycopg.Connection, "execute", execute)
    with pytest.raises(UnsupportedError, match=r"wal_level = logical \(it is replica"):
        store.feed_start("lakekv_never_made")
    monkeypatch.undo()
    assert not store.feed_exists("lakekv_never_made")
