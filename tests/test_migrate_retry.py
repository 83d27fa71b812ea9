"""Retrying scans during migrations: per entry and in chunks, nothing skipped or repeated."""

from __future__ import annotations

import pytest
from _fakes import FlakyStore

from lakekv.errors import StoreUnavailableError
from lakekv.migrate import _retry


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_retry, "_sleep", lambda attempt: None)


def filled(fail_on: set[int]) -> tuple[FlakyStore, list[bytes]]:
    store = FlakyStore(fail_on, page=3)
    keys = [b"k%03d" % i for i in range(20)]
    for k in keys:
        store.set(b"p", k, k)
    store.calls = 0
    return store, keys


@pytest.mark.parametrize("fail_on", [set(), {1}, {2}, {3, 4}, {7}])
def test_retrying_per_entry(fail_on: set[int]) -> None:
    store, keys = filled(fail_on)
    counter = _retry.RetryCounter()
    got = [e.key for e in _retry.retrying(store.scan(b"p"), counter)]
    assert got == keys
    assert counter.count == len(fail_on)


@pytest.mark.parametrize("fail_on", [set(), {1}, {2}, {3, 4}, {7}])
def test_retrying_pages(fail_on: set[int]) -> None:
    store, keys = filled(fail_on)
    counter = _retry.RetryCounter()
    pages = list(_retry.retrying_pages(store, b"p", counter=counter))
    assert [k for page in pages for k, _v in page] == keys
    assert counter.count == len(fail_on)


def test_retrying_pages_from_a_start_key() -> None:
    store, keys = filled({1})
    got = list(_retry.retrying_pages(store, b"p", start=keys[5]))
    assert [k for page in got for k, _v in page] == keys[5:]


def test_retries_are_bounded() -> None:
    store, _keys = filled(set(range(1, 100)))
    with pytest.raises(StoreUnavailableError):
        list(_retry.retrying_pages(store, b"p", attempts=3))
    assert store.calls == 3


def test_scan_pages_match_scan() -> None:
    store, keys = filled(set())
    pages = list(store.scan_pages(b"p", start=keys[3], page_size=2))
    assert [len(p) for p in pages] == [2, 3, 3, 3, 3, 3]  # doubling to the cap of 3
    assert [k for page in pages for k, _v in page] == keys[3:]
    assert [(e.key, e.value) for e in store.scan(b"p", start=keys[3])] == [
        kv for page in pages for kv in page
    ]
