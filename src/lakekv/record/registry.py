"""The type registry: which message type a ``(partition, key)`` of a lakeFS database holds.

A :class:`TypeRegistry` is an ordered list of :class:`TypeRule` s, each a partition pattern and a
key pattern (regular expressions over bytes, matched in full) and the message type, or ``None``
for a value that is not a protobuf message (an ASCII integer, a ``stub-value``, opaque bytes).
The first matching rule wins; an entry no rule matches is *unknown* and decodes to its raw bytes.

:data:`LAKEFS_TYPES` covers every partition and key of a lakeFS database (the table in
:mod:`lakekv.record.layout`, plus the auth / actions / … partitions, which decode raw). The rules
are precise on purpose: lakeFS's own registry decodes any unrecognised key as a staged entry, so
its tools print garbage for them; here an entry decodes to the right message or to raw bytes,
never to a wrong type. A value that does not parse as its rule's type also falls back to raw,
with the parse error recorded.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtoDecodeError
from google.protobuf.message import Message

from lakekv.errors import InvalidArgumentError
from lakekv.record import layout
from lakekv.record.proto import catalog_pb2, graveler_pb2, kv_pb2

MessageType = type[Message]


@dataclass(frozen=True)
class TypeRule:
    """``partition`` and ``key`` patterns (full match) → ``msg_type`` (``None``: raw value)."""

    name: str
    partition: re.Pattern[bytes]
    key: re.Pattern[bytes]
    msg_type: MessageType | None
    description: str = ""

    def matches(self, partition: bytes, key: bytes) -> bool:
        return (
            self.partition.fullmatch(partition) is not None and self.key.fullmatch(key) is not None
        )


@dataclass(frozen=True)
class DecodedRecord:
    """One stored entry, decoded through a registry.

    ``rule`` is the matching rule's name (``"unknown"`` if none matched). ``message`` is the
    decoded message, or ``None`` for a raw value; ``error`` says why a value expected to be a
    message could not be parsed (it is then treated as raw).
    """

    partition: bytes
    key: bytes
    raw: bytes
    rule: str
    message: Message | None
    error: str | None = None

    @property
    def type_name(self) -> str | None:
        """The full protobuf name of the decoded message, or ``None`` for a raw value."""
        return None if self.message is None else self.message.DESCRIPTOR.full_name

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: partition, key, rule, type and the value as a message dict or raw
        text (``raw``) / base64 (``raw_base64`` when not UTF-8). A staged entry's payload is
        decoded as a ``catalog.Entry`` under ``entry``."""
        out: dict[str, Any] = {
            "partition": _text(self.partition),
            "key": _text(self.key),
            "rule": self.rule,
            "type": self.type_name,
        }
        if self.message is None:
            text = layout.decode_text(self.raw)
            if text is not None:
                out["raw"] = text
            else:
                out["raw_base64"] = base64.b64encode(self.raw).decode("ascii")
            if self.error is not None:
                out["error"] = self.error
            return out
        out["value"] = message_to_dict(self.message)
        if isinstance(self.message, graveler_pb2.StagedEntryData):
            out["object_key"] = _text(self.message.key)
            out["tombstone"] = not self.message.identity
            if self.message.identity:
                entry = catalog_pb2.Entry()
                try:
                    entry.ParseFromString(self.message.data)
                    out["entry"] = message_to_dict(entry)
                except ProtoDecodeError as exc:
                    out["entry_error"] = str(exc)
        return out


def message_to_dict(msg: Message) -> dict[str, Any]:
    """A message as a JSON-ready dict with proto field names (bytes fields in base64)."""
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


class TypeRegistry:
    """An ordered set of :class:`TypeRule` s; the first rule matching an entry decides its type."""

    def __init__(self, rules: Iterable[TypeRule] = ()) -> None:
        self._rules: list[TypeRule] = []
        for rule in rules:
            self.add(rule)

    @property
    def rules(self) -> Sequence[TypeRule]:
        return tuple(self._rules)

    def add(self, rule: TypeRule) -> None:
        """Append ``rule``; a second rule with the same name is an InvalidArgumentError."""
        if any(r.name == rule.name for r in self._rules):
            raise InvalidArgumentError(f"type rule {rule.name!r} is already registered")
        self._rules.append(rule)

    def register(
        self,
        name: str,
        partition: str | bytes,
        key: str | bytes,
        msg_type: MessageType | None,
        description: str = "",
    ) -> TypeRule:
        """Add a rule from regular-expression sources (str sources are UTF-8 encoded)."""
        rule = TypeRule(name, _compile(partition), _compile(key), msg_type, description)
        self.add(rule)
        return rule

    def lookup(self, partition: bytes, key: bytes) -> TypeRule | None:
        """The first rule matching ``(partition, key)``, or ``None``."""
        for rule in self._rules:
            if rule.matches(partition, key):
                return rule
        return None

    def message_type(self, partition: bytes, key: bytes) -> MessageType | None:
        """The message type stored at ``(partition, key)``; ``None`` for raw or unknown."""
        rule = self.lookup(partition, key)
        return None if rule is None else rule.msg_type

    def decode(self, partition: bytes, key: bytes, value: bytes) -> DecodedRecord:
        """Decode one entry. Never raises for bad data: it falls back to raw with ``error``."""
        rule = self.lookup(partition, key)
        if rule is None:
            return DecodedRecord(partition, key, value, "unknown", None)
        if rule.msg_type is None:
            return DecodedRecord(partition, key, value, rule.name, None)
        msg = rule.msg_type()
        try:
            msg.ParseFromString(value)
        except (ProtoDecodeError, ValueError) as exc:
            return DecodedRecord(partition, key, value, rule.name, None, f"{exc}")
        return DecodedRecord(partition, key, value, rule.name, msg)


def _compile(source: str | bytes) -> re.Pattern[bytes]:
    raw = source.encode() if isinstance(source, str) else source
    return re.compile(raw, re.DOTALL)


def _lakefs_registry() -> TypeRegistry:
    reg = TypeRegistry()
    any_key = rb".+"
    repo_part = rf"{layout.REPOSITORY_ID_PATTERN}-{layout.INSTANCE_UID_PATTERN}".encode()
    staging_part = (
        rf"{layout.REPOSITORY_ID_PATTERN}-{layout.BRANCH_ID_PATTERN}:{layout.UUID_PATTERN}"
    ).encode()
    # Fixed partitions first: no fixed name can match the repository or staging patterns.
    reg.register(
        "schema-version",
        rb"kv-internal-metadata",
        rb"kv/schema/version",
        None,
        "lakeFS KV schema version (ASCII integer)",
    )
    reg.register(
        "internal-metadata", rb"kv-internal-metadata", any_key, None, "other internal metadata"
    )
    reg.register(
        "repository", rb"graveler", rb"repos/.+", graveler_pb2.RepositoryData, "repository record"
    )
    reg.register("graveler-other", rb"graveler", any_key, None, "unrecognised graveler key")
    reg.register(
        "cleanup-token",
        rb"cleanup-tokens",
        any_key,
        None,
        "staging token queued for cleanup (value: stub-value)",
    )
    reg.register(
        "pull-request-index",
        rb"pulls",
        rb"repos/.+",
        kv_pb2.SecondaryIndex,
        "pull request index by source/destination branch",
    )
    for name in (
        "auth",
        "basicAuth",
        "aclauth",
        "actions",
        "catalog",
        "multiparts",
        "usage",
        "mc-ownership",
        "pulls",
    ):
        reg.register(
            f"{name}-record",
            re.escape(name).encode(),
            any_key,
            None,
            f"{name} record (not decoded)",
        )
    reg.register("branch", repo_part, rb"branches/.+", graveler_pb2.BranchData, "branch")
    reg.register("commit", repo_part, rb"commits/.+", graveler_pb2.CommitData, "commit")
    reg.register("tag", repo_part, rb"tags/.+", graveler_pb2.TagData, "tag")
    reg.register(
        "repo-metadata",
        repo_part,
        rb"repo-metadata",
        graveler_pb2.RepoMetadata,
        "repository metadata",
    )
    reg.register(
        "gc-rules",
        repo_part,
        rb"settings/gc_rules",
        graveler_pb2.GarbageCollectionRules,
        "garbage collection rules",
    )
    reg.register(
        "branch-protection",
        repo_part,
        rb"settings/protected_branches",
        graveler_pb2.BranchProtectionRules,
        "branch protection rules",
    )
    reg.register("setting", repo_part, rb"settings/.+", None, "other repository setting")
    reg.register(
        "import", repo_part, rb"imports/.+", graveler_pb2.ImportStatusData, "import status"
    )
    reg.register(
        "task",
        repo_part,
        rb"tasks/.+",
        catalog_pb2.TaskMsg,
        "asynchronous task status (every status record starts with its Task)",
    )
    reg.register(
        "pull-request", repo_part, rb"pulls/.+", graveler_pb2.PullRequestData, "pull request"
    )
    reg.register(
        "link-address",
        repo_part,
        rb"link-addresses/.+",
        graveler_pb2.LinkAddressData,
        "physical address awaiting a link",
    )
    reg.register("repository-other", repo_part, any_key, None, "unrecognised repository key")
    reg.register(
        "staged-entry",
        staging_part,
        any_key,
        graveler_pb2.StagedEntryData,
        "staged object (or tombstone) on a branch",
    )
    return reg


LAKEFS_TYPES = _lakefs_registry()
"""The registry of every partition and key lakeFS writes."""


def decode_entry(partition: bytes, key: bytes, value: bytes) -> DecodedRecord:
    """Decode one entry with :data:`LAKEFS_TYPES`."""
    return LAKEFS_TYPES.decode(partition, key, value)
