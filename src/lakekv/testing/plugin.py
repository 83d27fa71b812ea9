"""pytest plugin: ``--store URL`` options and the fixtures the conformance suite uses.

Registered through the ``pytest11`` entry point, so installing lakekv is enough. Options:

``--store URL`` (repeatable)
    A store to run the suite against. Default: ``memory://`` and a temporary SQLite file.
``--page-sizes 1,2,10``
    Scan page sizes: every contract test runs once per store and page size, with both the
    first page and the page cap set to that size, so page boundaries are crossed constantly.

Fixtures
    ``store_url``       a configured store URL with paging parameters (parametrized)
    ``store``           that store, opened; closed after the test
    ``partition``       a partition name unique to this test run and test (bytes)
    ``make_partition``  ``make_partition("suffix") -> bytes``, more unique partitions
    ``backend_url``     each configured store once, default paging (parametrized)
    ``plain_store``     that store, opened (for tests where paging does not matter)
    ``fresh_store_url`` an *empty* store of that backend, isolated (its own memory store,
                        SQLite file, table); destroyed after the test
    ``fresh_store``     that store, opened
    ``make_fresh_store_url`` ``make_fresh_store_url(name)``: more isolated stores of the backend

A store that cannot be reached is skipped, unless the environment variable ``CI`` is set: then
its tests fail, because a silently skipped backend is a hidden failure.
:func:`require_available`, :func:`require_driver` and :func:`require_module` apply the same
rule to a store, a driver whose extra is not installed, and any optional module.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from lakekv.errors import DriverNotInstalledError, LakekvError
from lakekv.kv.registry import driver_class, open_store
from lakekv.kv.store import Store
from lakekv.kv.url import StoreURL

RUN_ID = uuid.uuid4().hex[:10]
"""Unique per test session; every name the fixtures make starts with it."""

_availability: dict[str, str | None] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lakekv", "lakekv store conformance")
    group.addoption(
        "--store",
        action="append",
        default=[],
        metavar="URL",
        help="store URL to run the lakekv suites against (repeatable)",
    )
    group.addoption(
        "--page-sizes",
        default="1,2,10",
        metavar="N,N,...",
        help="scan page sizes for the contract suite (default 1,2,10)",
    )


def configured_stores(config: pytest.Config) -> list[str]:
    """The ``--store`` URLs, or the defaults (memory and a temporary SQLite file)."""
    stores: list[str] = list(config.getoption("--store"))
    if not stores:
        stores = ["memory://", "sqlite:///{tmp}/lakekv-test.db"]
    return stores


def _label(url: str) -> str:
    parsed = StoreURL.parse(url)
    return parsed.scheme


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "lakekv_requires(*capabilities): run only on stores whose driver declares these "
        "Capabilities flags (e.g. 'shared_between_processes')",
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    stores = ", ".join(str(StoreURL.parse(u)) for u in configured_stores(config))
    required = " (all required: CI is set)" if os.environ.get("CI") else ""
    return [f"lakekv stores: {stores}{required}"]


def _has_capabilities(url: str, names: tuple[str, ...]) -> bool:
    """Whether the driver of ``url`` declares every capability in ``names``.

    A driver that cannot be imported is kept, so that ``require_available`` reports it.
    """
    try:
        caps = driver_class(StoreURL.parse(url).scheme).capabilities
    except LakekvError:
        return True
    return all(getattr(caps, name) for name in names)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    stores = configured_stores(metafunc.config)
    labels = [_label(u) for u in stores]
    if len(set(labels)) != len(labels):
        labels = [f"{lab}{i}" for i, lab in enumerate(labels)]
    needed = tuple(
        name for mark in metafunc.definition.iter_markers("lakekv_requires") for name in mark.args
    )
    if needed:
        kept = [
            (u, lab) for u, lab in zip(stores, labels, strict=True) if _has_capabilities(u, needed)
        ]
        stores, labels = [u for u, _ in kept], [lab for _, lab in kept]
    if "store_url" in metafunc.fixturenames:
        sizes = [int(s) for s in str(metafunc.config.getoption("--page-sizes")).split(",") if s]
        params = [(u, n) for u in stores for n in sizes]
        ids = [f"{lab}-page{n}" for lab in labels for n in sizes]
        metafunc.parametrize("store_url", params, ids=ids, indirect=True)
    if "backend_url" in metafunc.fixturenames:
        metafunc.parametrize("backend_url", stores, ids=labels, indirect=True)


def materialize(url: str, tmp_dir: Path) -> str:
    """``url`` with its ``{tmp}`` placeholder replaced by ``tmp_dir``."""
    return url.replace("{tmp}", str(tmp_dir))


def require_available(url: str) -> None:
    """Skip (or, with ``CI`` set, fail) when the store at ``url`` cannot be opened."""
    if url not in _availability:
        try:
            with open_store(url):
                pass
            _availability[url] = None
        except LakekvError as exc:
            _availability[url] = f"{StoreURL.parse(url)} unavailable: {exc}"
    problem = _availability[url]
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{problem} (required because CI is set)", pytrace=False)
        pytest.skip(problem)


def _required(problem: str) -> None:
    """Skip with ``problem``, or fail when the environment variable ``CI`` is set."""
    if os.environ.get("CI"):
        pytest.fail(f"{problem} (required because CI is set)", pytrace=False)
    pytest.skip(problem, allow_module_level=True)


def require_driver(scheme: str) -> None:
    """Skip (or, with ``CI`` set, fail) when the driver of ``scheme`` cannot be imported
    here: its extra is not installed. Tests that need a driver's code but no server (URL
    parsing, error messages) call this instead of failing on the import."""
    try:
        driver_class(scheme)
    except DriverNotInstalledError as exc:
        _required(str(exc))


def require_module(name: str, extra: str) -> ModuleType:
    """``name`` imported; skip (or, with ``CI`` set, fail) when it is missing, naming the
    ``lakekv[extra]`` that installs it. Usable at module level."""
    try:
        return importlib.import_module(name)
    except ImportError:
        _required(f"{name} is not installed (pip install 'lakekv[{extra}]')")
        raise  # not reached: _required raised


@pytest.fixture(scope="session")
def _lakekv_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lakekv")


@pytest.fixture
def store_url(request: pytest.FixtureRequest, _lakekv_tmp: Path) -> str:
    url, size = request.param
    url = materialize(url, _lakekv_tmp)
    require_available(url)
    return str(
        StoreURL.parse(url).with_params(page_size=size, page_cap=size).render(reveal_password=True)
    )


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()


def unique_name(request: pytest.FixtureRequest, suffix: str = "") -> str:
    """``lakekv-test/<run id>/<test id>[/suffix]``: unique per run and test."""
    test_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-120:]
    name = f"lakekv-test/{RUN_ID}/{test_id}"
    return f"{name}/{suffix}" if suffix else name


@pytest.fixture
def make_partition(request: pytest.FixtureRequest) -> Callable[[str], bytes]:
    def make(suffix: str = "") -> bytes:
        return unique_name(request, suffix).encode()

    return make


@pytest.fixture
def partition(make_partition: Callable[[str], bytes]) -> bytes:
    return make_partition("")


@pytest.fixture
def backend_url(request: pytest.FixtureRequest, _lakekv_tmp: Path) -> str:
    url = materialize(str(request.param), _lakekv_tmp)
    require_available(url)
    return url


@pytest.fixture
def plain_store(backend_url: str) -> Iterator[Store]:
    s = open_store(backend_url)
    try:
        yield s
    finally:
        s.close()


def isolated_url(base: str, name: str) -> str:
    """A URL for an empty store of the same backend, private to ``name``.

    ``memory://`` gets its own named store; every other driver gets its own ``table`` (or
    whatever its ``namespace_param`` names: a Redis namespace, an etcd key prefix), or, for a
    driver whose store is a whole directory (``namespace_param = None``), the sibling path
    ``PATH.name``.
    """
    parsed = StoreURL.parse(base)
    safe = re.sub(r"[^a-z0-9_]", "_", name.lower())
    if parsed.scheme == "memory":
        return f"memory://{safe}"
    param: str | None
    try:
        param = driver_class(parsed.scheme).namespace_param
    except LakekvError:
        param = "table"
    if param is None:  # a store is a whole path: a sibling path of its own
        sibling = dataclasses.replace(parsed, path=f"{parsed.path.rstrip('/')}.{safe}")
        return sibling.render(reveal_password=True)
    return parsed.with_params(**{param: safe}).render(reveal_password=True)


def fresh_url(base: str, name: str = "") -> str:
    """An :func:`isolated_url` of ``base`` under a name no other test or run uses."""
    table = f"t_{RUN_ID}_{uuid.uuid4().hex[:8]}{'_' + name if name else ''}"
    return isolated_url(base, table[:59])


@pytest.fixture
def make_fresh_store_url(backend_url: str) -> Iterator[Callable[[str], str]]:
    made: list[str] = []

    def make(name: str = "") -> str:
        url = fresh_url(backend_url, name)
        made.append(url)
        return url

    yield make
    for url in made:
        try:
            with open_store(url) as s:
                s.destroy()
        except LakekvError:
            pass


@pytest.fixture
def fresh_store_url(make_fresh_store_url: Callable[[str], str]) -> str:
    return make_fresh_store_url("")


@pytest.fixture
def fresh_store(fresh_store_url: str) -> Iterator[Store]:
    s = open_store(fresh_store_url)
    try:
        yield s
    finally:
        s.close()
