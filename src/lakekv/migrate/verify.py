"""``verify``: prove two stores hold the same entries, in constant memory."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from itertools import chain
from operator import itemgetter
from typing import NamedTuple, TypeVar

from lakekv.display import show_bytes
from lakekv.errors import StoreError
from lakekv.kv.store import Entry, PartitionDigest, Store, entries_of
from lakekv.migrate import _retry
from lakekv.migrate._common import (
    FIRST_CHUNK,
    StoreLike,
    consistent,
    digests_agree,
    is_snapshot,
    next_chunk_limit,
    opened,
    refuse_same_store,
    url_of,
)
from lakekv.migrate._merge import merge_join
from lakekv.migrate._pass import Pass
from lakekv.migrate._progress import ProgressCallback, Tracker
from lakekv.migrate.dumpfile import partition_digest
from lakekv.migrate.partitions import PartitionPlan, plan_partitions, union_plan
from lakekv.migrate.reports import Difference, VerifyReport

T = TypeVar("T")
_KEY = itemgetter(0)
_VALUE = itemgetter(1)
_PAGE = 5000
"""First page size of each side's scan (pages double up to the store's ``page_cap``)."""
_CHUNK_MAX = 20_000
_CHUNK_BYTES = 4 << 20
"""Chunks compared at once (:func:`_chunk_reader`) start at ``FIRST_CHUNK`` entries and grow
fourfold up to 20,000 entries or about 4 MiB."""


class _Chunk(NamedTuple):
    """A range of one side, as compared: equal tuples mean equal entries."""

    content: bytes
    entries: int
    payload_bytes: int
    next_start: bytes | None


ChunkReader = Callable[[Store, bytes, bytes, int], _Chunk]


def _digest_chunk(store: Store, p: bytes, start: bytes, limit: int) -> _Chunk:
    d = store.digest_range(p, start, limit)
    return _Chunk(d.sha256, d.entries, d.payload_bytes, d.next_start)


def _raw_chunk(store: Store, p: bytes, start: bytes, limit: int) -> _Chunk:
    c = store.read_raw(p, start, limit)
    return _Chunk(c.data, c.entries, c.payload_bytes, c.next_start)


def _chunk_reader(a: Store, b: Store) -> ChunkReader | None:
    """How to compare whole ranges of ``a`` and ``b`` before comparing entries: SHA-256
    range digests when both engines compute them (no value leaves either server), else raw
    chunks when both read the same raw format (bytes, not decoded), else ``None``."""
    ca, cb = a.capabilities, b.capabilities
    if ca.range_digests and cb.range_digests:
        return _digest_chunk
    if ca.raw_rows is not None and ca.raw_rows == cb.raw_rows:
        return _raw_chunk
    return None


def _entries(p: bytes, pages: Iterator[Sequence[tuple[bytes, bytes]]]) -> Iterator[Entry]:
    return chain.from_iterable(entries_of(p, page) for page in pages)


def _equal_prefix(
    pages_a: Iterator[Sequence[tuple[bytes, bytes]]],
    pages_b: Iterator[Sequence[tuple[bytes, bytes]]],
) -> tuple[int, int, list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """Consume both page streams while they hold the same ``(key, value)`` pairs, comparing
    whole runs of pairs at once (no Python code per entry: the common case of a verify is two
    equal stores). Returns the pairs found equal, their key and value bytes, and the rows of
    each side from the first difference on (the rest of each stream is still unread);
    two empty lists when the streams were equal to their ends."""
    n = nbytes = 0
    a: list[tuple[bytes, bytes]] = []
    b: list[tuple[bytes, bytes]] = []
    while True:
        if not a:
            a = list(next(pages_a, ()))
        if not b:
            b = list(next(pages_b, ()))
        if not a or not b:
            return n, nbytes, a, b
        m = min(len(a), len(b))
        run = a if m == len(a) else a[:m]
        if run != (b if m == len(b) else b[:m]):
            return n, nbytes, a, b
        n += m
        nbytes += sum(map(len, map(_KEY, run))) + sum(map(len, map(_VALUE, run)))
        a, b = a[m:], b[m:]


VERIFY_NO_SNAPSHOT = (
    "{url} cannot be read at one point in time: a write during the verify can show as a "
    "difference (or hide one); the verdict holds for a store nothing writes to"
)
"""The note a verify report carries for a side read without a snapshot (DynamoDB)."""


def verify(
    a: StoreLike,
    b: StoreLike,
    *,
    partitions: Iterable[bytes] | None = None,
    quick: bool = False,
    partition_digests: bool = True,
    max_diffs: int = 20,
    workers: int = 4,
    progress: ProgressCallback | None = None,
) -> VerifyReport:
    """Compare every partition of ``a`` and ``b`` (or only ``partitions``).

    The partitions compared are the union of both sides' (listed, or found by the lakeFS
    walk). Each is compared as a merge-join of two ordered scans: an entry only in ``a`` is
    *missing* (from ``b``), only in ``b`` *extra*, in both with different values *different*.
    When both engines compute the same digests (``capabilities.digests`` and
    ``digest_probe()`` agree, e.g. two PostgreSQL stores) and ``partition_digests``, each
    partition is first compared whole by ``Store.digest_partition`` on both servers at once:
    equal counts, byte totals and 64-bit entry-hash XORs are taken as equal partitions (two
    different partitions agree so by chance with a probability of about 2**-64, short of
    entries built on purpose to collide), and a partition whose digests differ is compared
    as below; with ``partition_digests=False`` every partition is. ``report.compared_by``
    names the way the equal partitions were proven equal.
    When both engines compute range digests (``capabilities.range_digests``, e.g. two
    PostgreSQL stores), each partition is first compared range by range by SHA-256 of the
    entries, both sides at once, and entry by entry only from the first differing range
    on; two stores of one raw format compare raw chunks that way (see the store contract).
    With ``quick``, each side's partitions are only counted and hashed (as in a dump's
    trailers) and a mismatch counts as one *different partition*. At most ``max_diffs``
    examples are kept; the counts are complete. ``report.equal`` is the verdict. Each side is
    read at one point in time when its driver can (``report.snapshot_a`` / ``snapshot_b``).

    Both stores are opened read-only and must exist (StoreNotFoundError: comparing with a
    mistyped, hence empty, store proves nothing); one store given twice, however spelled, is
    SameStoreError.
    """
    return _VerifyPass(
        a,
        b,
        list(partitions) if partitions is not None else None,
        quick=quick,
        partition_digests=partition_digests,
        max_diffs=max_diffs,
        workers=workers,
        progress=progress,
    ).run()


class _VerifyPass(Pass[VerifyReport]):
    """``verify`` in the shape of every pass (:mod:`lakekv.migrate._pass`): both sides are
    read, nothing is written, no schema version is checked (a difference there is a
    difference like any other)."""

    def __init__(
        self,
        a: StoreLike,
        b: StoreLike,
        given: list[bytes] | None,
        *,
        quick: bool,
        partition_digests: bool,
        max_diffs: int,
        workers: int,
        progress: ProgressCallback | None,
    ) -> None:
        self.a, self.b, self.given, self.quick = a, b, given, quick
        self.partition_digests, self.max_diffs = partition_digests, max_diffs
        self.workers, self.progress = workers, progress
        self.lock = threading.Lock()
        self.retries = _retry.RetryCounter()

    def open(self) -> None:
        stack = self.stack
        self.store_a = stack.enter_context(opened(self.a, read_only=True))
        self.store_b = stack.enter_context(opened(self.b, read_only=True))
        refuse_same_store(self.store_a, self.store_b, "verify")

    def snapshot(self) -> None:
        self.sa = self.stack.enter_context(consistent(self.store_a))
        self.sb = self.stack.enter_context(consistent(self.store_b))

    def plan(self) -> list[bytes]:
        sa, sb, given = self.sa, self.sb, self.given
        self.side = self.stack.enter_context(
            ThreadPoolExecutor(self.workers, thread_name_prefix="lakekv-side")
        )
        self.chunks = _chunk_reader(sa, sb)
        self.whole = whole = (
            self.partition_digests and not self.quick and digests_agree(self.store_a, self.store_b)
        )
        self.known: tuple[dict[bytes, PartitionDigest], dict[bytes, PartitionDigest]] | None = None
        fell_back: list[str] = []
        if whole and given is None:
            # Every partition's digest from each side in one pass (the engine reads each row
            # once); they name every partition with entries, so nothing is listed either.
            digesting = Tracker(self.progress, "digests")
            digesting.finish()  # shown (with the time it takes) before the one long call
            try:
                self.known = known = self._both(lambda store: store.digest_partitions())
            except StoreError as exc:  # e.g. a statement_timeout shorter than the whole pass
                fell_back.append(
                    f"the servers could not digest the whole store at once ({exc}): "
                    "compared partition by partition"
                )
            else:
                digesting.add(
                    sum(d.entries for d in known[0].values()),
                    sum(d.payload_bytes for d in known[0].values()),
                    len(known[0]),
                )
                digesting.finish()
        if self.known is not None:
            names = self.known[0].keys() | self.known[1].keys()
            plan = PartitionPlan(sorted(names), "list_partitions")
        else:  # partition by partition, below
            plan = plan_partitions(sa, given)
            if given is None:
                plan = union_plan(plan, plan_partitions(sb))
        self.report = report = VerifyReport(
            a=url_of(sa),
            b=url_of(sb),
            quick=self.quick,
            partition_source=plan.source,
            snapshot_a=is_snapshot(sa),
            snapshot_b=is_snapshot(sb),
            partitions=len(plan.partitions),
        )
        for url, snap in ((report.a, report.snapshot_a), (report.b, report.snapshot_b)):
            if not snap:
                report.warnings.append(VERIFY_NO_SNAPSHOT.format(url=url))
        report.warnings.extend(fell_back)
        report.compared_by = (
            "partition hashes (quick)"
            if self.quick
            else "partition digests"
            if whole
            else "range digests"
            if self.chunks is _digest_chunk
            else "raw chunks"
            if self.chunks is _raw_chunk
            else "entries"
        )
        self.tracker = Tracker(self.progress, "verify", partitions_total=len(plan.partitions))
        return plan.partitions

    def move(self, partitions: list[bytes]) -> None:
        compare = self._compare_quick if self.quick else self._compare_full
        if self.workers <= 1 or len(partitions) <= 1:
            for p in partitions:
                compare(p)
        else:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="lakekv-verify") as pool:
                for _ in pool.map(compare, partitions):
                    pass

    def finish(self) -> None:
        self.tracker.finish()

    # --- comparing one partition -------------------------------------------------------

    def _both(self, read: Callable[[Store], T]) -> tuple[T, T]:
        """``read`` of each side, at once (with retries)."""
        future = self.side.submit(_retry.call, partial(read, self.sa), self.retries)
        try:
            b_side = _retry.call(partial(read, self.sb), self.retries)
        finally:
            a_side = future.result()
        return a_side, b_side

    def _example(self, kind: str, partition: bytes, key: bytes | None) -> None:
        """Keep one more example, up to ``max_diffs`` (the caller holds ``lock``)."""
        examples = self.report.examples
        if len(examples) < self.max_diffs:
            examples.append(
                Difference(kind, show_bytes(partition), None if key is None else show_bytes(key))
            )

    def _equal_whole(self, n: int, nbytes: int) -> None:
        report = self.report
        with self.lock:
            report.entries_a += n
            report.entries_b += n
            report.bytes_a += nbytes
        self.tracker.add(n, nbytes, 1)

    def _equal_chunk_prefix(self, p: bytes) -> tuple[bytes | None, int, int]:
        """Compare chunks of both sides (read at once) while they are equal: where the first
        differing chunk starts (``None``: none differs), and the entries and bytes found
        equal before it."""
        chunks = self.chunks
        assert chunks is not None
        start, n, nbytes = b"", 0, 0
        limit = FIRST_CHUNK
        while True:
            ca, cb = self._both(lambda store: chunks(store, p, start, limit))  # noqa: B023
            if ca != cb:
                return start, n, nbytes
            n += ca.entries
            nbytes += ca.payload_bytes
            if ca.next_start is None:
                return None, n, nbytes
            start = ca.next_start
            limit = next_chunk_limit(limit, ca.entries, ca.payload_bytes, _CHUNK_MAX, _CHUNK_BYTES)

    def _equal_digests(self, p: bytes) -> PartitionDigest | None:
        """Both sides' digest of ``p`` when they are equal, else ``None``."""
        if self.known is not None:
            empty = PartitionDigest(0, 0, 0)
            da, db = self.known[0].get(p, empty), self.known[1].get(p, empty)
        else:
            try:
                da, db = self._both(lambda store: store.digest_partition(p))
            except StoreError as exc:  # (as in plan): this partition by ranges instead
                with self.lock:
                    self.report.warnings.append(
                        f"partition {show_bytes(p)}: its digests failed ({exc}): compared by ranges"
                    )
                return None
        return da if da == db else None

    def _compare_full(self, p: bytes) -> None:
        if self.whole and (same := self._equal_digests(p)) is not None:
            self._equal_whole(same.entries, same.payload_bytes)
            return
        start: bytes | None = b""
        na = bytes_a = 0
        if self.chunks is not None:
            start, na, bytes_a = self._equal_chunk_prefix(p)
        if start is None:  # equal to the end
            self._equal_whole(na, bytes_a)
            return
        sa, sb, retries, report, lock = self.sa, self.sb, self.retries, self.report, self.lock
        pages_a = _retry.retrying_pages(sa, p, start, page_size=_PAGE, counter=retries)
        pages_b = _retry.retrying_pages(sb, p, start, page_size=_PAGE, counter=retries)
        n_equal, bytes_equal, rest_a, rest_b = _equal_prefix(pages_a, pages_b)
        na += n_equal
        bytes_a += bytes_equal
        nb = na
        missing = extra = different = 0
        if rest_a or rest_b:  # they differ from here on: compare entry by entry
            ia = chain(entries_of(p, rest_a), _entries(p, pages_a))
            ib = chain(entries_of(p, rest_b), _entries(p, pages_b))
            for x, y in merge_join(ia, ib):
                if x is not None:
                    na += 1
                    bytes_a += len(x.key) + len(x.value)
                    if y is None:
                        missing += 1
                        if len(report.examples) < self.max_diffs:
                            with lock:
                                self._example("missing", p, x.key)
                        continue
                    nb += 1
                    if x.value != y.value:
                        different += 1
                        if len(report.examples) < self.max_diffs:
                            with lock:
                                self._example("different", p, x.key)
                else:
                    assert y is not None
                    nb += 1
                    extra += 1
                    if len(report.examples) < self.max_diffs:
                        with lock:
                            self._example("extra", p, y.key)
        with lock:
            report.entries_a += na
            report.entries_b += nb
            report.bytes_a += bytes_a
            report.missing += missing
            report.extra += extra
            report.different += different
        self.tracker.add(na, bytes_a, 1)

    def _digest(self, store: Store, p: bytes) -> tuple[int, int, str]:
        return partition_digest(_retry.retrying_pages(store, p, counter=self.retries))

    def _compare_quick(self, p: bytes) -> None:
        da = self._digest(self.sa, p)
        db = self._digest(self.sb, p)
        report = self.report
        with self.lock:
            report.entries_a += da[0]
            report.entries_b += db[0]
            report.bytes_a += da[1]
            if da != db:
                report.different_partitions += 1
                self._example("partition", p, None)
        self.tracker.add(da[0], da[1], 1)
