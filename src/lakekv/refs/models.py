"""Typed, immutable model objects of the ref store, and their protobuf conversions.

Models are frozen dataclasses; ``from_proto`` / ``to_proto`` convert to and from the stored
lakeFS messages. Times are timezone-aware UTC ``datetime`` s (protobuf timestamps carry
nanoseconds; Python keeps microseconds, which never affects a commit ID — only whole seconds
are hashed). ``to_json`` gives a JSON-ready dict for the CLI.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from lakekv.record import layout
from lakekv.record.proto import catalog_pb2, graveler_pb2
from lakekv.refs.ident import entry_identity

T = TypeVar("T")


def to_timestamp(when: datetime) -> Timestamp:
    """A protobuf Timestamp for ``when`` (naive means UTC)."""
    ts = Timestamp()
    ts.FromDatetime(when if when.tzinfo is not None else when.replace(tzinfo=UTC))
    return ts


def from_timestamp(ts: Timestamp) -> datetime:
    """An aware UTC datetime for ``ts``."""
    return ts.ToDatetime(tzinfo=UTC)


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _frozen_map(values: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(values))


class RepositoryState(StrEnum):
    """``RepositoryData.state``."""

    ACTIVE = "active"
    IN_DELETION = "in_deletion"

    @classmethod
    def from_proto(cls, value: int) -> RepositoryState:
        return cls.IN_DELETION if value == graveler_pb2.IN_DELETION else cls.ACTIVE

    def to_proto(self) -> graveler_pb2.RepositoryState.ValueType:
        return (
            graveler_pb2.IN_DELETION if self is RepositoryState.IN_DELETION else graveler_pb2.ACTIVE
        )


@dataclass(frozen=True)
class Repository:
    """A repository record (``graveler / repos/<id>``)."""

    id: str
    storage_namespace: str
    default_branch_id: str
    creation_date: datetime
    instance_uid: str
    state: RepositoryState = RepositoryState.ACTIVE
    read_only: bool = False
    storage_id: str = ""

    @functools.cached_property
    def partition(self) -> bytes:
        """The partition holding this repository's branches, commits and tags."""
        return layout.repository_partition(self.id, self.instance_uid)

    @classmethod
    def from_proto(cls, msg: graveler_pb2.RepositoryData) -> Repository:
        return cls(
            id=msg.id,
            storage_namespace=msg.storage_namespace,
            default_branch_id=msg.default_branch_id,
            creation_date=from_timestamp(msg.creation_date),
            instance_uid=msg.instance_uid,
            state=RepositoryState.from_proto(msg.state),
            read_only=msg.read_only,
            storage_id=msg.storage_id,
        )

    def to_proto(self) -> graveler_pb2.RepositoryData:
        return graveler_pb2.RepositoryData(
            id=self.id,
            storage_namespace=self.storage_namespace,
            default_branch_id=self.default_branch_id,
            creation_date=to_timestamp(self.creation_date),
            state=self.state.to_proto(),
            instance_uid=self.instance_uid,
            read_only=self.read_only,
            storage_id=self.storage_id,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "storage_namespace": self.storage_namespace,
            "default_branch_id": self.default_branch_id,
            "creation_date": _iso(self.creation_date),
            "instance_uid": self.instance_uid,
            "state": self.state.value,
            "read_only": self.read_only,
            "storage_id": self.storage_id,
            "partition": self.partition.decode(),
        }


@dataclass(frozen=True)
class Branch:
    """A branch: its head commit, current staging token and sealed tokens (newest first)."""

    id: str
    commit_id: str
    staging_token: str
    sealed_tokens: tuple[str, ...] = ()
    hidden: bool = False

    @property
    def tokens(self) -> tuple[str, ...]:
        """The staging token then the sealed tokens: the order reads consult them in."""
        return (self.staging_token, *self.sealed_tokens)

    @classmethod
    def from_proto(cls, msg: graveler_pb2.BranchData) -> Branch:
        return cls(
            id=msg.id,
            commit_id=msg.commit_id,
            staging_token=msg.staging_token,
            sealed_tokens=tuple(msg.sealed_tokens),
            hidden=msg.hidden,
        )

    def to_proto(self) -> graveler_pb2.BranchData:
        return graveler_pb2.BranchData(
            id=self.id,
            commit_id=self.commit_id,
            staging_token=self.staging_token,
            sealed_tokens=list(self.sealed_tokens),
            hidden=self.hidden,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "commit_id": self.commit_id,
            "staging_token": self.staging_token,
            "sealed_tokens": list(self.sealed_tokens),
            "hidden": self.hidden,
        }


@dataclass(frozen=True)
class Tag:
    """A tag: a fixed name for a commit."""

    id: str
    commit_id: str

    @classmethod
    def from_proto(cls, msg: graveler_pb2.TagData) -> Tag:
        return cls(id=msg.id, commit_id=msg.commit_id)

    def to_proto(self) -> graveler_pb2.TagData:
        return graveler_pb2.TagData(id=self.id, commit_id=self.commit_id)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "commit_id": self.commit_id}


@dataclass(frozen=True)
class Commit:
    """A commit. ``id`` is its content address (:func:`lakekv.refs.ident.commit_id`)."""

    id: str
    committer: str
    message: str
    creation_date: datetime
    meta_range_id: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict, hash=False)
    parents: tuple[str, ...] = ()
    version: int = 1
    generation: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", _frozen_map(self.metadata))
        object.__setattr__(self, "parents", tuple(self.parents))

    @classmethod
    def from_proto(cls, msg: graveler_pb2.CommitData) -> Commit:
        return cls(
            id=msg.id,
            committer=msg.committer,
            message=msg.message,
            creation_date=from_timestamp(msg.creation_date),
            meta_range_id=msg.meta_range_id,
            metadata=dict(msg.metadata),
            parents=tuple(msg.parents),
            version=msg.version,
            generation=msg.generation,
        )

    def to_proto(self) -> graveler_pb2.CommitData:
        return graveler_pb2.CommitData(
            id=self.id,
            committer=self.committer,
            message=self.message,
            creation_date=to_timestamp(self.creation_date),
            meta_range_id=self.meta_range_id,
            metadata=dict(self.metadata),
            parents=list(self.parents),
            version=self.version,
            generation=self.generation,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "committer": self.committer,
            "message": self.message,
            "creation_date": _iso(self.creation_date),
            "meta_range_id": self.meta_range_id,
            "metadata": dict(self.metadata),
            "parents": list(self.parents),
            "version": self.version,
            "generation": self.generation,
        }


@dataclass(frozen=True)
class StagedEntry:
    """A staged object, or a tombstone (empty ``identity``) hiding older data under ``key``.

    ``data`` is normally a serialized ``catalog.Entry`` (see :meth:`from_catalog`)."""

    key: bytes
    identity: bytes
    data: bytes = b""

    @property
    def is_tombstone(self) -> bool:
        return not self.identity

    @classmethod
    def tombstone(cls, key: bytes) -> StagedEntry:
        return cls(key=key, identity=b"", data=b"")

    @classmethod
    def from_catalog(cls, key: bytes, entry: catalog_pb2.Entry) -> StagedEntry:
        """A staged object carrying ``entry``, its identity computed as lakeFS does."""
        return cls(key=key, identity=entry_identity(entry), data=entry.SerializeToString())

    def catalog_entry(self) -> catalog_pb2.Entry | None:
        """The decoded ``catalog.Entry`` payload, or ``None`` for a tombstone."""
        if self.is_tombstone:
            return None
        entry = catalog_pb2.Entry()
        entry.ParseFromString(self.data)
        return entry

    @classmethod
    def from_proto(cls, msg: graveler_pb2.StagedEntryData) -> StagedEntry:
        return cls(key=msg.key, identity=msg.identity, data=msg.data)

    def to_proto(self) -> graveler_pb2.StagedEntryData:
        return graveler_pb2.StagedEntryData(key=self.key, identity=self.identity, data=self.data)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key": self.key.decode("utf-8", errors="backslashreplace"),
            "tombstone": self.is_tombstone,
            "identity": self.identity.hex(),
        }
        if not self.is_tombstone:
            out["data_base64"] = base64.b64encode(self.data).decode("ascii")
        return out


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing. Pass ``next_after`` as ``after`` for the next page; it is
    ``None`` on the last page."""

    items: tuple[T, ...]
    next_after: str | None
