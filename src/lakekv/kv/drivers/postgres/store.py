"""``postgres://user:password@host:5432/db?table=kv`` — PostgreSQL, in exactly lakeFS's layout.

URL: ``postgres://`` or ``postgresql://``; user, password, host, port and database as libpq
takes them (an absent part falls back to libpq's defaults and ``PG*`` environment variables).
Parameters:

``table``            table name (default ``kv``, as lakeFS); at most 59 bytes, no control
                     characters, no leading or trailing space
``schema``           schema holding the table (default: the connection's ``search_path``)
``pool_size``        most connections opened at once (default 25, lakeFS ``max_open_connections``)
``pool_min``         connections kept open when idle (default 1)
``pool_timeout``     seconds to wait for a free connection before StoreUnavailableError (30)
``max_lifetime``     seconds before a connection is replaced (default 300, lakeFS's 5 minutes)
``connect_timeout``  seconds to establish a connection (default 5)
``sslmode``, ``sslrootcert``, ``sslcert``, ``sslkey``, ``application_name`` (default ``lakekv``)
                     passed to libpq
``page_size``/``page_cap``  scan pages (default 1000, lakeFS's page size, doubling up to 5000)

Layout (lakeFS ``pkg/kv/postgres``, which must keep working on the same database): table
``kv (partition_key BYTEA, key BYTEA, value BYTEA, PRIMARY KEY (partition_key, key))``
``PARTITION BY HASH (partition_key)`` with 100 partitions ``kv_0`` … ``kv_99``, and a view
``kv_v`` showing the names as text. For another table name ``T`` the partitions are ``T_0`` …
``T_99`` and the view ``T_v``. Identifiers are quoted, so the name's case is kept. Opening
checks the catalog; if anything is missing it runs lakeFS's DDL (all ``IF NOT EXISTS`` /
``CREATE OR REPLACE VIEW``) while holding ``pg_advisory_lock(advisory_lock_id(table))``, so
any number of processes, lakekv or lakeFS, may open a new table at once. Opened with
``create=False`` it runs no DDL at all: a missing table is StoreNotFoundError naming it (an
incomplete layout is used as it is). ``read_only=True`` also makes every session read-only
(``default_transaction_read_only``). The identity is the server (``localhost``,
``127.0.0.1`` and ``::1`` are one host; 5432 is the default port), the database, and the
schema and table the name resolves to.

Behaviour: every statement runs in autocommit on a connection lent from a
``psycopg_pool.ConnectionPool`` (through a cheaper most-recently-used front, ``Lender``) and
given back straight after, so one store serves many threads and iterators hold nothing between
pages. Queries are lakeFS's (``set_if`` with ``None`` is ``INSERT … ON CONFLICT DO NOTHING``,
with ``MUST_EXIST`` an ``UPDATE``, with a predicate ``UPDATE … AND value = predicate``; success
is exactly one affected row); the predicate is the previous value. Results are fetched in
binary. Connections the server closed while idle (restart, ``pg_terminate_backend``) are
survived: a read, ``set`` or ``delete`` that meets one is sent again on a connection checked
first; a ``set_if`` or a batch checks its connection before use (a readable idle socket means
the server hung up; no round trip), and a batch whose connection breaks before its commit is
sent again. Anything else that breaks a connection raises StoreUnavailableError (retryable);
``psycopg.OperationalError`` and pool timeouts map to it too, other database errors to
StoreError. Messages never contain the password.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout, TooManyRequests

from lakekv.errors import (
    ConfigurationError,
    LakekvError,
    StoreClosedError,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
)
from lakekv.kv.contract import SnapshotReads
from lakekv.kv.drivers.postgres import feed
from lakekv.kv.drivers.postgres.bulk import BulkWriter
from lakekv.kv.drivers.postgres.pool import (
    Borrowed,
    Connection,
    Execute,
    Lender,
    fetchall,
    fetchone,
    rowcount,
)
from lakekv.kv.drivers.postgres.raw import RAW_FORMAT, RawRows
from lakekv.kv.drivers.postgres.snapshot import Snapshot
from lakekv.kv.store import (
    MUST_EXIST,
    BatchResult,
    Capabilities,
    Entry,
    FeedBatch,
    OnConflict,
    OpenOptions,
    PartitionDigest,
    RangeDigest,
    RawChunk,
    ScanPaging,
    Store,
    ValueWithPredicate,
    value_predicate,
)
from lakekv.kv.url import ParamReader, StoreURL, redact

T = TypeVar("T")

PARTITIONS: Final = 100
"""Hash partitions of the table; lakeFS's ``DefaultPartitions``, never to be changed."""
MAX_TABLE_NAME_BYTES: Final = 59
"""So that ``<table>_99`` and the name of its row type's array, ``_<table>_99``, fit
PostgreSQL's 63-byte identifiers (a 60-byte name fails: "could not form array type name")."""
_MAX_IDENT_BYTES: Final = 63
_SSLMODES: Final = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
DIGEST_SCHEME: Final = "postgres-hash-array-v1"
"""Digests (see the store contract): bucket ``hash_array(ARRAY[key]) & mask``, row hash
``hash_array_extended(ARRAY[key, value], 0)``, bucket digest their ``bit_xor`` (PostgreSQL
14 or later). The hashes are PostgreSQL's own (platform-dependent), so two servers are only
compared after their ``digest_probe()`` results agree. ``digest_partition``'s entry hash
is ``hash_array_extended(ARRAY[int4send(length(key)) || key || value], ENTRY_HASH_SEED)``:
the entry's bytes hashed in one pass with another seed, not the row hash's combination of
a key hash and a value hash."""
ENTRY_HASH_SEED: Final = 0x6C616B656B76
_DIGEST_ROWS_PER_BUCKET: Final = 16
_FNV_OFFSET: Final = 0x811C9DC5
_FNV_PRIME: Final = 0x01000193


def advisory_lock_id(table: str) -> int:
    """The ``pg_advisory_lock`` key lakeFS uses for ``table``: FNV-1a 32 of ``lakefs:<table>``.

    ``advisory_lock_id("kv") == 4109714936``.
    """
    h = _FNV_OFFSET
    for byte in ("lakefs:" + table).encode():
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def partition_table_names(table: str) -> list[str]:
    """The names of the table's hash partitions: ``<table>_0`` … ``<table>_99``."""
    return [f"{table}_{i}" for i in range(PARTITIONS)]


def view_name(table: str) -> str:
    """The name of lakeFS's helper view for ``table``: ``<table>_v``."""
    return f"{table}_v"


@dataclass(frozen=True)
class PostgresSettings:
    """What a ``postgres://`` URL says, besides paging (see the module docstring)."""

    conninfo: str
    where: str
    table: str
    schema: str | None
    pool_size: int
    pool_min: int
    pool_timeout: float
    max_lifetime: float
    connect_timeout: int
    server: str = ""
    """``host:port/dbname`` as written, with local host aliases and the default port folded."""


_NO_DATABASE = re.compile(r'database "[^"]*" does not exist')
_AUTH_FAILED = re.compile(
    r"password authentication failed|no pg_hba\.conf entry|role \"[^\"]*\" does not exist"
)
_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1", "localhost.localdomain"}


def _server_name(url: StoreURL, dbname: str) -> str:
    host = (url.host or "").lower()
    if host in _LOCAL_HOSTS or host.startswith("/"):
        host = "localhost"  # TCP loopback or the local socket directory: this machine
    return f"{host}:{url.port or 5432}/{dbname or url.username or ''}"


class PostgresStore(Store):
    """The PostgreSQL driver; see the module docstring for URL, layout and behaviour."""

    scheme = "postgres"
    capabilities = Capabilities(
        list_partitions=True,
        native_write_batch=True,
        # A B-tree entry of the primary key (partition, key) must stay under 2704 bytes;
        # this split leaves room for lakeFS's object paths (S3 allows 1024 bytes).
        max_partition_size=1024,
        max_key_size=1536,
        # bytea holds at most 1 GiB including its 4-byte header.
        max_value_size=(1 << 30) - 5,
        snapshot_reads=True,
        digests=DIGEST_SCHEME,
        raw_rows=RAW_FORMAT,
        range_digests=True,
        change_feed=True,
    )
    driver_errors = (psycopg.Error,)

    def __init__(
        self,
        url: StoreURL,
        paging: ScanPaging,
        options: OpenOptions,
        settings: PostgresSettings,
    ) -> None:
        super().__init__(url, paging, options)
        self._settings = settings
        self.table = settings.table
        self.schema = settings.schema
        self._lender: Lender | None = None

        t = self._quote(self.table)
        self._q_get = f"SELECT value FROM {t} WHERE partition_key = %s AND key = %s"
        self._q_set = (
            f"INSERT INTO {t} (partition_key, key, value) VALUES (%s, %s, %s) "
            "ON CONFLICT (partition_key, key) DO UPDATE SET value = excluded.value"
        )
        self._q_create = (
            f"INSERT INTO {t} (partition_key, key, value) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING"
        )
        self._q_update = f"UPDATE {t} SET value = %s WHERE partition_key = %s AND key = %s"
        self._q_update_if = (
            f"UPDATE {t} SET value = %s WHERE partition_key = %s AND key = %s AND value = %s"
        )
        self._q_delete = f"DELETE FROM {t} WHERE partition_key = %s AND key = %s"
        self._q_page_ge = (
            f"SELECT key, value FROM {t} WHERE partition_key = %s AND key >= %s "
            "ORDER BY key LIMIT %s"
        )
        self._q_page_gt = (
            f"SELECT key, value FROM {t} WHERE partition_key = %s AND key > %s "
            "ORDER BY key LIMIT %s"
        )
        self._q_digest_buckets = (
            "SELECT hash_array(ARRAY[key]) & %s::int4, count(*), "
            f"bit_xor(hash_array_extended(ARRAY[key, value], 0)) FROM {t} "
            "WHERE partition_key = %s GROUP BY 1"
        )
        # A join with the bucket list, not ``= ANY(array)``: a prepared statement's generic
        # plan tests ANY element by element (measured 1.6 s instead of 0.09 s for 4,096
        # buckets of a 160,000-entry partition); the join hashes the list once.
        self._q_digest_rows = (
            f"SELECT t.key, hash_array_extended(ARRAY[t.key, t.value], 0) FROM {t} t "
            "JOIN unnest(%s::int4[]) AS b(bucket) "
            "ON (hash_array(ARRAY[t.key]) & %s::int4) = b.bucket WHERE t.partition_key = %s"
        )
        self._q_count = f"SELECT count(*) FROM {t} WHERE partition_key = %s"
        # A sequential read of the partition, in any order: no index walk, no sort, no
        # buffer (measured 0.5 s of one core per million 264-byte entries, against about
        # 0.9 s for the same entries' ordered range digests).
        digest = (
            "count(*), coalesce(sum(length(key) + length(value)), 0), "
            "coalesce(bit_xor(hash_array_extended(ARRAY[int4send(length(key)) || key || value], "
            f"{ENTRY_HASH_SEED})), 0)"
        )
        self._q_digest_partition = f"SELECT {digest} FROM {t} WHERE partition_key = %s"
        # Every partition at once: each row is read once (partition by partition, each hash
        # partition of the table is read once per lakekv partition it holds: 1.5 reads a row
        # in a lakeFS-shaped sample), and the server may use parallel workers.
        self._q_digest_partitions = f"SELECT partition_key, {digest} FROM {t} GROUP BY 1"
        # The canonical encoding of RangeDigest, hashed by the server. The rows reach the
        # aggregate in the subquery's key order (a LIMIT over an index scan; an ORDER BY
        # inside string_agg would sort them again, measured 50% slower). Were they ever
        # out of order, the digest would differ and the caller compare entries: slower,
        # never wrong.
        self._q_digest_range = (
            "SELECT count(*), coalesce(sum(length(r.key) + length(r.value)), 0), "
            "sha256(coalesce(string_agg(int4send(length(r.key)) || r.key || "
            "int4send(length(r.value)) || r.value, ''::bytea), ''::bytea)), "
            f"(SELECT key FROM {t} WHERE partition_key = %(p)s AND key >= %(s)s "
            "ORDER BY key OFFSET %(n)s LIMIT 1) "
            f"FROM (SELECT key, value FROM {t} WHERE partition_key = %(p)s AND key >= %(s)s "
            "ORDER BY key LIMIT %(n)s) r"
        )
        # One index probe per key. ``key = ANY(array)`` let the planner, on a table without
        # statistics (any table lakekv just wrote), read the whole partition and filter it
        # (measured: 7.5 ms instead of 1.5 ms for 200 keys of a 40,000-entry partition); the
        # ``LIMIT 1`` keeps each probe a separate index lookup.
        self._q_get_many = (
            "SELECT r.key, r.value FROM unnest(%(k)s::bytea[]) AS u(k) CROSS JOIN LATERAL "
            f"(SELECT key, value FROM {t} WHERE partition_key = %(p)s AND key = u.k LIMIT 1) r"
        )
        self._q_delete_many = (
            f"DELETE FROM {t} AS t USING unnest(%(k)s::bytea[]) AS u(k) "
            "WHERE t.partition_key = %(p)s AND t.key = u.k"
        )
        self._bulk = BulkWriter(self)
        self._raw = RawRows(self)
        self._q_partitions = self._partitions_query()

    def _quote(self, name: str, *, for_params: bool = True) -> str:
        """``"schema"."name"`` or ``"name"``; ``%`` doubled when the query takes parameters."""
        ident = sql.Identifier(name) if self.schema is None else sql.Identifier(self.schema, name)
        text = ident.as_string(None)
        return text.replace("%", "%%") if for_params else text

    # --- construction ------------------------------------------------------------------------

    default_paging = ScanPaging(page_size=1000, page_cap=5000)

    @classmethod
    def parse_settings(
        cls, url: StoreURL, params: ParamReader, options: OpenOptions
    ) -> PostgresSettings:
        """The connection string, table and pool settings; see the module docstring.

        Raises ConfigurationError for a bad URL (opening raises StoreUnavailableError, within
        about ``connect_timeout`` seconds, when the server cannot be reached).
        """
        table = params.take_str("table", "kv")
        _check_ident(url, "table", table, MAX_TABLE_NAME_BYTES)
        schema = params.take_optional("schema")
        if schema is not None:
            _check_ident(url, "schema", schema, _MAX_IDENT_BYTES)
        pool_size = params.take_int("pool_size", 25, minimum=1)
        pool_min = params.take_int("pool_min", 1, minimum=0)
        if pool_min > pool_size:
            raise ConfigurationError(f"{url}: pool_min must not exceed pool_size")
        pool_timeout = params.take_float("pool_timeout", 30.0, minimum=0.001)
        max_lifetime = params.take_float("max_lifetime", 300.0, minimum=1.0)
        connect_timeout = params.take_int("connect_timeout", 5, minimum=1)
        libpq: dict[str, str | int] = {}
        sslmode = params.take_optional("sslmode")
        if sslmode is not None:
            if sslmode not in _SSLMODES:
                raise ConfigurationError(f"{url}: sslmode must be one of {', '.join(_SSLMODES)}")
            libpq["sslmode"] = sslmode
        for name in ("sslrootcert", "sslcert", "sslkey"):
            value = params.take_optional(name)
            if value is not None:
                libpq[name] = value
        libpq["application_name"] = params.take_str("application_name", "lakekv")
        options.take_credentials(url, ())
        if options.read_only:
            libpq["options"] = "-c default_transaction_read_only=on"

        dbname = url.path.lstrip("/")
        if "/" in dbname:
            raise ConfigurationError(f"{url}: the path must be a database name, like /mydb")
        for key, part in (
            ("host", url.host),
            ("port", url.port),
            ("dbname", dbname),
            ("user", url.username),
            ("password", url.password),
        ):
            if part not in (None, ""):
                libpq[key] = part
        libpq["connect_timeout"] = connect_timeout
        try:
            conninfo = make_conninfo("", **libpq)
        except psycopg.ProgrammingError as exc:
            secrets = [url.password] if url.password else []
            raise ConfigurationError(f"{url}: {redact(str(exc), secrets)}") from None
        where = f"postgres {url.host or 'localhost'}:{url.port or 5432}/{dbname or '(default)'}"
        return PostgresSettings(
            conninfo=conninfo,
            where=where,
            table=table,
            schema=schema,
            pool_size=pool_size,
            pool_min=pool_min,
            pool_timeout=pool_timeout,
            max_lifetime=max_lifetime,
            connect_timeout=connect_timeout,
            server=_server_name(url, dbname),
        )

    def _open(self) -> None:
        """Check (or create) the layout on a direct connection, then start the pool."""
        s = self._settings
        with Connection.connect(s.conninfo, autocommit=True) as conn:
            if not self.options.may_create:
                if not self._table_exists(conn):
                    where = f"{self.schema}.{self.table}" if self.schema else self.table
                    raise StoreNotFoundError(f"{s.where} has no table {where!r}")
            elif not self._layout_complete(conn):
                self._create_layout(conn)
        lifetime = s.max_lifetime

        def configure(conn: Connection) -> None:
            conn.lakekv_expires = time.monotonic() + lifetime
            # Every ordered read here (scan pages, raw chunks, range digests) is
            # ``… ORDER BY key LIMIT n`` and must walk the primary key. A table nobody has
            # analyzed yet (any table lakekv just wrote) has no statistics, and the planner
            # then estimated 772 rows for 160,000 and chose to read and sort the rest of the
            # partition for every page (measured: a verify right after a copy took 5.0 s
            # instead of 1.6 s). No lakekv query needs a sort the index cannot give.
            conn.execute("SET enable_sort = off")
            # A sort the plan cannot avoid (the bulk path's sorted INSERT) now costs more
            # than ``jit_above_cost``, and the server JIT-compiled such statements: 32 ms of
            # a 33 ms upsert of 200 entries. lakekv's statements are short; no JIT.
            conn.execute("SET jit = off")

        pool: ConnectionPool[Connection] = ConnectionPool(
            s.conninfo,
            configure=configure,
            connection_class=Connection,
            kwargs={"autocommit": True},
            min_size=s.pool_min,
            max_size=s.pool_size,
            open=False,
            name=f"lakekv:{self.table}",
            timeout=s.pool_timeout,
            max_lifetime=s.max_lifetime,
            reconnect_timeout=max(s.pool_timeout, 1.0),
        )
        pool.open(wait=False)
        self._lender = Lender(pool, max_idle=600.0)

    def _layout_complete(self, conn: Connection) -> bool:
        """True if the table has its 100 partitions and the view exists (no DDL needed)."""
        row = conn.execute(
            "SELECT (SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass(%s)), "
            "to_regclass(%s) IS NOT NULL",
            (
                self._quote(self.table, for_params=False),
                self._quote(view_name(self.table), for_params=False),
            ),
        ).fetchone()
        return row is not None and row[0] == PARTITIONS and bool(row[1])

    def _table_exists(self, conn: Connection) -> bool:
        row = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (self._quote(self.table, for_params=False),)
        ).fetchone()
        return row is not None and bool(row[0])

    def _identity(self) -> str:
        """The server's system identifier and the database's OID, where the role may read
        them (``pg_control_system()``), so every spelling of one server and database (host
        names, addresses, ports forwarded) is one store; else the folded host, port and
        database name. Then schema and table. (A cluster cloned from another by a base
        backup keeps its system identifier: lakekv takes the two for one store.)"""
        table = self._quote(self.table, for_params=False)
        with self._pool_connection() as conn:
            row = conn.execute(
                "SELECT (SELECT n.nspname FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)), current_schema(), "
                "(SELECT oid::text FROM pg_database WHERE datname = current_database()), "
                "has_function_privilege('pg_control_system()', 'EXECUTE')",
                (table,),
            ).fetchone()
            assert row is not None
            server = self._settings.server
            if row[3] and row[2]:
                sysid = conn.execute("SELECT system_identifier::text FROM pg_control_system()")
                one = sysid.fetchone()
                if one is not None:
                    server = f"system-{one[0]}/oid-{row[2]}"
        schema = row[0] or row[1] or self.schema
        return f"postgres://{server}/{schema or ''}.{self.table}"

    def _incarnation(self) -> str | None:
        """The table's OID: a table dropped and created again (``pg_restore --clean``) has
        another."""
        with self._pool_connection() as conn:
            row = conn.execute(
                "SELECT to_regclass(%s)::oid::text", (self._quote(self.table, for_params=False),)
            ).fetchone()
        return f"oid-{row[0]}" if row is not None and row[0] is not None else None

    def _row_version(self, partition: bytes, key: bytes) -> str | None:
        """The row's ``xmin``: every write, even of the same value, makes a new row version
        (lakeFS and lakekv both write with ``INSERT … ON CONFLICT DO UPDATE``)."""
        table = self._quote(self.table)
        with self._pool_connection() as conn:
            row = conn.execute(
                f"SELECT xmin::text FROM {table} WHERE partition_key = %s AND key = %s",
                (partition, key),
            ).fetchone()
        return None if row is None else f"xmin-{row[0]}"

    def _create_layout(self, conn: Connection) -> None:
        """lakeFS's DDL, idempotent, in one implicit transaction under the advisory lock."""
        t = self._quote(self.table, for_params=False)
        statements = [
            f"CREATE TABLE IF NOT EXISTS {t} (partition_key BYTEA NOT NULL, "
            "key BYTEA NOT NULL, value BYTEA NOT NULL, PRIMARY KEY (partition_key, key)) "
            "PARTITION BY HASH (partition_key)"
        ]
        statements.extend(
            f"CREATE TABLE IF NOT EXISTS {self._quote(child, for_params=False)} PARTITION OF "
            f"{t} FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i})"
            for i, child in enumerate(partition_table_names(self.table))
        )
        statements.append(
            f"CREATE OR REPLACE VIEW {self._quote(view_name(self.table), for_params=False)} "
            "AS SELECT ENCODE(partition_key, 'escape') AS partition_key, "
            f"ENCODE(key, 'escape') AS key, value FROM {t}"
        )
        with self._advisory_lock(conn):
            conn.execute(";\n".join(statements).encode())

    def _advisory_lock(self, conn: Connection) -> _AdvisoryLock:
        return _AdvisoryLock(conn, advisory_lock_id(self.table))

    # --- connections ---------------------------------------------------------------------------

    def _checkout(self) -> tuple[Lender, Connection]:
        """The lender and a live connection; dead idle ones are discarded on the way."""
        lender = self._lender
        if lender is None:
            raise StoreClosedError(f"store {self._url} is closed")
        for _ in range(self._settings.pool_size + 1):
            conn = lender.take()
            if conn.alive():
                return lender, conn
            lender.discard(conn)
        return lender, lender.take()

    def _execute(
        self,
        query: str,
        params: Sequence[object] | Mapping[str, object],
        fetch: Callable[[psycopg.Cursor[Any]], T],
        *,
        retry: bool,
    ) -> T:
        """Run one autocommit statement.

        ``retry``: the statement may run twice (a read, an upsert, a delete). It is sent
        without checking the connection first, and sent again, on a checked connection, if
        the first one turns out dead. Otherwise (a ``set_if``) the connection is checked
        first and the statement never repeated: a lost reply could hide a success.
        """
        if retry:
            lender = self._lender
            if lender is None:
                raise StoreClosedError(f"store {self._url} is closed")
            conn = lender.take()
            try:
                cur = conn.reusable_cursor()
                cur.execute(query, params)
                return fetch(cur)
            except psycopg.OperationalError:
                if not conn.lost():
                    raise
            finally:
                lender.give(conn)
        lender, conn = self._checkout()
        try:
            cur = conn.reusable_cursor()
            cur.execute(query, params)
            return fetch(cur)
        finally:
            lender.give(conn)

    def _translate_error(self, exc: BaseException) -> LakekvError:
        where = self._settings.where
        message = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, PoolClosed):
            return StoreClosedError(f"store {self._url} is closed")
        if isinstance(exc, PoolTimeout | TooManyRequests):
            return StoreUnavailableError(
                f"{where}: no connection within {self._settings.pool_timeout:g} s "
                f"(pool_size={self._settings.pool_size}; server down or pool exhausted): {message}"
            )
        if isinstance(exc, psycopg.OperationalError):
            # Mistakes in the URL are not an unavailable server: retrying will not help.
            state = getattr(exc, "sqlstate", None)
            if state == "3D000" or _NO_DATABASE.search(message):
                return StoreNotFoundError(f"{where}: {message}")
            if state in ("28P01", "28000") or _AUTH_FAILED.search(message):
                return ConfigurationError(f"{where}: {message}")
            return StoreUnavailableError(f"{where}: {message}")
        return StoreError(f"{where}, table {self.table}: {message}")

    # --- the contract ------------------------------------------------------------------------

    def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        row = self._execute(self._q_get, (partition, key), fetchone, retry=True)
        if row is None:
            return None
        value: bytes = row[0]
        return ValueWithPredicate(value, value)

    def _set(self, partition: bytes, key: bytes, value: bytes) -> None:
        self._execute(self._q_set, (partition, key, value), rowcount, retry=True)

    def _set_if(self, partition: bytes, key: bytes, value: bytes, predicate: object) -> bool:
        params: tuple[bytes, ...]
        if predicate is None:
            query, params = self._q_create, (partition, key, value)
        elif predicate is MUST_EXIST:
            query, params = self._q_update, (value, partition, key)
        else:
            expected = value_predicate(predicate)
            query, params = self._q_update_if, (value, partition, key, expected)
        # Not retried once sent: a lost reply could hide a success.
        return self._execute(query, params, rowcount, retry=False) == 1

    def _delete(self, partition: bytes, key: bytes) -> None:
        self._execute(self._q_delete, (partition, key), rowcount, retry=True)

    def _scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        query = self._q_page_ge if inclusive else self._q_page_gt
        rows: list[tuple[bytes, bytes]] = self._execute(
            query, (partition, start, limit), fetchall, retry=True
        )
        return rows, len(rows) == limit

    # --- many keys at once, digests ------------------------------------------------------------

    def _reader(self) -> Execute:
        return lambda q, p, f: self._execute(q, p, f, retry=True)

    def _get_many(
        self, partition: bytes, keys: Sequence[bytes], execute: Execute | None = None
    ) -> dict[bytes, bytes]:
        run = execute or self._reader()
        rows: list[tuple[bytes, bytes]] = run(
            self._q_get_many, {"p": partition, "k": list(keys)}, fetchall
        )
        return dict(rows)

    def _delete_many(self, partition: bytes, keys: Sequence[bytes]) -> None:
        # An index probe per key, as for ``_get_many``: without statistics the planner chose
        # to scan the whole partition for ``key = ANY(array)`` (18 ms instead of 1.3 ms for
        # 200 keys of a 40,000-entry partition), or to hash-join the key list with it.
        with self._pool_connection() as conn, conn.pipeline(), conn.transaction():
            conn.execute("SET LOCAL enable_hashjoin = off")
            conn.execute("SET LOCAL enable_mergejoin = off")
            conn.execute(self._q_delete_many, {"p": partition, "k": list(keys)})

    def _digest_range(
        self, partition: bytes, start: bytes, limit: int, execute: Execute | None = None
    ) -> RangeDigest:
        run = execute or self._reader()
        row = run(self._q_digest_range, {"p": partition, "s": start, "n": limit}, fetchone)
        return RangeDigest(partition, start, int(row[0]), int(row[1]), bytes(row[2]), row[3])

    def _read_raw(
        self, partition: bytes, start: bytes, limit: int, execute: Execute | None = None
    ) -> RawChunk:
        if execute is not None:  # a snapshot's connection
            return self._raw.read(partition, start, limit, execute, snapshot=True)
        return self._raw.read(partition, start, limit, self._reader(), snapshot=False)

    def _write_raw(self, chunks: list[RawChunk]) -> int | None:
        return self._bulk._batch_transaction(
            lambda conn, state: self._raw.write_on(conn, chunks, state)
        )

    # --- change feeds (feed.py) ----------------------------------------------------------------

    def _feed_check(self) -> None:
        feed.check(self)

    def _feeds(self) -> list[dict[str, object]]:
        return feed.listing(self)

    def _writers(self) -> list[str] | None:
        """Client sessions on this database other than lakekv's (``application_name``
        ``lakekv…``), from ``pg_stat_activity``. A role without ``pg_read_all_stats`` sees
        only its own sessions' details, but every session's existence."""
        with self._pool_connection() as conn:
            rows = conn.execute(
                "SELECT coalesce(usename, '?'), coalesce(host(client_addr), 'local'), "
                "coalesce(application_name, ''), coalesce(state, '?') FROM pg_stat_activity "
                "WHERE datname = current_database() AND backend_type = 'client backend' "
                "AND pid <> pg_backend_pid() AND coalesce(application_name, '') NOT LIKE 'lakekv%'"
            ).fetchall()
        return [
            f"role {r[0]} from {r[1]}" + (f" ({r[2]})" if r[2] else "") + f", {r[3]}" for r in rows
        ]

    def _feed_start(self, name: str) -> None:
        feed.start(self, name)

    def _feed_exists(self, name: str) -> bool:
        return feed.exists(self, name)

    def _feed_read(self, name: str) -> FeedBatch:
        return feed.read(self, name)

    def _feed_mark(self, name: str, note: str) -> None:
        feed.mark(self, name, note)

    def _feed_confirm(self, name: str, position: str) -> None:
        feed.confirm(self, name, position)

    def _feed_drop(self, name: str) -> None:
        feed.drop(self, name)

    def _digest_probe(self) -> int:
        row = self._execute(
            "SELECT hash_array_extended(ARRAY['\\x00ff'::bytea, 'lakekv'::bytea], 0), "
            "bit_xor(1::int8)",
            (),
            fetchone,
            retry=True,
        )
        return int(row[0])

    def _digest_bits(self, partition: bytes) -> int:
        """From the partition's entry count (an index scan, about a quarter of the time of
        one digest pass). Not the planner's estimate: a freshly copied table has no
        statistics until autovacuum analyzes it, and the default guess (measured 2,323 rows
        for 161,689) made every bucket differ after a 1% change."""
        rows = int(self._execute(self._q_count, (partition,), fetchone, retry=True)[0])
        return max(0, math.ceil(math.log2(max(1, rows) / _DIGEST_ROWS_PER_BUCKET)))

    def _digest_buckets(
        self, partition: bytes, bits: int, execute: Execute | None = None
    ) -> list[tuple[int, int, int]]:
        run = execute or self._reader()
        rows: list[tuple[int, int, int]] = run(
            self._q_digest_buckets, ((1 << bits) - 1, partition), fetchall
        )
        return rows

    def _digest_rows(
        self, partition: bytes, bits: int, buckets: list[int], execute: Execute | None = None
    ) -> list[tuple[bytes, int]]:
        run = execute or self._reader()
        rows: list[tuple[bytes, int]] = run(
            self._q_digest_rows, (buckets, (1 << bits) - 1, partition), fetchall
        )
        return rows

    def _digest_partition(
        self, partition: bytes, execute: Execute | None = None
    ) -> PartitionDigest:
        run = execute or self._reader()
        row = run(self._q_digest_partition, (partition,), fetchone)
        return PartitionDigest(int(row[0]), int(row[1]), int(row[2]))

    def _digest_partitions(self, execute: Execute | None = None) -> dict[bytes, PartitionDigest]:
        run = execute or self._reader()
        rows = run(self._q_digest_partitions, (), fetchall)
        return {bytes(r[0]): PartitionDigest(int(r[1]), int(r[2]), int(r[3])) for r in rows}

    # --- listing partitions ------------------------------------------------------------------

    def _partitions_query(self) -> str:
        """One page of distinct partition names after ``%(after)s``, per hash partition.

        Each of the 100 hash partitions holds whole lakekv partitions, so a skip scan inside
        each (one index seek per name, a recursive CTE) visits every name once; each returns
        at most ``%(k)s`` names, tagged with the hash partition's number.
        """
        branches = []
        for i, child in enumerate(partition_table_names(self.table)):
            c = self._quote(child)
            branches.append(
                "(WITH RECURSIVE s(pk) AS ("
                f"(SELECT partition_key FROM {c} WHERE partition_key > %(after)s "
                "ORDER BY partition_key LIMIT 1) "
                f"UNION ALL SELECT (SELECT partition_key FROM {c} WHERE partition_key > s.pk "
                "ORDER BY partition_key LIMIT 1) FROM s WHERE s.pk IS NOT NULL) "
                f"SELECT {i}::int4, pk FROM s WHERE pk IS NOT NULL LIMIT %(k)s)"
            )
        return " UNION ALL ".join(branches)

    def _list_partitions(self, execute: Execute | None = None) -> Iterator[bytes]:
        run: Execute = execute or (lambda q, p, f: self._execute(q, p, f, retry=True))
        after = b""
        page = self.paging.page_size
        while True:
            # Ask each hash partition for about twice its share of a page. Every name up to
            # the smallest "last name" among those that filled their quota is then known.
            per_child = max(2, -(-2 * page // PARTITIONS))
            rows: list[tuple[int, bytes]] = run(
                self._q_partitions, {"after": after, "k": per_child}, fetchall
            )
            counts: dict[int, int] = {}
            last: dict[int, bytes] = {}
            for child, name in rows:
                counts[child] = counts.get(child, 0) + 1
                last[child] = max(last.get(child, name), name)
            full = [last[c] for c, n in counts.items() if n >= per_child]
            names = sorted(name for _, name in rows)
            if full:
                frontier = min(full)
                names = [n for n in names if n <= frontier]
            yield from names
            if not full:
                return
            after = names[-1]
            page = min(page * 2, self.paging.page_cap)

    # --- snapshots ----------------------------------------------------------------------------

    def _open_snapshot(self) -> SnapshotReads:
        """One ``REPEATABLE READ`` transaction exports its snapshot (``pg_export_snapshot``);
        every further reading connection imports it (``SET TRANSACTION SNAPSHOT``)."""
        lender = self._lender
        if lender is None:
            raise StoreClosedError(f"store {self._url} is closed")
        return Snapshot(self, lender.pool)

    # --- bulk writes ---------------------------------------------------------------------------

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        """The COPY paths of :mod:`.bulk`."""
        return self._bulk.write(entries, on_conflict)

    # --- lifecycle -----------------------------------------------------------------------------

    def _destroy(self) -> None:
        """Drop the table, its partitions and the views on it (lakeFS's ``<table>_v``)."""
        with self._pool_connection() as conn, self._advisory_lock(conn):
            conn.execute(
                f"DROP TABLE IF EXISTS {self._quote(self.table, for_params=False)} CASCADE"
            )

    def _pool_connection(self) -> Borrowed:
        lender, conn = self._checkout()
        return Borrowed(lender, conn)

    def _close(self) -> None:
        lender, self._lender = self._lender, None
        if lender is not None:
            lender.close()


class _AdvisoryLock:
    """``pg_advisory_lock`` held on ``conn`` for the ``with`` block (session-level)."""

    def __init__(self, conn: Connection, key: int) -> None:
        self._conn = conn
        self._key = key

    def __enter__(self) -> None:
        self._conn.execute("SELECT pg_advisory_lock(%s::bigint)", (self._key,))

    def __exit__(self, *exc: object) -> None:
        if not self._conn.broken:
            self._conn.execute("SELECT pg_advisory_unlock(%s::bigint)", (self._key,))


def _check_ident(url: StoreURL, what: str, name: str, max_bytes: int) -> None:
    size = len(name.encode())
    if (
        size == 0
        or size > max_bytes
        or name != name.strip()
        or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name)
    ):
        raise ConfigurationError(
            f"{url}: {what} must be a name of 1 to {max_bytes} bytes without control "
            "characters or leading or trailing spaces"
        )
