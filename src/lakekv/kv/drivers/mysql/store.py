"""``mysql://user:password@host:3306/db?table=kv`` — MySQL and MariaDB (also ``mariadb://``).

Tested against MariaDB 10.11; the SQL is also MySQL 8's. URL: user, password, host (default
``localhost``), port (default 3306) and the database (the path, required). Parameters:

``table``            table name (default ``kv``): letters, digits, ``_`` and ``$``, at most 64
``pool_size``        most connections opened at once (default 10)
``pool_timeout``     seconds to wait for a free connection before StoreUnavailableError (30)
``connect_timeout``  seconds to establish a connection (default 5)
``read_timeout``     seconds to wait for a reply before StoreUnavailableError (default 120)
``local_infile``     bulk writes through ``LOAD DATA LOCAL INFILE`` when the server allows it
                     (default true); such a connection lets the server read files of the
                     client, so it is used for bulk writes only: set false for a server you
                     do not trust
``page_size``/``page_cap``  scan pages (default 1000, doubling up to 5000)

Layout: ``kv (partition_key VARBINARY(1024), `key` VARBINARY(2048), value LONGBLOB,
PRIMARY KEY (partition_key, `key`)) ENGINE=InnoDB``. Binary strings compare bytewise (the
``binary`` collation, no trailing-space padding), so the primary key order is the scan order.
The key sizes fill InnoDB's 3072-byte index limit exactly; they are the declared capabilities,
checked before any I/O. A value may be up to 8 MiB − 8 KiB: the text protocol sends a value
escaped, at worst twice its size, and opening refuses a server whose ``max_allowed_packet`` is
under 16 MiB (MariaDB's default; MySQL's is 64 MiB). Opening creates the table if it is missing
(:meth:`MySQLStore._create_table`, the one place where DDL runs) unless opened with
``create=False`` or ``read_only=True``: then a missing table is StoreNotFoundError naming it,
and a read-only store's sessions are read-only too (``SESSION TRANSACTION READ ONLY``). The
identity is the server (``localhost``, ``127.0.0.1`` and ``::1`` are one host; 3306 is the
default port), the database and the table.

Behaviour: every statement runs in autocommit on a pooled connection (session isolation READ
COMMITTED, ``CLIENT_FOUND_ROWS`` so that an UPDATE counts the rows it *matched*). ``set`` is
``INSERT … ON DUPLICATE KEY UPDATE``. ``set_if`` is one statement: with ``None`` a plain
``INSERT`` (a duplicate-key error means the key exists), with ``MUST_EXIST`` an ``UPDATE`` of
the key, with a predicate ``UPDATE … WHERE partition_key = ? AND `key` = ? AND value = ?`` —
the predicate is the value ``get`` returned, compared bytewise by the server, so A → B → A
passes. Success is exactly one matched row. Scans are keyset queries, one per page. Bulk writes
are ``LOAD DATA LOCAL INFILE`` or multi-row ``INSERT IGNORE`` in one transaction
(:mod:`.bulk`). A connection the
server closed while idle is replaced: reads, ``set`` and ``delete`` are sent again once;
``set_if`` checks its connection before use and is never sent twice. Lost connections, lock
wait timeouts and deadlocks raise StoreUnavailableError (retryable); other server errors
StoreError. Messages never contain the password.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import pymysql
from pymysql.constants import CLIENT

from lakekv.errors import (
    ConfigurationError,
    LakekvError,
    StoreClosedError,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
)
from lakekv.kv.drivers.mysql._conn import (
    DUPLICATE_KEY,
    LOST,
    RETRYABLE,
    UNKNOWN_DATABASE,
    Connection,
    Pool,
    alive,
    error_code,
)
from lakekv.kv.drivers.mysql.bulk import write_batch
from lakekv.kv.store import (
    MUST_EXIST,
    BatchResult,
    Capabilities,
    Entry,
    OnConflict,
    OpenOptions,
    ScanPaging,
    Store,
    ValueWithPredicate,
    value_predicate,
)
from lakekv.kv.url import ParamReader, StoreURL

T = TypeVar("T")

MAX_PARTITION_SIZE: Final = 1024
MAX_KEY_SIZE: Final = 2048
"""Partition + key = 3072 bytes: InnoDB's largest index key (DYNAMIC rows, 16 KiB pages)."""
MAX_VALUE_SIZE: Final = (8 << 20) - 8192
"""Escaped at worst to twice its size, plus the statement, within a 16 MiB packet."""
MIN_MAX_ALLOWED_PACKET: Final = 16 << 20
"""The server's ``max_allowed_packet`` must be at least this for MAX_VALUE_SIZE to fit."""

_IDENT = re.compile(r"^[A-Za-z0-9_$]{1,64}$")


@dataclass(frozen=True)
class MySQLSettings:
    """What a ``mysql://`` URL says, besides paging (see the module docstring)."""

    connect_args: dict[str, Any]
    where: str
    table: str
    pool_size: int
    pool_timeout: float
    local_infile: bool


def _fetchone(cur: pymysql.cursors.Cursor) -> Any:
    return cur.fetchone()


def _fetchall(cur: pymysql.cursors.Cursor) -> Any:
    return cur.fetchall()


def _rowcount(cur: pymysql.cursors.Cursor) -> int:
    return cur.rowcount


class MySQLStore(Store):
    """The MySQL / MariaDB driver; see the module docstring for URL, layout and behaviour."""

    scheme = "mysql"
    capabilities = Capabilities(
        list_partitions=True,
        native_write_batch=True,
        max_partition_size=MAX_PARTITION_SIZE,
        max_key_size=MAX_KEY_SIZE,
        max_value_size=MAX_VALUE_SIZE,
    )
    driver_errors = (pymysql.err.MySQLError, OSError)

    def __init__(
        self,
        url: StoreURL,
        paging: ScanPaging,
        options: OpenOptions,
        settings: MySQLSettings,
    ) -> None:
        super().__init__(url, paging, options)
        self._settings = settings
        self.table = settings.table
        self._pool: Pool | None = None
        self._bulk_pool: Pool | None = None
        self.max_allowed_packet = MIN_MAX_ALLOWED_PACKET
        self.load_data = False
        """Bulk writes use LOAD DATA LOCAL INFILE (asked for, and the server allows it)."""
        t = f"`{self.table}`"
        self._q_get = f"SELECT value FROM {t} WHERE partition_key = %s AND `key` = %s"
        self._q_set = (
            f"INSERT INTO {t} (partition_key, `key`, value) VALUES (%s, %s, %s) "
            "ON DUPLICATE KEY UPDATE value = VALUES(value)"
        )
        self._q_create = f"INSERT INTO {t} (partition_key, `key`, value) VALUES (%s, %s, %s)"
        self._q_update = f"UPDATE {t} SET value = %s WHERE partition_key = %s AND `key` = %s"
        self._q_update_if = f"{self._q_update} AND value = %s"
        self._q_delete = f"DELETE FROM {t} WHERE partition_key = %s AND `key` = %s"
        page = f"SELECT `key`, value FROM {t} WHERE partition_key = %s AND `key` {{}} %s "
        self._q_page_ge = page.format(">=") + "ORDER BY `key` LIMIT %s"
        self._q_page_gt = page.format(">") + "ORDER BY `key` LIMIT %s"
        self._q_partitions = (
            f"SELECT partition_key FROM {t} WHERE partition_key > %s "
            "GROUP BY partition_key ORDER BY partition_key LIMIT %s"
        )

    # --- construction ------------------------------------------------------------------------

    default_paging = ScanPaging(page_size=1000, page_cap=5000)

    @classmethod
    def parse_settings(
        cls, url: StoreURL, params: ParamReader, options: OpenOptions
    ) -> MySQLSettings:
        """The connection arguments and table; see the module docstring. No I/O."""
        table = params.take_str("table", "kv")
        if not _IDENT.match(table):
            raise ConfigurationError(
                f"{url}: table must be 1-64 letters, digits, '_' or '$', not {table!r}"
            )
        pool_size = params.take_int("pool_size", 10, minimum=1)
        pool_timeout = params.take_float("pool_timeout", 30.0, minimum=0.001)
        connect_timeout = params.take_int("connect_timeout", 5, minimum=1)
        read_timeout = params.take_float("read_timeout", 120.0, minimum=0.001)
        local_infile = params.take_bool("local_infile", True)
        options.take_credentials(url, ())
        database = url.path.lstrip("/")
        if not database or "/" in database:
            raise ConfigurationError(
                f"{url}: the path must be a database name, like mysql://user@host:3306/mydb"
            )
        host = url.host or "localhost"
        port = url.port or 3306
        connect_args: dict[str, Any] = {
            "host": host,
            "port": port,
            "user": url.username,
            "password": url.password or "",
            "database": database,
            "autocommit": True,
            "charset": "utf8mb4",
            "binary_prefix": True,
            "client_flag": CLIENT.FOUND_ROWS,
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "write_timeout": read_timeout,
            "max_allowed_packet": 1 << 30,  # the client's own cap; the server enforces its own
            "init_command": "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"
            + (", READ ONLY" if options.read_only else ""),
        }
        return MySQLSettings(
            connect_args=connect_args,
            where=f"{url.scheme} {host}:{port}/{database}",
            table=table,
            pool_size=pool_size,
            pool_timeout=pool_timeout,
            local_infile=local_infile,
        )

    def _connect(self) -> Connection:
        return pymysql.connect(**self._settings.connect_args)

    def _connect_bulk(self) -> Connection:
        return pymysql.connect(**self._settings.connect_args, local_infile=self.load_data)

    def _open(self) -> None:
        """Check the server and the table (creating it if allowed), then make the pools.

        Raises StoreUnavailableError, within about ``connect_timeout`` seconds, when the
        server cannot be reached."""
        conn = self._connect()
        try:
            cur = conn.cursor()
            cur.execute("SELECT @@max_allowed_packet, @@local_infile")
            row = cur.fetchone()
            packet = int(row[0]) if row else 0
            self.load_data = self._settings.local_infile and bool(row and int(row[1]))
            if packet < MIN_MAX_ALLOWED_PACKET:
                raise ConfigurationError(
                    f"{self._settings.where}: the server's max_allowed_packet is {packet} bytes; "
                    f"lakekv needs at least {MIN_MAX_ALLOWED_PACKET} (16M) to store values of "
                    f"up to {MAX_VALUE_SIZE} bytes: SET GLOBAL max_allowed_packet = 16777216"
                )
            self.max_allowed_packet = packet
            cur.execute(
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = %s",
                (self.table,),
            )
            if cur.fetchone() is None:
                if not self.options.may_create:
                    raise StoreNotFoundError(f"{self._settings.where} has no table {self.table!r}")
                self._create_table(cur)
        finally:
            conn.close()
        s = self._settings
        self._pool = Pool(self._connect, s.pool_size, s.pool_timeout)
        self._bulk_pool = Pool(self._connect_bulk, s.pool_size, s.pool_timeout)

    def _identity(self) -> str:
        """The server's ``server_uuid`` (MySQL) where it has one, so every address of one
        server is one store; else (MariaDB has none) the folded host and port. Then the
        database and the table."""
        args = self._settings.connect_args
        server = None
        with contextlib.suppress(pymysql.err.MySQLError):
            row = self._execute("SELECT @@server_uuid", (), _fetchone, retry=True)
            if row is not None and row[0]:
                server = f"uuid-{row[0]}"
        if server is None:
            host = str(args["host"]).lower()
            if host in ("localhost", "127.0.0.1", "::1"):
                host = "localhost"
            server = f"{host}:{args['port']}"
        return f"mysql://{server}/{args['database']}/{self.table}"

    def _incarnation(self) -> str | None:
        """The table's creation time: a table dropped and created again has another."""
        row = self._execute(
            "SELECT CAST(create_time AS CHAR) FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_name = %s",
            (self.table,),
            _fetchone,
            retry=True,
        )
        return f"created-{row[0]}" if row is not None and row[0] is not None else None

    def _create_table(self, cur: pymysql.cursors.Cursor) -> None:
        """The DDL: create the table if it does not exist (idempotent, safe to race)."""
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS `{self.table}` ("
            f"partition_key VARBINARY({MAX_PARTITION_SIZE}) NOT NULL, "
            f"`key` VARBINARY({MAX_KEY_SIZE}) NOT NULL, "
            "value LONGBLOB NOT NULL, "
            "PRIMARY KEY (partition_key, `key`)"
            ") ENGINE=InnoDB ROW_FORMAT=DYNAMIC"
        )

    # --- connections ---------------------------------------------------------------------------

    def _pool_or_closed(self) -> Pool:
        pool = self._pool
        if pool is None:
            raise StoreClosedError(f"store {self._url} is closed")
        return pool

    def checkout(self, *, bulk: bool = False) -> tuple[Pool, Connection]:
        """The pool and a connection checked to be alive (dead idle ones are replaced);
        ``bulk``: from the pool of connections for bulk writes."""
        pool = self._pool_or_closed()
        if bulk:
            pool = self._bulk_pool or pool
        for _ in range(self._settings.pool_size + 1):
            conn = pool.take()
            if alive(conn):
                return pool, conn
            pool.discard(conn)
        return pool, pool.take()

    def _execute(
        self,
        query: str,
        args: Sequence[object],
        fetch: Callable[[pymysql.cursors.Cursor], T],
        *,
        retry: bool,
    ) -> T:
        """Run one autocommit statement.

        ``retry``: the statement may run twice (a read, an upsert, a delete): sent without a
        check, and again on a checked connection if the first one was found dead. Otherwise
        (``set_if``) the connection is checked first and the statement never repeated.
        """
        if retry:
            pool = self._pool_or_closed()
            conn = pool.take()
            try:
                cur = conn.cursor()
                cur.execute(query, args)
                result = fetch(cur)
            except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as exc:
                if error_code(exc) not in LOST:
                    pool.give(conn)
                    raise
                pool.discard(conn)
            else:
                pool.give(conn)
                return result
        pool, conn = self.checkout()
        try:
            cur = conn.cursor()
            cur.execute(query, args)
            result = fetch(cur)
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as exc:
            if error_code(exc) in LOST:
                pool.discard(conn)
            else:
                pool.give(conn)
            raise
        except BaseException:
            pool.give(conn)
            raise
        pool.give(conn)
        return result

    def _translate_error(self, exc: BaseException) -> LakekvError:
        where = self._settings.where
        code = error_code(exc)
        message = " ".join(str(exc).split()) or type(exc).__name__
        if code == UNKNOWN_DATABASE:
            return StoreNotFoundError(f"{where}: {message}")
        if isinstance(exc, pymysql.err.OperationalError) and code in (1044, 1045):
            # A wrong user or password is a configuration mistake on every engine (exit 2),
            # not an unavailable server: retrying will not help.
            return ConfigurationError(f"{where}: {message}")
        if (
            code in RETRYABLE
            or isinstance(exc, OSError | pymysql.err.InterfaceError)
            or (isinstance(exc, pymysql.err.OperationalError) and code >= 2000)  # client side
        ):
            return StoreUnavailableError(f"{where}: {message}")
        return StoreError(f"{where}, table {self.table}: {message}")

    # --- the contract ------------------------------------------------------------------------

    def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        row = self._execute(self._q_get, (partition, key), _fetchone, retry=True)
        if row is None:
            return None
        value: bytes = row[0]
        return ValueWithPredicate(value, value)

    def _set(self, partition: bytes, key: bytes, value: bytes) -> None:
        self._execute(self._q_set, (partition, key, value), _rowcount, retry=True)

    def _set_if(self, partition: bytes, key: bytes, value: bytes, predicate: object) -> bool:
        if predicate is None:
            try:
                self._execute(self._q_create, (partition, key, value), _rowcount, retry=False)
            except pymysql.err.IntegrityError as exc:
                if error_code(exc) == DUPLICATE_KEY:
                    return False
                raise
            return True
        if predicate is MUST_EXIST:
            query, args = self._q_update, (value, partition, key)
        else:
            expected = value_predicate(predicate)
            query, args = self._q_update_if, (value, partition, key, expected)  # type: ignore[assignment]
        # CLIENT_FOUND_ROWS: an UPDATE to the same value still counts its matched row.
        return self._execute(query, args, _rowcount, retry=False) == 1

    def _delete(self, partition: bytes, key: bytes) -> None:
        self._execute(self._q_delete, (partition, key), _rowcount, retry=True)

    def _scan_page(
        self, partition: bytes, start: bytes, inclusive: bool, limit: int
    ) -> tuple[Sequence[tuple[bytes, bytes]], bool]:
        query = self._q_page_ge if inclusive else self._q_page_gt
        rows: Sequence[tuple[bytes, bytes]] = self._execute(
            query, (partition, start, limit), _fetchall, retry=True
        )
        return rows, len(rows) == limit

    def _list_partitions(self) -> Iterator[bytes]:
        after = b""
        size = self.paging.page_size
        while True:
            rows = self._execute(self._q_partitions, (after, size), _fetchall, retry=True)
            for (name,) in rows:
                yield name
            if len(rows) < size:
                return
            after = rows[-1][0]
            size = min(size * 2, self.paging.page_cap)

    def _write_batch(self, entries: Sequence[Entry], on_conflict: OnConflict) -> BatchResult:
        result, vanished = write_batch(self, entries, on_conflict)
        if vanished:
            result.add(super()._write_batch(vanished, on_conflict))
        return result

    # --- lifecycle -----------------------------------------------------------------------------

    def _destroy(self) -> None:
        self._execute(f"DROP TABLE IF EXISTS `{self.table}`", (), _rowcount, retry=True)

    def _close(self) -> None:
        pools, self._pool, self._bulk_pool = (self._pool, self._bulk_pool), None, None
        for pool in pools:
            if pool is not None:
                pool.close()
