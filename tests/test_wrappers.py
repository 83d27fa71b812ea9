"""StoreWrapper: every driver hook is handed on, and a wrapper changes only what it overrides."""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import FunctionType

import pytest
from _fakes import FlakyStore

from lakekv.errors import (
    InvalidArgumentError,
    KeyNotFoundError,
    StoreClosedError,
    StoreUnavailableError,
    UnsupportedError,
)
from lakekv.kv.contract import StoreContract
from lakekv.kv.registry import open_store
from lakekv.kv.snapshot import SnapshotView
from lakekv.kv.store import Capabilities, ScanPaging, Store, ValueWithPredicate
from lakekv.kv.url import StoreURL
from lakekv.kv.wrappers import StoreWrapper

MACHINERY = {
    "_call",
    "_check_batch",
    "_check_digests",
    "_check_entries",
    "_check_feed",
    "_check_key",
    "_check_name",
    "_check_open",
    "_check_partition",
    "_check_pk",
    "_check_pkv",
    "_check_range",
    "_check_raw",
    "_check_writable",
    "_clean_columns",
    "_failed",
    "_fetch_page",
    "_keyset",
    "_open_guarded",
    "_pages",
    "_redacted",
    "_snapshot_view",
    "_translating",
}
"""Store's own underscored methods: they validate and run calls; they are not driver hooks."""


def _underscored(cls: type) -> set[str]:
    return {
        name
        for name, value in vars(cls).items()
        if name.startswith("_")
        and not name.startswith("__")
        and isinstance(value, FunctionType | staticmethod)
    }


HOOKS = sorted(_underscored(StoreContract))
"""Every hook of the contract, found by introspection: a new hook without a delegation in
StoreWrapper fails the tests below."""
NOT_HANDED_ON = {"_open"}
"""Hooks a wrapper deliberately does not hand on (the inner store is open already)."""


def test_every_hook_is_overridden_by_the_wrapper() -> None:
    assert len(HOOKS) >= 28
    missing = [h for h in HOOKS if h not in vars(StoreWrapper)]
    assert missing == []


def test_the_base_class_adds_machinery_and_no_hooks() -> None:
    """A method added to Store rather than to the contract must be named here as machinery
    (so that a hook cannot hide in Store, undelegated)."""
    assert _underscored(Store) == MACHINERY
    assert not set(HOOKS) & _underscored(Store)


def _recorder() -> tuple[Store, list[tuple[str, tuple[object, ...]]]]:
    """A store whose every hook records its call and returns a marker naming itself."""
    calls: list[tuple[str, tuple[object, ...]]] = []

    def recording(name: str) -> Callable[..., object]:
        def hook(self: Store, *args: object) -> object:
            calls.append((name, args))
            if name == "_list_partitions":
                return iter([b"p1", b"p2"])
            return ("result of", name)

        hook.__name__ = name
        return hook

    namespace: dict[str, object] = {h: recording(h) for h in HOOKS}
    namespace["scheme"] = "recorder"
    recorder_cls = type("Recorder", (Store,), namespace)
    store: Store = recorder_cls(StoreURL.parse("recorder://"), ScanPaging())
    return store, calls


@pytest.mark.parametrize("hook", sorted(set(HOOKS) - NOT_HANDED_ON))
def test_every_hook_is_handed_on(hook: str) -> None:
    inner, calls = _recorder()
    wrapper = StoreWrapper(inner)
    signature = inspect.signature(getattr(StoreContract, hook))
    args = tuple(object() for _ in list(signature.parameters)[1:])
    result = getattr(wrapper, hook)(*args)
    if hook == "_list_partitions":
        assert list(result) == [b"p1", b"p2"]
    elif hook == "_close":
        assert inner.closed
    elif signature.return_annotation != "None":
        assert result == ("result of", hook)
    assert (hook, args) in calls


def test_scheme_capabilities_url_and_identity_are_the_inner_stores() -> None:
    inner = open_store("memory://")
    wrapper = StoreWrapper(inner)
    assert (wrapper.scheme, wrapper.capabilities) == (inner.scheme, inner.capabilities)
    assert wrapper.url == inner.url and wrapper.identity() == inner.identity()
    assert wrapper.paging == inner.paging and wrapper.options == inner.options
    assert repr(wrapper) == f"<StoreWrapper of {inner!r}>"
    with pytest.raises(UnsupportedError, match="not opened from a URL"):
        StoreWrapper.from_url(StoreURL.parse("memory://"))


class Counting(StoreWrapper):
    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.gets = 0

    def _get(self, partition: bytes, key: bytes) -> ValueWithPredicate | None:
        self.gets += 1
        return super()._get(partition, key)


def test_a_wrapper_overrides_only_what_it_changes() -> None:
    with Counting(open_store("memory://")) as store:
        store.set(b"p", b"k", b"v")
        assert store.get(b"p", b"k").value == b"v"
        with pytest.raises(KeyNotFoundError):
            store.get(b"p", b"missing")
        assert [e.key for e in store.scan(b"p")] == [b"k"]
        assert list(store.list_partitions()) == [b"p"]
        assert store.gets == 2
        with pytest.raises(InvalidArgumentError):
            store.get(b"p", "text")  # type: ignore[arg-type]
        assert store.gets == 2  # validated before the hook


def test_declared_capabilities_are_what_the_base_class_checks() -> None:
    inner = open_store("memory://")
    hiding = StoreWrapper(inner, capabilities=Capabilities(max_key_size=3), scheme="small")
    with pytest.raises(UnsupportedError, match="small:// cannot list partitions"):
        hiding.list_partitions()
    with pytest.raises(InvalidArgumentError, match="small:// allows at most 3"):
        hiding.set(b"p", b"long", b"v")


def test_closing_the_wrapper_closes_the_inner_store_and_not_the_reverse() -> None:
    inner = open_store("memory://")
    wrapper = StoreWrapper(inner)
    wrapper.close()
    assert inner.closed
    inner = open_store("memory://")
    wrapper = StoreWrapper(inner)
    inner.close()
    assert not wrapper.closed
    with pytest.raises(StoreClosedError):
        wrapper.get(b"p", b"k")


def test_driver_errors_are_translated_by_the_inner_store() -> None:
    wrapper = StoreWrapper(FlakyStore({1}))
    wrapper.set(b"p", b"a", b"1")
    with pytest.raises(StoreUnavailableError, match="flaky") as info:
        list(wrapper.scan(b"p"))
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)


def test_snapshot_of_a_wrapper_and_the_view_is_a_wrapper(tmp_path: Path) -> None:
    inner = open_store(f"sqlite:///{tmp_path}/db.sqlite")
    wrapper = StoreWrapper(inner)
    wrapper.set(b"p", b"k", b"old")
    with wrapper.snapshot() as view:
        assert isinstance(view, SnapshotView) and isinstance(view, StoreWrapper)
        wrapper.set(b"p", b"k", b"new")
        assert view.get(b"p", b"k").value == b"old"
        assert view.capabilities == inner.capabilities
        assert view.identity() == inner.identity()
        with pytest.raises(UnsupportedError, match="read-only"):
            view.set(b"p", b"k", b"v")
        with pytest.raises(UnsupportedError, match="cannot destroy"):
            view.destroy()
    assert view.closed and not wrapper.closed and not inner.closed
    wrapper.close()
