"""MySQL / MariaDB driver tests beyond the shared contract: layout, bytewise order, limits
checked before I/O, one-statement compare-and-set, bulk classification, killed connections,
errors and URLs.

Run with ``pytest tests/test_mysql.py --store mysql://root@127.0.0.1:3306/test`` (or set
``LAKEKV_TEST_MYSQL``). Without a reachable server the tests are skipped, unless ``CI`` is set.
Each test works in its own table, dropped afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeAlias

import pytest

from lakekv.errors import (
    ConfigurationError,
    InvalidArgumentError,
    PredicateFailedError,
    StoreError,
    StoreUnavailableError,
)
from lakekv.kv.registry import open_store
from lakekv.kv.store import MUST_EXIST, Entry, OnConflict, Store
from lakekv.kv.url import StoreURL
from lakekv.testing import RUN_ID, require_available

pytest.importorskip("pymysql")

import pymysql

from lakekv.kv.drivers.mysql import (
    MAX_KEY_SIZE,
    MAX_PARTITION_SIZE,
    MAX_VALUE_SIZE,
    MIN_MAX_ALLOWED_PACKET,
    MySQLStore,
)

DEFAULT_URL = "mysql://root@127.0.0.1:3306/test"
ROOT = Path(__file__).resolve().parent.parent

Raw: TypeAlias = "pymysql.connections.Connection[Any]"


@pytest.fixture(scope="module")
def my_url(pytestconfig: pytest.Config) -> str:
    """The server under test: the first ``--store mysql://…``/``mariadb://…``, else a default."""
    urls = [
        u
        for u in pytestconfig.getoption("--store")
        if StoreURL.parse(u).scheme in ("mysql", "mariadb")
    ]
    url = urls[0] if urls else os.environ.get("LAKEKV_TEST_MYSQL", DEFAULT_URL)
    return StoreURL.parse(url).without_params().render(reveal_password=True)


def connect(url: str) -> Raw:
    u = StoreURL.parse(url)
    return pymysql.connect(
        host=u.host or "localhost",
        port=u.port or 3306,
        user=u.username,
        password=u.password or "",
        database=u.path.lstrip("/"),
        autocommit=True,
        binary_prefix=True,
    )


@pytest.fixture
def raw(my_url: str) -> Iterator[Raw]:
    require_available(my_url)
    conn = connect(my_url)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def make_table(my_url: str) -> Iterator[Callable[[], str]]:
    require_available(my_url)
    made: list[str] = []

    def make() -> str:
        name = f"lk_{RUN_ID}_{uuid.uuid4().hex[:8]}"
        made.append(name)
        return name

    yield make
    conn = connect(my_url)
    try:
        for name in made:
            conn.cursor().execute(f"DROP TABLE IF EXISTS `{name}`")
    finally:
        conn.close()


def url_for(my_url: str, table: str, **params: str | int) -> str:
    return StoreURL.parse(my_url).with_params(table=table, **params).render(reveal_password=True)


@pytest.fixture
def table(make_table: Callable[[], str]) -> str:
    return make_table()


@pytest.fixture
def store(my_url: str, table: str) -> Iterator[Store]:
    s = open_store(url_for(my_url, table))
    try:
        yield s
    finally:
        s.close()


# --- layout ------------------------------------------------------------------------------------


def test_layout_is_binary_columns_with_the_pair_as_primary_key(
    store: Store, raw: Raw, table: str
) -> None:
    cur = raw.cursor()
    cur.execute(
        "SELECT column_name, column_type, is_nullable, collation_name "
        "FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = %s "
        "ORDER BY ordinal_position",
        (table,),
    )
    assert [tuple(r) for r in cur.fetchall()] == [
        ("partition_key", f"varbinary({MAX_PARTITION_SIZE})", "NO", None),
        ("key", f"varbinary({MAX_KEY_SIZE})", "NO", None),
        ("value", "longblob", "NO", None),
    ]
    cur.execute(
        "SELECT column_name FROM information_schema.key_column_usage WHERE "
        "table_schema = DATABASE() AND table_name = %s AND constraint_name = 'PRIMARY' "
        "ORDER BY ordinal_position",
        (table,),
    )
    assert [r[0] for r in cur.fetchall()] == ["partition_key", "key"]
    cur.execute(
        "SELECT engine FROM information_schema.tables "
        "WHERE table_schema = DATABASE() AND table_name = %s",
        (table,),
    )
    assert cur.fetchone() == ("InnoDB",)
    # Plain SQL sees exactly what the store wrote.
    store.set(b"p\x00", b"k\xff", b"")
    cur.execute(f"SELECT partition_key, `key`, value FROM `{table}`")
    assert cur.fetchall() == ((b"p\x00", b"k\xff", b""),)


def test_order_is_bytewise_with_no_padding_or_case_folding(store: Store) -> None:
    keys = [b"a", b"a ", b"a\x00", b"A", b"b", b"\xff", b"\x00", b"a  ", b"\xc3\xa9", b"e"]
    for k in keys:
        store.set(b"p", k, k)
    assert [e.key for e in store.scan(b"p")] == sorted(keys)
    assert store.get(b"p", b"a ").value == b"a "
    # A value that differs only by a trailing space is a different value.
    with pytest.raises(PredicateFailedError):
        store.set_if(b"p", b"a", b"new", b"a ")


def test_an_existing_table_is_used_as_is(my_url: str, raw: Raw, table: str) -> None:
    cur = raw.cursor()
    cur.execute(
        f"CREATE TABLE `{table}` (partition_key VARBINARY(1024) NOT NULL, "
        "`key` VARBINARY(2048) NOT NULL, value LONGBLOB NOT NULL, "
        "PRIMARY KEY (partition_key, `key`)) ENGINE=InnoDB"
    )
    cur.execute(f"INSERT INTO `{table}` VALUES (%s, %s, %s)", (b"p", b"k", b"from sql"))
    with open_store(url_for(my_url, table)) as s:
        assert s.get(b"p", b"k").value == b"from sql"
        assert list(s.list_partitions()) == [b"p"]


def test_mariadb_scheme_is_the_same_driver(my_url: str, table: str) -> None:
    url = url_for(my_url, table).replace("mysql://", "mariadb://", 1)
    with open_store(url) as s:
        assert isinstance(s, MySQLStore)
        s.set(b"p", b"k", b"v")
        assert s.get(b"p", b"k").value == b"v"


# --- compare-and-set -------------------------------------------------------------------------


def test_set_if_with_the_same_value_succeeds(store: Store) -> None:
    """An UPDATE that changes nothing still matched the row (CLIENT_FOUND_ROWS)."""
    store.set(b"p", b"k", b"v")
    _, pred = store.get(b"p", b"k")
    store.set_if(b"p", b"k", b"v", pred)
    store.set_if(b"p", b"k", b"v", MUST_EXIST)
    with pytest.raises(PredicateFailedError):
        store.set_if(b"p", b"k", b"v", None)


def test_set_if_races_have_one_winner(store: Store) -> None:
    store.set(b"p", b"counter", b"0")
    wins: list[int] = []

    def worker() -> None:
        for _ in range(25):
            while True:
                value, pred = store.get(b"p", b"counter")
                try:
                    store.set_if(b"p", b"counter", b"%d" % (int(value) + 1), pred)
                except PredicateFailedError:
                    continue
                wins.append(1)
                break

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get(b"p", b"counter").value == b"100"
    assert len(wins) == 100


# --- limits ------------------------------------------------------------------------------------


def test_limits_are_declared_and_checked_before_any_io(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    caps = store.capabilities
    assert (caps.max_partition_size, caps.max_key_size) == (1024, 2048)
    assert caps.max_partition_size + caps.max_key_size == 3072  # InnoDB's index limit
    assert caps.max_value_size == MAX_VALUE_SIZE
    assert MAX_VALUE_SIZE * 2 + 3 * (MAX_PARTITION_SIZE + MAX_KEY_SIZE) < MIN_MAX_ALLOWED_PACKET

    def no_io(*args: object, **kwargs: object) -> None:
        raise AssertionError("I/O before the limit check")

    monkeypatch.setattr(store, "_execute", no_io)
    for call in (
        lambda: store.set(b"p", b"k" * (MAX_KEY_SIZE + 1), b"v"),
        lambda: store.set(b"p" * (MAX_PARTITION_SIZE + 1), b"k", b"v"),
        lambda: store.set(b"p", b"k", bytes(MAX_VALUE_SIZE + 1)),
        lambda: store.write_batch([Entry(b"p", b"k" * (MAX_KEY_SIZE + 1), b"")]),
    ):
        with pytest.raises(InvalidArgumentError):
            call()


def test_largest_items_fit(store: Store) -> None:
    p, k = b"\xff" * MAX_PARTITION_SIZE, b"\x00" * MAX_KEY_SIZE
    value = b"\x00'\\\"" * (MAX_VALUE_SIZE // 4)  # escapes to twice its size
    store.set(p, k, value)
    assert store.get(p, k).value == value
    assert store.write_batch([Entry(p, k, value)]).unchanged == 1


@pytest.mark.serial  # SET GLOBAL: every other client's new connections see it
def test_small_max_allowed_packet_is_refused(my_url: str, raw: Raw, table: str) -> None:
    cur = raw.cursor()
    cur.execute("SELECT @@global.max_allowed_packet")
    row = cur.fetchone()
    assert row is not None
    cur.execute("SET GLOBAL max_allowed_packet = 4194304")
    try:
        with pytest.raises(ConfigurationError, match="max_allowed_packet"):
            open_store(url_for(my_url, table))
    finally:
        cur.execute(f"SET GLOBAL max_allowed_packet = {int(row[0])}")


# --- bulk writes -------------------------------------------------------------------------------


def test_write_batch_classifies_in_one_transaction(store: Store) -> None:
    store.set(b"p", b"same", b"1")
    store.set(b"p", b"diff", b"old")
    batch = [Entry(b"p", b"same", b"1"), Entry(b"p", b"diff", b"new"), Entry(b"q", b"n", b"")]
    fail = store.write_batch(batch)
    assert (fail.written, fail.unchanged, fail.conflicts) == (1, 1, [batch[1]])
    assert store.get(b"p", b"diff").value == b"old"
    skip = store.write_batch(batch, OnConflict.SKIP)
    assert (skip.written, skip.unchanged, skip.skipped) == (0, 2, 1)
    over = store.write_batch(batch, OnConflict.OVERWRITE)
    assert (over.written, over.unchanged) == (1, 2)
    assert store.get(b"p", b"diff").value == b"new"


def test_large_batch_spans_many_statements(store: Store) -> None:
    batch = [Entry(b"p", b"k%06d" % i, bytes(300)) for i in range(20000)]  # ~6 MB
    assert store.write_batch(batch).written == 20000
    assert sum(1 for _ in store.scan(b"p")) == 20000
    again = store.write_batch(batch, OnConflict.OVERWRITE)
    assert (again.written, again.unchanged) == (0, 20000)


# --- connections and errors ---------------------------------------------------------------


def kill_store_connections(raw: Raw, store: Store) -> int:
    """Kill every server connection of ``store``'s pool; how many were killed."""
    assert isinstance(store, MySQLStore)
    pool = store._pool
    assert pool is not None
    ids = [c.thread_id() for c in pool._idle]
    for thread_id in ids:
        raw.cursor().execute(f"KILL CONNECTION {thread_id}")
    return len(ids)


def test_connections_killed_while_idle_are_replaced(store: Store, raw: Raw) -> None:
    store.set(b"p", b"k", b"v")
    assert kill_store_connections(raw, store) >= 1
    assert store.get(b"p", b"k").value == b"v"  # a read is sent again
    assert kill_store_connections(raw, store) >= 1
    store.set_if(b"p", b"k", b"w", MUST_EXIST)  # checked before use, sent once
    assert kill_store_connections(raw, store) >= 1
    assert store.write_batch([Entry(b"p", b"n", b"")]).written == 1


def test_server_errors_are_translated(store: Store, raw: Raw, table: str) -> None:
    raw.cursor().execute(f"DROP TABLE `{table}`")
    with pytest.raises(StoreError, match="doesn't exist") as info:
        store.get(b"p", b"k")
    assert isinstance(info.value.__cause__, pymysql.err.ProgrammingError)


def test_unreachable_server_is_unavailable_without_the_password() -> None:
    with pytest.raises(StoreUnavailableError) as info:
        open_store("mysql://root:s3cret-pw@127.0.0.1:1/test?connect_timeout=2")
    assert "s3cret-pw" not in str(info.value) and "s3cret-pw" not in repr(info.value)


def test_wrong_password_is_a_configuration_error_and_not_printed(my_url: str) -> None:
    """A wrong user or password is exit 2 on every engine (retrying cannot help)."""
    require_available(my_url)
    u = StoreURL.parse(my_url)
    bad = StoreURL(u.scheme, "lakekv_nobody", "s3cret-pw", u.host, u.port, u.path)
    with pytest.raises(ConfigurationError) as info:
        open_store(bad.render(reveal_password=True))
    assert not isinstance(info.value, StoreUnavailableError)
    assert "s3cret-pw" not in str(info.value)


def test_unknown_database_is_a_configuration_error(my_url: str) -> None:
    require_available(my_url)
    url = StoreURL.parse(my_url)
    missing = StoreURL(url.scheme, url.username, url.password, url.host, url.port, "/nope_db")
    with pytest.raises(ConfigurationError, match="nope_db"):
        open_store(missing.render(reveal_password=True))


def test_cli_unreachable_exits_3_with_one_line() -> None:
    cmd = [
        sys.executable,
        "-c",
        "from lakekv.cli.main import main; main()",
        "--store",
        "mysql://u:s3cret-pw@127.0.0.1:1/x?connect_timeout=2",
        "get",
        "a",
        "b",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert proc.returncode == 3, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "s3cret-pw" not in proc.stderr and "s3cret-pw" not in proc.stdout


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root@127.0.0.1:1",
        "mysql://root@127.0.0.1:1/",
        "mysql://root@127.0.0.1:1/a/b",
        "mysql://root@127.0.0.1:1/test?table=drop%20table",
        "mysql://root@127.0.0.1:1/test?table=" + "t" * 65,
        "mysql://root@127.0.0.1:1/test?pool_size=0",
        "mysql://root@127.0.0.1:1/test?connect_timeout=soon",
        "mysql://root@127.0.0.1:1/test?bogus=1",
    ],
)
def test_bad_urls_are_configuration_errors_before_connecting(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_store(url)


@pytest.mark.parametrize("local_infile", ["true", "false"])
def test_bulk_paths_keep_every_byte(my_url: str, table: str, local_infile: str) -> None:
    """LOAD DATA (escaped tab-separated text) and multi-row INSERT both store any bytes."""
    awkward = [b"\\", b"\t", b"\n", b"\x00", b"\\N", b"\r\n", b"a\\tb", bytes(range(256))]
    batch = [Entry(p, k + b"%d" % i, k) for i, k in enumerate(awkward) for p in awkward[:3]]
    with open_store(url_for(my_url, table, local_infile=local_infile)) as s:
        assert isinstance(s, MySQLStore)
        assert s.load_data is (local_infile == "true")
        assert s.write_batch(batch).written == len(batch)
        for e in batch:
            assert s.get(e.partition, e.key).value == e.value
        again = s.write_batch([*batch, Entry(b"new", b"k", b"")])
        assert (again.written, again.unchanged) == (1, len(batch))


def test_only_bulk_connections_accept_local_infile(store: Store) -> None:
    assert isinstance(store, MySQLStore)
    store.write_batch([Entry(b"p", b"k", b"v")])
    store.get(b"p", b"k")
    assert store._pool is not None and store._bulk_pool is not None
    plain = [c.client_flag & pymysql.constants.CLIENT.LOCAL_FILES for c in store._pool._idle]
    bulk = [c.client_flag & pymysql.constants.CLIENT.LOCAL_FILES for c in store._bulk_pool._idle]
    assert plain and not any(plain)
    assert bulk and all(bulk)
