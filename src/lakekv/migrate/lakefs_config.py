"""Store URLs from a lakeFS configuration: the ``database:`` section and ``LAKEFS_DATABASE_*``.

lakeFS reads ``database.type`` (``postgres``, ``dynamodb``, ``local``, ``mem``, ``cosmosdb``)
and the section of that name; environment variables override the file, named after the path
in upper case: ``LAKEFS_DATABASE_TYPE``, ``LAKEFS_DATABASE_POSTGRES_CONNECTION_STRING``,
``LAKEFS_DATABASE_DYNAMODB_TABLE_NAME``, ``…_DYNAMODB_ENDPOINT``, ``…_DYNAMODB_AWS_REGION``,
``…_DYNAMODB_AWS_PROFILE``, ``…_DYNAMODB_AWS_ACCESS_KEY_ID``, ``…_DYNAMODB_AWS_SECRET_ACCESS_KEY``.

lakekv opens ``postgres``, ``dynamodb``, ``local`` and ``mem``; ``cosmosdb`` and ``redis``
have no lakekv driver and are refused with a clear error. ``local`` is lakeFS's embedded
Badger directory, ``database.local.path`` (``LAKEFS_DATABASE_LOCAL_PATH``; default
``~/lakefs/metadata``, ``pkg/config/defaults.go:140``; ``~`` expanded as lakeFS's
``pkg/kv/kvparams`` does), opened as ``badger:///that/path``; a ``memory:`` path (lakeFS's
in-memory Badger) holds nothing to migrate and is refused.

Every setting of lakeFS v1.86.0 (``pkg/config/config.go`` ``Database``, ``pkg/kv/kvparams``,
``pkg/kv/postgres/store.go``, ``pkg/kv/dynamodb/store.go``) that decides *where* the data lives
is honoured: PostgreSQL's connection string (libpq keyword/value or URL form) with its
``lakefskv_table`` parameter (the table name, default ``kv``) and ``search_path`` (the schema
the table lives in); DynamoDB's ``table_name`` (default ``kvstore``), ``endpoint``,
``aws_region``, ``aws_profile`` and credentials.

Credentials found in a configuration stay with its store (``LakeFSDatabase.credentials``,
handed to that store only, never put into the process environment). The environment
overrides name no side, so :func:`lakefs_sides` applies them only when exactly one side of a
command comes from a lakeFS configuration, and refuses when two do.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import yaml

from lakekv.errors import ConfigurationError
from lakekv.kv.url import StoreURL, remember_secret

_ENV = "LAKEFS_DATABASE_"
_SECTIONS = {
    "postgres": ("connection_string", "max_open_connections"),
    "local": ("path",),
    "dynamodb": (
        "table_name",
        "endpoint",
        "aws_region",
        "aws_profile",
        "aws_access_key_id",
        "aws_secret_access_key",
    ),
}
_DSN_TO_URL = {"host", "port", "user", "password", "dbname"}


@dataclass(frozen=True)
class LakeFSDatabase:
    """Where a lakeFS configuration keeps its metadata, as a lakekv store URL.

    ``credentials`` holds AWS credentials from the configuration, by the DynamoDB driver's
    names (``aws_access_key_id``, ``aws_secret_access_key``), for
    ``open_store(url, credentials=...)``: they are never put in a URL or the environment.
    ``str()`` hides the password.
    """

    url: str = field(repr=False)
    type: str
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        return str(StoreURL.parse(self.url))

    def __repr__(self) -> str:
        return f"LakeFSDatabase({str(self)!r}, type={self.type!r})"


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong and where (line, column), without quoting the file."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        parts = [p for p in (exc.context, exc.problem) if p]
        text = ", ".join(parts) or "syntax error"
        if mark is not None:
            text += f" at line {mark.line + 1}, column {mark.column + 1}"
        return text
    return "syntax error"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read lakeFS config {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"lakeFS config {path} is not UTF-8 text") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Never the YAML library's message as a whole: its snippet of the offending line
        # may hold a secret.
        raise ConfigurationError(
            f"lakeFS config {path} is not valid YAML: {_yaml_problem(exc)}"
        ) from None
    except RecursionError:
        raise ConfigurationError(f"lakeFS config {path} is nested too deeply") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigurationError(f"lakeFS config {path} is not a YAML mapping")
    return doc


def _positive_int(value: object, where: str, name: str) -> int:
    """A positive integer setting (YAML int or decimal string), else ConfigurationError."""
    try:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError
        number = int(value)
    except ValueError:
        raise ConfigurationError(
            f"{where}: database.postgres.{name} must be a positive integer"
        ) from None
    if number < 1:
        raise ConfigurationError(f"{where}: database.postgres.{name} must be a positive integer")
    return number


def _dsn_to_url(dsn: str) -> str:
    """A libpq keyword/value connection string as a ``postgres://`` URL."""
    try:
        pairs = dict(part.split("=", 1) for part in shlex.split(dsn))
    except ValueError:
        raise ConfigurationError("cannot parse the lakeFS postgres connection_string") from None
    user = pairs.pop("user", "")
    password = pairs.pop("password", None)
    host = pairs.pop("host", "")
    port = pairs.pop("port", "")
    dbname = pairs.pop("dbname", "")
    auth = quote(user, safe="")
    if password is not None:
        auth += ":" + quote(password, safe="")
    netloc = (auth + "@" if auth else "") + host + (":" + port if port else "")
    query = ("?" + urlencode(pairs)) if pairs else ""
    return f"postgres://{netloc}/{quote(dbname, safe='')}{query}"


_SCHEMA_NAME = re.compile(r'^(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")$')


def _postgres_location(url: StoreURL, where: str) -> StoreURL:
    """Translate the connection parameters lakeFS reads to choose its table into lakekv's.

    lakeFS (``pkg/kv/postgres/store.go`` ``parseStoreConfig``) takes the table name from the
    connection string's ``lakefskv_table`` runtime parameter; pgx sends ``search_path`` to the
    server, so lakeFS's unqualified table lives in that schema. They become the driver's
    ``table`` and ``schema``. A ``search_path`` naming several schemas is refused: which one
    holds the table depends on what exists in the database.
    """
    params = url.params()
    table = params.pop("lakefskv_table", None)
    search_path = params.pop("search_path", None)
    if table is None and search_path is None:
        return url
    if table is not None:
        if "table" in params:
            raise ConfigurationError(f"{where}: give either lakefskv_table or table, not both")
        if not table:
            raise ConfigurationError(f"{where}: lakefskv_table is empty")
        params["table"] = table
    if search_path is not None:
        schema = search_path.strip()
        if _SCHEMA_NAME.match(schema) is None:
            raise ConfigurationError(
                f"{where}: search_path {search_path!r} is not one schema name; put the schema "
                "holding lakeFS's table alone in search_path"
            )
        # A quoted name is taken as is; PostgreSQL folds an unquoted one to lower case.
        quoted = schema.startswith('"')
        params["schema"] = schema[1:-1].replace('""', '"') if quoted else schema.lower()
    return url.without_params().with_params(**params)


def _local_url(section: Mapping[str, Any], where: str) -> str:
    """``badger:///path`` for lakeFS's ``database.local`` section (``path`` with ``~``)."""
    raw = str(section.get("path") or "~/lakefs/metadata")
    if raw.startswith("memory:"):
        raise ConfigurationError(
            f"{where}: database.local.path {raw!r} is lakeFS's in-memory store: nothing to migrate"
        )
    return "badger:///" + quote(os.path.abspath(os.path.expanduser(raw)), safe="/")


def lakefs_store_url(
    config: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None
) -> LakeFSDatabase:
    """The store a lakeFS configuration file (and/or ``LAKEFS_DATABASE_*``) points to.

    ``config`` may be ``None`` to use the environment alone. Raises ConfigurationError for a
    missing or unreadable file, a missing type, or a type lakekv cannot open.
    """
    env = os.environ if environ is None else environ
    db: dict[str, Any] = {}
    where = "the environment"
    if config is not None:
        where = os.fspath(config)
        section = _read_yaml(Path(config)).get("database") or {}
        if not isinstance(section, dict):
            raise ConfigurationError(f"{where}: 'database' is not a mapping")
        db = {k: (dict(v) if isinstance(v, dict) else v) for k, v in section.items()}
    if _ENV + "TYPE" in env:
        db["type"] = env[_ENV + "TYPE"]
    for name, keys in _SECTIONS.items():
        for key in keys:
            var = f"{_ENV}{name.upper()}_{key.upper()}"
            if var in env:
                sub = db.setdefault(name, {})
                if isinstance(sub, dict):
                    sub[key] = env[var]
    kind = str(db.get("type") or "").lower()
    if not kind:
        raise ConfigurationError(f"{where}: no database.type (or LAKEFS_DATABASE_TYPE) given")
    if kind in ("cosmosdb", "redis"):
        raise ConfigurationError(
            f"{where}: database type {kind!r} cannot be opened by lakekv (it supports "
            "postgres, dynamodb, local and mem); migrate it with lakeFS's own 'kv dump' and "
            "load the file with 'lakekv load'"
        )
    if kind in ("mem", "memory"):
        return LakeFSDatabase("memory://", "mem")
    sub = db.get(kind) or {}
    if not isinstance(sub, dict):
        raise ConfigurationError(f"{where}: database.{kind} is not a mapping")
    if kind == "local":
        return LakeFSDatabase(_local_url(sub, where), "local")
    if kind in ("postgres", "postgresql"):
        conn = str(sub.get("connection_string") or "")
        if not conn:
            raise ConfigurationError(f"{where}: database.postgres.connection_string is empty")
        if "://" in conn:
            url = StoreURL.parse(conn)
            if url.scheme not in ("postgres", "postgresql"):
                raise ConfigurationError(f"{where}: connection_string is not a postgres URL")
        else:
            url = StoreURL.parse(_dsn_to_url(conn))
        url = _postgres_location(url, where)
        if sub.get("max_open_connections") not in (None, ""):
            url = url.with_params(
                pool_size=_positive_int(sub["max_open_connections"], where, "max_open_connections")
            )
        return LakeFSDatabase(url.render(reveal_password=True), "postgres")
    if kind == "dynamodb":
        params: dict[str, str] = {}
        table = str(sub.get("table_name") or "kvstore")
        params["table"] = table
        if sub.get("aws_region"):
            params["region"] = str(sub["aws_region"])
        if sub.get("endpoint"):
            params["endpoint"] = str(sub["endpoint"])
        if sub.get("aws_profile"):
            params["profile"] = str(sub["aws_profile"])
        creds: dict[str, str] = {}
        if sub.get("aws_access_key_id"):
            creds["aws_access_key_id"] = str(sub["aws_access_key_id"])
        if sub.get("aws_secret_access_key"):
            creds["aws_secret_access_key"] = str(sub["aws_secret_access_key"])
            remember_secret(creds["aws_secret_access_key"])
        return LakeFSDatabase(f"dynamodb://{table.lower()}?{urlencode(params)}", "dynamodb", creds)
    raise ConfigurationError(f"{where}: unknown database type {kind!r}")


def lakefs_sides(
    configs: Mapping[str, str | os.PathLike[str] | None],
    environ: Mapping[str, str] | None = None,
) -> dict[str, LakeFSDatabase]:
    """The store of each side given a lakeFS config (``{"from": path, "to": None}`` → only
    ``"from"``), with ``LAKEFS_DATABASE_*`` overrides applied to that side alone.

    The variables name no side: with two configurations given and any of them set, it is
    ambiguous which side they change (lakekv used to apply them to both), so this raises
    ConfigurationError naming the variables.
    """
    env = os.environ if environ is None else environ
    given = {side: path for side, path in configs.items() if path is not None}
    overrides = sorted(name for name in env if name.startswith(_ENV))
    if len(given) > 1 and overrides:
        raise ConfigurationError(
            f"{', '.join(overrides)} set while both sides come from lakeFS configs: the "
            "variables would apply to both; unset them, or give one side as a URL"
        )
    return {side: lakefs_store_url(path, env) for side, path in given.items()}


_MASK = "****"
_LIBPQ_KEPT = ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout")
"""Connection parameters of a ``postgres://`` store URL that lakeFS's connection string
takes too; lakekv's own (``table``, ``schema``, pool and paging settings) are translated or
left out."""


def lakefs_settings(url: StoreURL) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``database:`` section of a lakeFS configuration that points lakeFS at the store
    ``url`` names, and the same as ``LAKEFS_DATABASE_*`` variables; a password is shown as
    ``****`` (put the real one in). Empty for a store lakeFS cannot use."""
    params = dict(url.query)
    if url.scheme in ("postgres", "postgresql"):
        query = {k: params[k] for k in _LIBPQ_KEPT if k in params}
        if params.get("table", "kv") != "kv":
            query["lakefskv_table"] = params["table"]
        if params.get("schema"):
            query["search_path"] = params["schema"]
        user = quote(url.username or "", safe="")
        auth = f"{user}:{_MASK}@" if url.password else (f"{user}@" if user else "")
        host = url.host or "localhost"
        if ":" in host:
            host = f"[{host}]"
        port = f":{url.port}" if url.port else ""
        conn = f"postgres://{auth}{host}{port}{url.path or '/'}"
        if query:
            conn += "?" + urlencode(query)
        return (
            {"type": "postgres", "postgres": {"connection_string": conn}},
            {"LAKEFS_DATABASE_TYPE": "postgres", f"{_ENV}POSTGRES_CONNECTION_STRING": conn},
        )
    if url.scheme == "dynamodb":
        section: dict[str, str] = {"table_name": params.get("table") or url.host or "kvstore"}
        for ours, theirs in (
            ("region", "aws_region"),
            ("endpoint", "endpoint"),
            ("profile", "aws_profile"),
        ):
            if params.get(ours):
                section[theirs] = params[ours]
        env = {"LAKEFS_DATABASE_TYPE": "dynamodb"}
        env.update({f"{_ENV}DYNAMODB_{k.upper()}": v for k, v in section.items()})
        return {"type": "dynamodb", "dynamodb": section}, env
    if url.scheme == "memory":
        return {"type": "mem"}, {"LAKEFS_DATABASE_TYPE": "mem"}
    if url.scheme == "badger":
        # badger:///rel/dir is relative to this directory, badger:////abs/dir absolute;
        # lakeFS gets the absolute path (it resolves relative ones against its own).
        path = os.path.abspath(url.path[1:] if url.path.startswith("/") else url.path)
        return (
            {"type": "local", "local": {"path": path}},
            {"LAKEFS_DATABASE_TYPE": "local", f"{_ENV}LOCAL_PATH": path},
        )
    return {}, {}
