"""The dump-format interface: both writers behind one protocol, ``open_input`` for both
readers, pages of one partition, and the loader's page path cutting batches where entry by
entry adding would."""

from __future__ import annotations

import io
import random

import pytest

from lakekv.errors import CorruptInputError
from lakekv.kv.registry import open_store
from lakekv.kv.store import Entry
from lakekv.migrate import _retry
from lakekv.migrate._common import WriteOptions
from lakekv.migrate._progress import Tracker
from lakekv.migrate.dumpfile import PAGE_ENTRIES
from lakekv.migrate.formats import DumpFormat, DumpFormatWriter, open_input, open_writer
from lakekv.migrate.lakefs_json import LakeFSJSONWriter
from lakekv.migrate.load import _Loader
from lakekv.migrate.reports import LoadReport


def _entries() -> list[Entry]:
    rng = random.Random(7)
    out = []
    for p in (b"a", b"b", b"c"):
        for i in range(PAGE_ENTRIES + 500 if p == b"b" else 40):
            out.append(Entry(p, b"k%06d" % i, rng.randbytes(rng.randrange(0, 30))))
    return out


def _write(fmt: DumpFormat, entries: list[Entry]) -> bytes:
    out = io.BytesIO()
    writer: DumpFormatWriter = open_writer(
        fmt,
        out,
        source="memory://",
        lakefs_schema_version=None,
        lakekv_version="0",
        partition_source="listed",
    )
    for p in sorted({e.partition for e in entries}):
        writer.begin_partition(p)
        writer.add_page([(e.key, e.value) for e in entries if e.partition == p])
        writer.end_partition()
    writer.finish()
    writer.close()
    assert (writer.partitions, writer.entries) == (3, len(entries))
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["lakekv", "lakefs"])
def test_both_formats_read_back_in_pages_of_one_partition(fmt: DumpFormat) -> None:
    entries = _entries()
    inp = open_input(io.BufferedReader(io.BytesIO(_write(fmt, entries))), "x")
    assert inp.format == fmt
    pages = list(inp.pages())
    assert all(len({e.partition for e in page}) == 1 for page in pages)
    assert max(map(len, pages)) <= PAGE_ENTRIES
    assert [e for page in pages for e in page] == entries
    assert inp.partitions == 3


def test_lakefs_pages_are_byte_identical_to_add_many() -> None:
    entries = _entries()
    out = io.BytesIO()
    w = LakeFSJSONWriter(out, "2026-11-30T20:45:07Z")
    w.add_many(entries)
    w.finish()
    paged = io.BytesIO()
    w = LakeFSJSONWriter(paged, "2026-11-30T20:45:07Z")
    for p in (b"a", b"b", b"c"):
        w.begin_partition(p)
        rows = [(e.key, e.value) for e in entries if e.partition == p]
        w.add_page(rows[:10])
        w.add_page(rows[10:])
        w.end_partition()
    w.begin_partition(b"empty")
    w.end_partition()
    w.finish()
    assert paged.getvalue() == out.getvalue()
    assert w.partitions == 3


def test_open_input_refuses_other_input() -> None:
    with pytest.raises(CorruptInputError, match="empty input"):
        open_input(io.BufferedReader(io.BytesIO(b"")), "x")
    with pytest.raises(CorruptInputError, match="neither"):
        open_input(io.BufferedReader(io.BytesIO(b"PK\x03\x04...")), "x")


def test_corrupt_partition_yields_what_came_before_it() -> None:
    data = bytearray(_write("lakekv", _entries()))
    data[-200] ^= 0xFF  # inside partition c's entries or trailer
    inp = open_input(io.BufferedReader(io.BytesIO(bytes(data))), "x")
    got: list[Entry] = []
    with pytest.raises(CorruptInputError):
        for page in inp.pages():
            got.extend(page)
    assert inp.partitions == 2
    assert any(e.partition == b"c" for e in got)  # the entries read before the corruption
    assert not inp.verified(Entry(b"c", b"k", b"")) and inp.verified(Entry(b"b", b"k", b""))


def _batches(
    entries: list[Entry], pages: list[int] | None, limit_n: int, limit_b: int
) -> list[int]:
    options = WriteOptions(batch_entries=limit_n, batch_bytes=limit_b)
    store = open_store("memory://")
    loader = _Loader(store, options, 2, LoadReport(), Tracker(None, "load"), _retry.RetryCounter())
    sizes: list[int] = []
    flush = loader.flush

    def recording_flush() -> None:
        if loader.batch:
            sizes.append(len(loader.batch))
        flush()

    loader.flush = recording_flush  # type: ignore[method-assign]
    try:
        if pages is None:
            for e in entries:
                loader.add(e)
        else:
            at = 0
            for n in pages:
                loader.add_page(entries[at : at + n])
                at += n
        loader.close()
    finally:
        loader.shutdown()
    store.close()
    return sizes


@pytest.mark.parametrize("seed", range(20))
def test_loader_pages_cut_batches_where_entries_would(seed: int) -> None:
    rng = random.Random(seed)
    entries = [
        Entry(b"p", b"k%06d" % i, b"v" * rng.choice([0, 1, 5, 50, 400])) for i in range(3000)
    ]
    pages = []
    left = len(entries)
    while left:
        n = min(left, rng.randrange(1, 700))
        pages.append(n)
        left -= n
    limit_n = rng.choice([1, 7, 100, 999, 5000])
    limit_b = rng.choice([0, 1, 300, 4000, 100_000, 10**9])
    assert _batches(entries, pages, limit_n, limit_b) == _batches(entries, None, limit_n, limit_b)
