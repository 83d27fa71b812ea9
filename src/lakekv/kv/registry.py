"""Scheme → driver. Built-in drivers are imported on first use; others join by entry point.

A third-party package registers a driver in its ``pyproject.toml``::

    [project.entry-points."lakekv.drivers"]
    mydb = "mypackage.driver:MyDBStore"

or at run time with :func:`register_driver`. A scheme can be registered only once: a second
registration (or an entry point that shadows a built-in) raises ConfigurationError.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakekv.errors import (
    ConfigurationError,
    DriverNotInstalledError,
    UnknownDriverError,
    UnsupportedError,
)
from lakekv.kv.store import DEFAULT_OPEN, OpenOptions, Store
from lakekv.kv.url import StoreURL

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from opentelemetry.trace import Tracer

    from lakekv.kv.wrappers import KVMetrics, Limiter, RateLimit


@dataclass(frozen=True)
class DriverSpec:
    """Where a driver lives and what to install for it."""

    scheme: str
    target: str
    """``module:Class`` path, imported lazily."""
    extra: str | None = None
    """The ``lakekv[extra]`` that installs its dependencies, if any."""
    origin: str = "built-in"
    note: str | None = None
    """What a user must know before relying on it (e.g. durability), shown by ``lakekv drivers``."""

    @property
    def install_hint(self) -> str:
        if self.extra is None:
            return "included"
        return f"pip install 'lakekv[{self.extra}]'"


@dataclass(frozen=True)
class DriverInfo:
    """A registered driver and whether it can be used in this environment."""

    scheme: str
    target: str
    origin: str
    installed: bool
    install_hint: str
    problem: str | None
    note: str | None = None


_REDIS_DURABILITY = (
    "durability is the server's persistence settings (RDB/AOF, appendfsync): "
    "acknowledged writes can be lost"
)

_BUILTIN = (
    DriverSpec("memory", "lakekv.kv.drivers.memory:MemoryStore"),
    DriverSpec("sqlite", "lakekv.kv.drivers.sqlite:SQLiteStore"),
    DriverSpec("postgres", "lakekv.kv.drivers.postgres:PostgresStore", "postgres"),
    DriverSpec("postgresql", "lakekv.kv.drivers.postgres:PostgresStore", "postgres"),
    DriverSpec("dynamodb", "lakekv.kv.drivers.dynamodb:DynamoDBStore", "dynamodb"),
    DriverSpec("mysql", "lakekv.kv.drivers.mysql:MySQLStore", "mysql"),
    DriverSpec("mariadb", "lakekv.kv.drivers.mysql:MySQLStore", "mysql"),
    DriverSpec("lmdb", "lakekv.kv.drivers.lmdb:LMDBStore", "lmdb"),
    DriverSpec("redis", "lakekv.kv.drivers.redis:RedisStore", "redis", note=_REDIS_DURABILITY),
    DriverSpec(
        "redis+cluster",
        "lakekv.kv.drivers.redis:RedisClusterStore",
        "redis",
        note=_REDIS_DURABILITY,
    ),
    DriverSpec("etcd", "lakekv.kv.drivers.etcd:EtcdStore", "etcd"),
    DriverSpec(
        "badger",
        "lakekv.kv.drivers.badger:BadgerStore",
        note="lakeFS's local database; needs the lakekv-badger helper (Go): make badger-helper",
    ),
)

_lock = threading.RLock()
_specs: dict[str, DriverSpec] = {}
_classes: dict[str, type[Store]] = {}
_loaded_entry_points = False


def entry_points(group: str) -> Iterable[EntryPoint]:
    """:func:`importlib.metadata.entry_points` of ``group``; empty, without importing
    importlib.metadata (a fifth of ``lakekv get``'s start-up), when no installed
    distribution can declare one (:func:`may_declare_entry_points`)."""
    if not may_declare_entry_points(group):
        return ()
    from importlib import metadata  # noqa: PLC0415

    return metadata.entry_points(group=group)


def may_declare_entry_points(group: str) -> bool:
    """False only when no distribution on ``sys.path`` declares an entry point of ``group``.

    Reads the ``entry_points.txt`` of every ``*.dist-info`` and ``*.egg-info`` directory on
    ``sys.path``, where importlib.metadata finds them. Whatever it cannot read so cheaply
    answers True, leaving the answer to importlib.metadata: a file on ``sys.path`` (a zip,
    an egg), a meta path finder other than the standard one that can find distributions.
    """
    import importlib.machinery  # noqa: PLC0415 (already loaded by the interpreter)

    for finder in sys.meta_path:
        if finder is not importlib.machinery.PathFinder and hasattr(finder, "find_distributions"):
            return True
    header = f"[{group}]".encode()
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as found:
                names = [d.name for d in found if d.name.endswith((".dist-info", ".egg-info"))]
        except NotADirectoryError:
            return True
        except OSError:
            continue  # missing, unreadable: importlib.metadata finds nothing there either
        for name in names:
            try:
                with open(os.path.join(entry or ".", name, "entry_points.txt"), "rb") as f:
                    if header in f.read():
                        return True
            except FileNotFoundError:
                continue
            except OSError:
                return True
    return False


def _ensure_loaded() -> None:
    global _loaded_entry_points
    with _lock:
        if _loaded_entry_points:
            return
        for spec in _BUILTIN:
            _specs[spec.scheme] = spec
        for ep in entry_points(group="lakekv.drivers"):
            dist = ep.dist.name if ep.dist is not None else "unknown distribution"
            _add(DriverSpec(ep.name.lower(), ep.value, None, f"entry point ({dist})"))
        _loaded_entry_points = True


def _add(spec: DriverSpec) -> None:
    existing = _specs.get(spec.scheme)
    if existing is not None:
        raise ConfigurationError(
            f"driver scheme {spec.scheme!r} registered twice: {existing.target} "
            f"({existing.origin}) and {spec.target} ({spec.origin})"
        )
    _specs[spec.scheme] = spec


def register_driver(scheme: str, driver: str | type[Store], *, extra: str | None = None) -> None:
    """Register ``driver`` (a class or a ``module:Class`` path) for ``scheme``.

    Raises ConfigurationError if the scheme is already taken.
    """
    _ensure_loaded()
    scheme = scheme.lower()
    with _lock:
        if isinstance(driver, str):
            _add(DriverSpec(scheme, driver, extra, "register_driver"))
        else:
            _add(
                DriverSpec(
                    scheme, f"{driver.__module__}:{driver.__qualname__}", extra, "register_driver"
                )
            )
            _classes[scheme] = driver


def unregister_driver(scheme: str) -> None:
    """Remove a driver added with :func:`register_driver` (built-ins cannot be removed)."""
    _ensure_loaded()
    with _lock:
        spec = _specs.get(scheme)
        if spec is None or spec.origin == "built-in":
            raise ConfigurationError(f"cannot unregister driver {scheme!r}")
        del _specs[scheme]
        _classes.pop(scheme, None)


def driver_class(scheme: str) -> type[Store]:
    """The driver class for ``scheme``, importing it on first use.

    Raises UnknownDriverError for an unregistered scheme and DriverNotInstalledError (with the
    install hint) when the driver's dependencies are missing.
    """
    _ensure_loaded()
    scheme = scheme.lower()
    with _lock:
        cls = _classes.get(scheme)
        if cls is not None:
            return cls
        spec = _specs.get(scheme)
        if spec is None:
            known = ", ".join(sorted(_specs))
            raise UnknownDriverError(f"no driver for scheme {scheme!r} (known: {known})")
        cls = _import(spec)
        _classes[scheme] = cls
        return cls


def _import(spec: DriverSpec) -> type[Store]:
    module_name, _, attr = spec.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name or ""
        if missing.split(".")[0] == "lakekv" and missing != module_name:
            raise
        raise DriverNotInstalledError(
            f"driver {spec.scheme}:// needs {missing or 'missing modules'}: {spec.install_hint}"
        ) from exc
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Store)):
        raise ConfigurationError(f"driver {spec.scheme}:// target {spec.target} is not a Store")
    return cls


def available_drivers() -> list[DriverInfo]:
    """Every registered scheme, whether its dependencies are installed, and the install hint."""
    _ensure_loaded()
    with _lock:
        specs = sorted(_specs.values(), key=lambda s: s.scheme)
    infos = []
    for spec in specs:
        problem: str | None = None
        try:
            driver_class(spec.scheme)
        except ConfigurationError as exc:
            problem = str(exc)
        infos.append(
            DriverInfo(
                spec.scheme,
                spec.target,
                spec.origin,
                problem is None,
                spec.install_hint,
                problem,
                spec.note,
            )
        )
    return infos


def open_store(
    url: str | StoreURL,
    *,
    create: bool = True,
    read_only: bool = False,
    credentials: Mapping[str, str] | None = None,
    metrics: bool | KVMetrics = False,
    tracing: bool | Tracer = False,
    rate_limit: RateLimit | Limiter | None = None,
) -> Store:
    """Open the store a URL names: the one front door.

    ``memory://``, ``sqlite:///path/to.db``, ``postgres://user@host:5432/db?table=kv``,
    ``dynamodb://table?region=us-east-1&endpoint=http://127.0.0.1:8000`` ...

    ``create=False`` opens only a store that exists (StoreNotFoundError naming the missing
    file, table or store, and nothing is created); ``read_only=True`` also refuses every
    write; ``credentials`` are secrets for this store only (see ``OpenOptions``). Raises
    ConfigurationError (bad URL, unknown scheme or parameter, missing extra) or
    StoreUnavailableError (the database cannot be reached). Errors never show a password.

    ``metrics``, ``tracing`` and ``rate_limit`` return the store wrapped (see
    :func:`lakekv.kv.wrappers.observed`): Prometheus metrics with lakeFS's names (``True``:
    the default registry, or a ``KVMetrics``), OpenTelemetry spans (``True``: the global
    tracer provider, or a tracer), a limit in entries and bytes per second. Left off, the
    store is the driver's own, untouched. A missing optional dependency is
    ConfigurationError naming the extra to install (``lakekv[metrics]``,
    ``lakekv[tracing]``).
    """
    parsed = url if isinstance(url, StoreURL) else StoreURL.parse(url)
    options = OpenOptions(create=create, read_only=read_only, credentials=dict(credentials or {}))
    cls = driver_class(parsed.scheme)
    if not _takes_options(cls):
        # A driver written before OpenOptions: usable only when nothing is asked of it.
        if options != DEFAULT_OPEN:
            raise UnsupportedError(
                f"driver {parsed.scheme}:// cannot open a store without creating it, read-only "
                "or with credentials (its from_url takes no options)"
            )
        store = cls.from_url(parsed)
    else:
        store = cls.from_url(parsed, options)
    if metrics is False and tracing is False and rate_limit is None:
        return store
    from lakekv.kv.wrappers import observed  # noqa: PLC0415

    try:
        return observed(store, metrics=metrics, tracing=tracing, rate_limit=rate_limit)
    except BaseException:
        store.close()
        raise


def _takes_options(cls: type[Store]) -> bool:
    try:
        import inspect  # noqa: PLC0415 (10 ms: on first use)

        params = inspect.signature(cls.from_url).parameters
    except (TypeError, ValueError):
        return True
    return len(params) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params.values())
