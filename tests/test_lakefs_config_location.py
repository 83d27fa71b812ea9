"""The lakeFS configuration settings that decide where the data lives reach lakekv's drivers
(lakeFS v1.86.0 ``pkg/config/config.go``, ``pkg/kv/postgres/store.go``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakekv.errors import ConfigurationError, StoreUnavailableError
from lakekv.kv.registry import open_store
from lakekv.kv.url import StoreURL
from lakekv.migrate.lakefs_config import lakefs_store_url


def _pg_env(conn: str) -> dict[str, str]:
    return {"LAKEFS_DATABASE_TYPE": "postgres", "LAKEFS_DATABASE_POSTGRES_CONNECTION_STRING": conn}


def test_lakefskv_table_and_search_path_in_url_form(tmp_path: Path) -> None:
    # parseStoreConfig: the table name is the connection string's lakefskv_table parameter;
    # pgx sends search_path to the server, so the unqualified table lives in that schema.
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "database:\n  type: postgres\n  postgres:\n"
        '    connection_string: "postgres://u@db/lakefs?sslmode=disable&lakefskv_table=meta_kv'
        '&search_path=Lake"\n',
        encoding="utf-8",
    )
    db = lakefs_store_url(cfg, environ={})
    assert db.url == "postgres://u@db/lakefs?sslmode=disable&table=meta_kv&schema=lake"


def test_lakefskv_table_and_quoted_search_path_in_keyword_form() -> None:
    env = _pg_env("host=pg dbname=meta lakefskv_table=Custom search_path='\"My Schema\"'")
    db = lakefs_store_url(None, environ=env)
    assert StoreURL.parse(db.url).params() == {"table": "Custom", "schema": "My Schema"}


def test_unusable_location_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="not one schema name"):
        lakefs_store_url(None, environ=_pg_env("host=pg search_path='a,b'"))
    with pytest.raises(ConfigurationError, match="lakefskv_table is empty"):
        lakefs_store_url(None, environ=_pg_env("postgres://pg/db?lakefskv_table="))
    with pytest.raises(ConfigurationError, match="'redis' cannot be opened"):
        lakefs_store_url(None, environ={"LAKEFS_DATABASE_TYPE": "redis"})


def test_the_driver_accepts_the_translated_url() -> None:
    """No parameter is left for the driver to reject: opening fails only on the connection."""
    pytest.importorskip("psycopg")
    env = _pg_env("postgres://u@127.0.0.1:1/db?lakefskv_table=meta_kv&search_path=lake")
    url = StoreURL.parse(lakefs_store_url(None, environ=env).url).with_params(connect_timeout=1)
    with pytest.raises(StoreUnavailableError):
        open_store(url.render(reveal_password=True))
    unknown = url.with_params(lakefskv_table="x")  # what lakekv passed on before
    with pytest.raises(ConfigurationError, match="lakefskv_table"):
        open_store(unknown.render(reveal_password=True))


def test_local_database_is_a_badger_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``database.type: local`` is lakeFS's Badger directory ``database.local.path``; ``~`` is
    expanded as lakeFS's kvparams does, and the default is ``~/lakefs/metadata``
    (``pkg/config/defaults.go:140``)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cfg = tmp_path / "config.yaml"
    cfg.write_text("database:\n  type: local\n  local:\n    path: ~/meta data\n", encoding="utf-8")
    db = lakefs_store_url(cfg, environ={})
    assert db.type == "local"
    assert StoreURL.parse(db.url).scheme == "badger"
    assert StoreURL.parse(db.url).path == f"/{tmp_path}/home/meta data"
    default = lakefs_store_url(None, environ={"LAKEFS_DATABASE_TYPE": "local"})
    assert StoreURL.parse(default.url).path == f"/{tmp_path}/home/lakefs/metadata"
    env = {"LAKEFS_DATABASE_TYPE": "local", "LAKEFS_DATABASE_LOCAL_PATH": "/srv/lake%fs"}
    assert StoreURL.parse(lakefs_store_url(None, environ=env).url).path == "//srv/lake%fs"
    with pytest.raises(ConfigurationError, match="in-memory"):
        env = {"LAKEFS_DATABASE_TYPE": "local", "LAKEFS_DATABASE_LOCAL_PATH": "memory:x"}
        lakefs_store_url(None, environ=env)
