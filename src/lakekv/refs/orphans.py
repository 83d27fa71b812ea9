"""Inspection: which partitions of a store no repository reaches (orphans).

A partition is *reachable* when it is one of lakeFS's fixed partitions (``graveler``, ``auth``,
``pulls``, …), the partition of a repository listed in ``graveler``, or a staging or sealed token
of one of those repositories' branches. Anything else is an orphan: typically the staging
partitions lakeFS leaves behind when it deletes a repository or a branch, the partition of a
repository whose record is gone, or tokens queued under ``cleanup-tokens`` and not yet dropped.
Orphans are data: a complete migration carries them, and this report lets an operator see them.

Finding orphans needs a store that can list its partitions (``capabilities.list_partitions``);
on other stores :func:`find_orphans` raises UnsupportedError.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lakekv.errors import UnsupportedError
from lakekv.kv.store import Store
from lakekv.record import layout


class OrphanKind(StrEnum):
    STAGING = "staging"
    """Named like a staging token: ``<repo>-<branch>:<uuid>``."""
    REPOSITORY = "repository"
    """Named like a repository partition: ``<repo>-<instanceUID>``."""
    UNKNOWN = "unknown"
    """Any other name."""


@dataclass(frozen=True)
class OrphanPartition:
    """A partition no repository reaches."""

    partition: bytes
    kind: OrphanKind
    owner: str | None
    """What its name points at: ``<repo>-<branch>`` for a staging token (the two cannot be
    told apart with certainty: both may contain ``-``), the repository ID for a repository
    partition, ``None`` for an unknown name."""
    entries: int
    queued_for_cleanup: bool
    """Listed under ``cleanup-tokens`` (a commit or deletion meant to drop it)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "partition": self.partition.decode("utf-8", errors="backslashreplace"),
            "kind": self.kind.value,
            "owner": self.owner,
            "entries": self.entries,
            "queued_for_cleanup": self.queued_for_cleanup,
        }


def _classify(partition: bytes) -> tuple[OrphanKind, str | None]:
    text = layout.decode_text(partition)
    if text is not None:
        if (m := layout.STAGING_TOKEN_RE.match(text)) is not None:
            return OrphanKind.STAGING, m.group("prefix")
        if (m := layout.REPOSITORY_PARTITION_RE.match(text)) is not None:
            return OrphanKind.REPOSITORY, m.group("repo")
    return OrphanKind.UNKNOWN, None


def _count(store: Store, partition: bytes) -> int:
    with store.scan(partition) as it:
        return sum(1 for _ in it)


def iter_orphans(store: Store) -> Iterator[OrphanPartition]:
    """Orphaned partitions in bytewise name order (see the module docstring)."""
    if not store.capabilities.list_partitions:
        raise UnsupportedError(
            f"{store.scheme}:// cannot list partitions, so orphans cannot be found"
        )
    walked = layout.walk(layout.reader(store))
    reached = set(layout.FIXED_PARTITIONS) | walked.repositories | walked.tokens
    for partition in store.list_partitions():
        if partition in reached:
            continue
        kind, owner = _classify(partition)
        yield OrphanPartition(
            partition=partition,
            kind=kind,
            owner=owner,
            entries=_count(store, partition),
            queued_for_cleanup=partition in walked.cleanup_queued,
        )


def find_orphans(store: Store) -> list[OrphanPartition]:
    """:func:`iter_orphans` as a list."""
    return list(iter_orphans(store))
