"""The one batching rule of migration passes (``lakekv.migrate._batch.Batch``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakekv.kv.store import Entry
from lakekv.migrate._batch import Batch


def _one_by_one(entries: list[Entry], n: int, b: int) -> list[list[Entry]]:
    """The batches :meth:`Batch.add` makes, entry by entry: the reference."""
    out, batch = [], Batch(n, b)
    for e in entries:
        if batch.add(e):
            out.append(batch.take()[0])
    if len(batch):
        out.append(batch.take()[0])
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 40), max_size=60),
    st.lists(st.integers(1, 25), min_size=1, max_size=6),
    st.integers(1, 7),
    st.integers(0, 90),
)
def test_fill_cuts_pages_where_add_would(
    sizes: list[int], page_sizes: list[int], max_entries: int, max_bytes: int
) -> None:
    entries = [Entry(b"p", b"k%04d" % i, b"v" * s) for i, s in enumerate(sizes)]
    batch, got = Batch(max_entries, max_bytes), []
    at, i = 0, 0
    while at < len(entries):
        page = entries[at : at + page_sizes[i % len(page_sizes)]]
        at, i = at + len(page), i + 1
        for _ in batch.fill(page):
            taken, nbytes = batch.take()
            assert nbytes == sum(len(e.key) + len(e.value) for e in taken)
            got.append(taken)
    if len(batch):
        got.append(batch.take()[0])
    assert got == _one_by_one(entries, max_entries, max_bytes)
    for b in got[:-1]:  # every batch but the last is full, and only just
        assert len(b) == max_entries or sum(len(e.key) + len(e.value) for e in b) >= max_bytes
        assert len(b) <= max_entries
        assert len(b) == 1 or sum(len(e.key) + len(e.value) for e in b[:-1]) < max_bytes


def test_a_full_batch_must_be_taken_before_fill_goes_on() -> None:
    batch = Batch(2, 1000)
    filling = batch.fill([Entry(b"p", b"%d" % i, b"") for i in range(5)])
    next(filling)
    with pytest.raises(RuntimeError, match="without the full batch taken"):
        next(filling)


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Batch(0, 10)
    with pytest.raises(ValueError, match="positive"):
        Batch(1, -1)


def test_keep_only_recounts_bytes() -> None:
    batch = Batch(10, 1000)
    for e in (Entry(b"p", b"a", b"xx"), Entry(b"p", b"b", b"yyy")):
        batch.add(e)
    batch.keep_only(lambda e: e.key == b"b")
    assert (batch.entries, batch.nbytes) == ([Entry(b"p", b"b", b"yyy")], 4)
