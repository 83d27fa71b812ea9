"""``sample``: a realistic, deterministic lakeFS-shaped database of exactly N entries.

The layout follows ``LAKEFS_FORMAT.md`` §6 and every value is what lakeFS would store there
(real encoded protobuf messages from :mod:`lakekv.record.proto`):

* ``kv-internal-metadata / kv/schema/version`` = ``4``;
* ``graveler / repos/<id>`` → ``RepositoryData``;
* each repository partition ``<id>-<instance uid>``: ``branches/…`` (``BranchData``, some with
  sealed tokens), ``commits/<sha256>`` (``CommitData`` chains), ``tags/…`` (``TagData``, some
  with ``/`` in the name), ``repo-metadata`` (``RepoMetadata``, often empty: an empty value),
  ``settings/gc_rules``, ``settings/protected_branches``, ``pulls/…``, ``imports/…``;
* staging partitions ``<repo>-<branch>:<uuid4>`` (staging and sealed tokens) holding
  ``StagedEntryData`` objects wrapping ``catalog.Entry``: Zipf-skewed partition sizes,
  skewed metadata sizes, some tombstones, a few object paths that are not valid UTF-8;
* ``cleanup-tokens`` (``stub-value``), ``pulls`` (``SecondaryIndex``), ``auth`` users,
  policies and credentials, ``actions`` runs.

The same seed and size always produce the same bytes. Entries are generated and written in
batches: memory does not grow with N.
"""

from __future__ import annotations

import hashlib
import random
import struct
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import islice
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from lakekv.errors import UnsafeOperationError
from lakekv.kv.store import Entry, OnConflict, Store
from lakekv.migrate import _retry
from lakekv.migrate._common import BATCH_ENTRIES, StoreLike, opened, url_of
from lakekv.migrate._progress import ProgressCallback, Tracker
from lakekv.migrate.partitions import (
    LAKEFS_SCHEMA_VERSION,
    SCHEMA_KEY,
    SCHEMA_PARTITION,
    read_schema_version,
)
from lakekv.record.proto import catalog_pb2, graveler_pb2, kv_pb2

_B32HEX = "0123456789abcdefghijklmnopqrstuv"
_EPOCH = 1_700_000_000
_CONTENT_TYPES = (
    "application/octet-stream",
    "application/x-parquet",
    "text/csv",
    "application/json",
    "image/jpeg",
)
_EXTS = (".parquet", ".csv", ".json", ".jpg", ".avro", "")


@dataclass
class SampleReport:
    """What ``sample`` wrote."""

    target: str
    seed: int
    entries: int = 0
    bytes: int = 0
    partitions: int = 0
    repositories: int = 0
    staging_partitions: int = 0
    non_utf8_keys: int = 0
    empty_values: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _ts(rnd: random.Random) -> Timestamp:
    return Timestamp(seconds=_EPOCH + rnd.randrange(0, 90 * 86400), nanos=rnd.randrange(10**9))


def _xid(rnd: random.Random) -> str:
    return "".join(rnd.choice(_B32HEX) for _ in range(20))


def _uuid(rnd: random.Random) -> str:
    return str(uuid.UUID(int=rnd.getrandbits(128), version=4))


def _pb_field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (for the auth records, which lakekv has no
    generated module for): tag varint then length varint then bytes."""
    out = bytearray()
    for varint in ((number << 3) | 2, len(payload)):
        rest = varint
        while rest >= 0x80:
            out.append((rest & 0x7F) | 0x80)
            rest >>= 7
        out.append(rest)
    return bytes(out) + payload


class _Generator:
    def __init__(self, n: int, seed: int, report: SampleReport) -> None:
        self.n = n
        self.rnd = random.Random(seed)
        self.report = report

    # --- metadata ----------------------------------------------------------------------------

    def _meta(self) -> tuple[list[Entry], list[tuple[bytes, float]]]:
        """Everything but the staged objects, and the staging partitions with Zipf weights."""
        rnd = self.rnd
        out: list[Entry] = [Entry(SCHEMA_PARTITION, SCHEMA_KEY, LAKEFS_SCHEMA_VERSION)]
        staging: list[tuple[bytes, float]] = []
        repos = max(1, min(8, 1 + self.n // 200_000))
        self.report.repositories = repos
        cleanup: list[str] = []
        for r in range(repos):
            repo = f"repo-{r:02d}-{rnd.choice(['analytics', 'ml', 'raw', 'lake'])}"
            uid = _xid(rnd)
            rp = f"{repo}-{uid}".encode()
            out.append(
                Entry(
                    b"graveler",
                    f"repos/{repo}".encode(),
                    graveler_pb2.RepositoryData(
                        id=repo,
                        storage_namespace=f"s3://bucket-{r}/{repo}",
                        default_branch_id="main",
                        creation_date=_ts(rnd),
                        instance_uid=uid,
                        storage_id="",
                    ).SerializeToString(),
                )
            )
            commits: list[str] = []
            parent: list[str] = []
            for g in range(1, 4 + min(40, self.n // 20_000) + 1):
                cid = hashlib.sha256(f"{repo}/{g}/{rnd.random()}".encode()).hexdigest()
                commit = graveler_pb2.CommitData(
                    id=cid,
                    committer=rnd.choice(["alice", "bob", "etl-bot", ""]),
                    message="Repository created" if g == 1 else f"ingest batch {g}",
                    creation_date=_ts(rnd),
                    meta_range_id="" if g == 1 else hashlib.sha256(cid.encode()).hexdigest(),
                    parents=parent,
                    version=1,
                    generation=g,
                )
                for i in range(rnd.choice([0, 0, 1, 3])):
                    commit.metadata[f"key{i}"] = f"value-{rnd.randrange(10**6)}"
                out.append(Entry(rp, f"commits/{cid}".encode(), commit.SerializeToString()))
                commits.append(cid)
                parent = [cid]
            branches = ["main", "dev", *(f"feature-{i}" for i in range(rnd.randrange(1, 6)))]
            for b in branches:
                token = f"{repo}-{b}:{_uuid(rnd)}"
                sealed = [f"{repo}-{b}:{_uuid(rnd)}" for _ in range(rnd.choice([0, 0, 0, 1, 2]))]
                out.append(
                    Entry(
                        rp,
                        f"branches/{b}".encode(),
                        graveler_pb2.BranchData(
                            id=b,
                            commit_id=rnd.choice(commits),
                            staging_token=token,
                            sealed_tokens=sealed,
                        ).SerializeToString(),
                    )
                )
                for i, tok in enumerate([token, *sealed]):
                    staging.append((tok.encode(), 1.0 / (len(staging) + 1) ** 0.8 / (i + 1)))
            for t in range(rnd.randrange(1, 5)):
                tag = f"v{t}.0" if t % 2 else f"releases/2024/v{t}"
                out.append(
                    Entry(
                        rp,
                        f"tags/{tag}".encode(),
                        graveler_pb2.TagData(
                            id=tag, commit_id=rnd.choice(commits)
                        ).SerializeToString(),
                    )
                )
            meta = graveler_pb2.RepoMetadata()
            if r % 2:
                meta.metadata["owner"] = "data-platform"
            out.append(Entry(rp, b"repo-metadata", meta.SerializeToString()))
            gc = graveler_pb2.GarbageCollectionRules(default_retention_days=21)
            gc.branch_retention_days["main"] = 28
            out.append(Entry(rp, b"settings/gc_rules", gc.SerializeToString()))
            rules = graveler_pb2.BranchProtectionRules()
            if r % 2:  # otherwise no rules: an empty message, an empty value
                rules.branch_pattern_to_blocked_actions["main"].value.append(
                    graveler_pb2.BranchProtectionBlockedAction.STAGING_WRITE
                )
            out.append(Entry(rp, b"settings/protected_branches", rules.SerializeToString()))
            pr_id = _xid(rnd)
            out.append(
                Entry(
                    rp,
                    f"pulls/{pr_id}".encode(),
                    graveler_pb2.PullRequestData(
                        id=pr_id,
                        status=graveler_pb2.PullRequestStatus.OPEN,
                        created_at=_ts(rnd),
                        title="Add new partitions",
                        author="alice",
                        source_branch="dev",
                        destination_branch="main",
                    ).SerializeToString(),
                )
            )
            out.append(
                Entry(
                    b"pulls",
                    f"repos/{rp.decode()}/dev/main".encode(),
                    kv_pb2.SecondaryIndex(
                        primary_key=f"pulls/{pr_id}".encode()
                    ).SerializeToString(),
                )
            )
            imp = _xid(rnd)
            out.append(
                Entry(
                    rp,
                    f"imports/{imp}".encode(),
                    graveler_pb2.ImportStatusData(
                        id=imp, completed=True, updated_at=_ts(rnd), progress=1000
                    ).SerializeToString(),
                )
            )
            # A sealed token whose commit finished: queued for cleanup, data still there.
            leftover = f"{repo}-main:{_uuid(rnd)}"
            cleanup.append(leftover)
            staging.append((leftover.encode(), 0.2))
        for tok in sorted(cleanup):
            out.append(Entry(b"cleanup-tokens", tok.encode(), b"stub-value"))
        for i, user in enumerate(["admin", "alice", "bob", "etl-bot"]):
            created = _ts(rnd).SerializeToString()
            out.append(
                Entry(
                    b"auth",
                    f"users/{user}".encode(),
                    _pb_field(1, user.encode()) + _pb_field(2, created),
                )
            )
            key_id = f"AKIAJ{i:03d}{_xid(rnd)[:12].upper()}"
            out.append(
                Entry(
                    b"auth",
                    f"users/{user}/credentials/{key_id}".encode(),
                    _pb_field(1, key_id.encode()) + _pb_field(2, rnd.randbytes(32)),
                )
            )
        out.append(
            Entry(
                b"auth",
                b"policies/FSFullAccess",
                _pb_field(1, b"FSFullAccess") + _pb_field(3, b'{"action":["fs:*"]}'),
            )
        )
        out.append(Entry(b"actions", b"repos/repo-00/runs/0001", _pb_field(1, b"0001")))
        out.sort()
        return out, staging

    # --- staged objects ----------------------------------------------------------------------

    def _objects(self, partition: bytes, count: int) -> Iterator[Entry]:
        rnd = self.rnd
        dirs = max(1, count // 200)
        for i in range(count):
            ext = rnd.choice(_EXTS)
            path = f"data/part={i % dirs:05d}/file-{i:08d}{ext}".encode()
            if i % 1999 == 7 or rnd.random() < 0.0003:
                path = b"raw/\xff\xfe-" + path  # not UTF-8: lakeFS paths are bytes
                self.report.non_utf8_keys += 1
            if rnd.random() < 0.03:
                value = graveler_pb2.StagedEntryData(key=path).SerializeToString()  # tombstone
            else:
                size = int(rnd.paretovariate(1.2) * 1024)
                entry = catalog_pb2.Entry(
                    address=f"data/{_uuid(rnd)}",
                    last_modified=_ts(rnd),
                    size=size,
                    e_tag=hashlib.md5(path, usedforsecurity=False).hexdigest(),
                    address_type=catalog_pb2.Entry.AddressType.RELATIVE,
                    content_type=rnd.choice(_CONTENT_TYPES),
                )
                extra = min(60, int(rnd.paretovariate(1.5)) - 1)
                for m in range(extra):
                    entry.metadata[f"x-amz-meta-{m}"] = "v" * rnd.randrange(1, 40)
                value = graveler_pb2.StagedEntryData(
                    key=path,
                    identity=struct.pack(">Q", rnd.getrandbits(64)) * 4,
                    data=entry.SerializeToString(),
                ).SerializeToString()
            yield Entry(partition, path, value)

    def entries(self) -> Iterator[Entry]:
        meta, staging = self._meta()
        if len(meta) >= self.n:
            keep = [e for e in meta if e.partition == SCHEMA_PARTITION]
            keep += [e for e in meta if e.partition != SCHEMA_PARTITION][: self.n - 1]
            yield from keep[: self.n]
            return
        yield from meta
        left = self.n - len(meta)
        total = sum(w for _, w in staging)
        counts = [int(left * w / total) for _, w in staging]
        counts[0] += left - sum(counts)
        for (partition, _), count in zip(staging, counts, strict=True):
            if count:
                self.report.staging_partitions += 1
                yield from self._objects(partition, count)


def _is_empty(store: Store) -> bool:
    if store.capabilities.list_partitions:
        return next(iter(store.list_partitions()), None) is None
    if read_schema_version(store) is not None:
        return False
    with store.scan(b"graveler", batch_size=1) as it:
        return next(it, None) is None


def _write(dst: Store, batch: list[Entry]) -> None:
    _retry.call(lambda: dst.write_batch(batch, OnConflict.OVERWRITE))


def sample(
    target: StoreLike,
    entries: int,
    *,
    seed: int = 0,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> SampleReport:
    """Write a lakeFS-shaped database of exactly ``entries`` entries into ``target``.

    Deterministic for a seed. Memory does not grow with ``entries``. A target that already
    holds entries (any partition, or for stores that cannot list partitions a lakeFS schema
    version or ``graveler`` entry) is refused with UnsafeOperationError before anything is
    written: sample data would overwrite a real database's keys. ``force`` writes anyway,
    overwriting existing keys.
    """
    if entries < 1:
        raise ValueError("entries must be >= 1")
    started = time.monotonic()
    with opened(target) as dst:
        if not force and not _is_empty(dst):
            raise UnsafeOperationError(
                f"sample: {url_of(dst)} is not empty; sample data would overwrite its keys "
                "(write to a new store, or use --force)"
            )
        report = SampleReport(target=url_of(dst), seed=seed)
        tracker = Tracker(progress, "sample")
        partitions: set[bytes] = set()
        it = _Generator(entries, seed, report).entries()
        while batch := list(islice(it, BATCH_ENTRIES)):
            nbytes = 0
            for e in batch:
                nbytes += len(e.key) + len(e.value)
                if not e.value:
                    report.empty_values += 1
                partitions.add(e.partition)
            _write(dst, batch)
            report.entries += len(batch)
            report.bytes += nbytes
            tracker.add(len(batch), nbytes)
        tracker.finish()
        report.partitions = len(partitions)
        report.seconds = time.monotonic() - started
        return report
