"""Driver registry: lazy built-ins, install hints, entry points, duplicate schemes."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakekv import open_store
from lakekv.errors import ConfigurationError, DriverNotInstalledError, UnknownDriverError
from lakekv.kv import registry
from lakekv.kv.drivers.memory import MemoryStore
from lakekv.kv.store import Store


def test_builtin_schemes_are_listed() -> None:
    schemes = {d.scheme for d in registry.available_drivers()}
    assert {"memory", "sqlite", "postgres", "postgresql", "dynamodb"} <= schemes
    memory = next(d for d in registry.available_drivers() if d.scheme == "memory")
    assert memory.installed
    assert memory.install_hint == "included"


def test_unknown_scheme() -> None:
    with pytest.raises(UnknownDriverError, match="nosuch"):
        open_store("nosuch://x")


def test_missing_dependency_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = registry.DriverSpec("fakedb", "lakekv_fake_driver_module:FakeStore", "fakedb")
    monkeypatch.setitem(registry._specs, "fakedb", spec)
    with pytest.raises(DriverNotInstalledError, match=r"pip install 'lakekv\[fakedb\]'"):
        open_store("fakedb://x")
    info = next(d for d in registry.available_drivers() if d.scheme == "fakedb")
    assert not info.installed
    assert info.problem is not None


@pytest.fixture
def custom_scheme() -> Iterator[str]:
    yield "custommem"
    registry.unregister_driver("custommem")


def test_register_driver_and_duplicates(custom_scheme: str) -> None:
    registry.register_driver(custom_scheme, MemoryStore)
    with open_store(f"{custom_scheme}://") as s:
        s.set(b"p", b"k", b"v")
        assert s.get(b"p", b"k").value == b"v"
    with pytest.raises(ConfigurationError, match="registered twice"):
        registry.register_driver(custom_scheme, MemoryStore)
    with pytest.raises(ConfigurationError, match="registered twice"):
        registry.register_driver("sqlite", MemoryStore)


def test_builtins_cannot_be_unregistered() -> None:
    with pytest.raises(ConfigurationError):
        registry.unregister_driver("sqlite")


def test_entry_point_drivers_join(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("lakekv_ep_test_driver")

    class EPStore(MemoryStore):
        scheme = "epmem"

    module.EPStore = EPStore  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "lakekv_ep_test_driver", module)

    class FakeEP:
        name = "epmem"
        value = "lakekv_ep_test_driver:EPStore"
        dist = None

    monkeypatch.setattr(registry, "entry_points", lambda group: [FakeEP()])
    monkeypatch.setattr(registry, "_specs", {})
    monkeypatch.setattr(registry, "_classes", {})
    monkeypatch.setattr(registry, "_loaded_entry_points", False)
    cls: type[Store] = registry.driver_class("epmem")
    assert cls is EPStore
    assert registry.driver_class("sqlite").scheme == "sqlite"


def test_entry_point_shadowing_builtin_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeEP:
        name = "sqlite"
        value = "somewhere:Else"
        dist = None

    monkeypatch.setattr(registry, "entry_points", lambda group: [FakeEP()])
    monkeypatch.setattr(registry, "_specs", {})
    monkeypatch.setattr(registry, "_classes", {})
    monkeypatch.setattr(registry, "_loaded_entry_points", False)
    with pytest.raises(ConfigurationError, match="registered twice"):
        registry.driver_class("memory")


def test_target_that_is_not_a_store(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = registry.DriverSpec("notastore", "lakekv.errors:LakekvError")
    monkeypatch.setitem(registry._specs, "notastore", spec)
    with pytest.raises(ConfigurationError, match="not a Store"):
        open_store("notastore://")


def test_entry_points_are_looked_for_where_importlib_metadata_looks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from importlib import metadata  # noqa: PLC0415

    for group in ("console_scripts", "pytest11", "lakekv.drivers", "lakekv.no-such-group"):
        if metadata.entry_points(group=group):
            assert registry.may_declare_entry_points(group)
    assert not registry.may_declare_entry_points("lakekv.no-such-group")
    assert list(registry.entry_points("lakekv.no-such-group")) == []
    dist = tmp_path / "site" / "somedriver-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "entry_points.txt").write_text("[lakekv.no-such-group]\nx = m:C\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert registry.may_declare_entry_points("lakekv.no-such-group")
    assert [ep.name for ep in registry.entry_points("lakekv.no-such-group")] == ["x"]
    (tmp_path / "packed.zip").write_bytes(b"")
    monkeypatch.syspath_prepend(str(tmp_path / "packed.zip"))
    assert registry.may_declare_entry_points("lakekv.other-group")  # a file: ask importlib
