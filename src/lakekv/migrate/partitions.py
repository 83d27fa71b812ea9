"""Which partitions a migration carries, and the lakeFS schema version.

A complete migration needs every partition. A driver that declares
``capabilities.list_partitions`` enumerates them. For any other store lakekv walks the lakeFS
model instead (:func:`lakekv.record.layout.walk`): the fixed partitions, ``graveler`` → each
repository's partition (``<repoID>-<instanceUID>``) → every branch's staging token and sealed
tokens, plus the staging tokens queued in ``cleanup-tokens``. The walk cannot find partitions
nothing points to any more (e.g. staging partitions of a deleted repository); listing can.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lakekv.display import show_bytes
from lakekv.errors import (
    InvalidArgumentError,
    KeyNotFoundError,
    MigrationError,
    SchemaVersionMismatchError,
    UnsafeOperationError,
)
from lakekv.kv.store import Store
from lakekv.migrate import _retry
from lakekv.migrate._retry import retrying
from lakekv.record import layout
from lakekv.record.layout import FIXED_PARTITIONS, LAKEFS_SCHEMA_VERSION

SCHEMA_PARTITION = layout.SCHEMA_PARTITION
SCHEMA_KEY = layout.SCHEMA_VERSION_KEY

__all__ = [
    "FIXED_PARTITIONS",
    "LAKEFS_SCHEMA_VERSION",
    "SCHEMA_KEY",
    "SCHEMA_PARTITION",
    "PartitionNotFoundError",
    "PartitionPlan",
    "check_schema_versions",
    "plan_partitions",
    "read_schema_version",
    "require_partitions",
    "schema_last",
    "union_plan",
    "walk_lakefs",
]


@dataclass(frozen=True)
class PartitionPlan:
    """The partitions to process, in bytewise order, and how they were found."""

    partitions: list[bytes]
    source: str
    """``list_partitions``, ``lakefs-walk`` or ``given``."""


def schema_last(partitions: Iterable[bytes]) -> tuple[list[bytes], bool]:
    """``partitions`` without lakeFS's schema-version partition, and whether it was among
    them. Every pass that writes (copy, load, sync) writes that partition last, once all the
    rest is in place: lakeFS takes a database holding the schema version for a complete one,
    so a pass interrupted earlier leaves a target lakeFS refuses to start on."""
    every = list(partitions)
    rest = [p for p in every if p != SCHEMA_PARTITION]
    return rest, len(rest) != len(every)


def walk_lakefs(store: Store) -> list[bytes]:
    """Partition names reachable through the lakeFS model (:func:`lakekv.record.layout.walk`),
    with the fixed partitions even when empty, bytewise sorted."""
    return layout.walk(layout.reader(store, retrying)).partitions()


def plan_partitions(store: Store, given: Iterable[bytes] | None = None) -> PartitionPlan:
    """The partitions of ``store``: ``given`` (sorted), else listed, else walked."""
    if given is not None:
        return PartitionPlan(sorted(set(given)), "given")
    if store.capabilities.list_partitions:
        return PartitionPlan(list(store.list_partitions()), "list_partitions")
    return PartitionPlan(walk_lakefs(store), "lakefs-walk")


class PartitionNotFoundError(MigrationError, InvalidArgumentError):
    """A partition named explicitly holds no entry in the source (exit 2)."""


def require_partitions(
    store: Store, partitions: Iterable[bytes], retries: _retry.RetryCounter | None = None
) -> None:
    """Raise PartitionNotFoundError naming the first of ``partitions`` that ``store`` lacks.

    A partition exists while it holds an entry; each is probed with a one-entry scan.
    """
    for p in partitions:

        def probe(p: bytes = p) -> bool:
            with store.scan(p, batch_size=1) as it:
                return next(it, None) is not None

        found = probe() if retries is None else _retry.call(probe, retries)
        if not found:
            raise PartitionNotFoundError(
                f"partition '{show_bytes(p)}' does not exist in {store.url} (it holds no entry)"
            )


def union_plan(a: PartitionPlan, b: PartitionPlan) -> PartitionPlan:
    """Both plans' partitions, sorted; the source names the weaker method used."""
    method = a.source if a.source != "list_partitions" else b.source
    return PartitionPlan(sorted(set(a.partitions) | set(b.partitions)), method)


def read_schema_version(store: Store) -> str | None:
    """The lakeFS schema version stored in ``store``, or ``None`` when absent."""
    try:
        value = store.get(SCHEMA_PARTITION, SCHEMA_KEY).value
    except KeyNotFoundError:
        return None
    return value.decode("ascii", errors="backslashreplace")


def refuse_unversioned_source(version: str | None, url: str, what: str, *, force: bool) -> None:
    """UnsafeOperationError, unless ``force``, when a pass that deletes from its target
    (``what``: ``sync``, ``copy --sync``) reads a source holding no lakeFS schema version:
    probably not the database meant, and the pass would delete everything it lacks."""
    if version is None and not force:
        raise UnsafeOperationError(
            f"{what}: the source {url} holds no lakeFS schema version (is it the database "
            f"you meant?); {what} would delete from the target everything it lacks. Use "
            "--force if it is"
        )


def check_schema_versions(
    source: str | None, target: str | None, *, force: bool, what: str = "source and target"
) -> None:
    """Refuse (SchemaVersionMismatchError) when both versions are known and differ."""
    if source is not None and target is not None and source != target and not force:
        raise SchemaVersionMismatchError(
            f"{what} hold different lakeFS schema versions ({source} and {target}); "
            "refusing to merge them (use --force to override)"
        )
