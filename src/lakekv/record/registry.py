"""The type registry: which message type a ``(partition, key)`` of a lakeFS database holds.

A :class:`TypeRegistry` is an ordered list of :class:`TypeRule` s, each a partition pattern and a
key pattern (regular expressions over bytes, matched in full) and the message type, or ``None``
for a value that is not a protobuf message (an ASCII integer, a ``stub-value``, opaque bytes).
The first matching rule wins; an entry no rule matches is *unknown* and decodes to its raw bytes.

:data:`LAKEFS_TYPES` covers every partition and key lakeFS v1.86.0 writes to its database (the
table in :mod:`lakekv.record.layout`), each with lakeFS's message type. The rules are precise on
purpose: lakeFS's own registry decodes any unrecognised key as a staged entry, so
its tools print garbage for them; here an entry decodes to the right message or to raw bytes,
never to a wrong type. A value that does not parse as its rule's type also falls back to raw,
with the parse error recorded; a value that parses but carries fields the schema does not name
reports them in :attr:`DecodedRecord.unknown_field_bytes`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtoDecodeError
from google.protobuf.message import Message

from lakekv.errors import InvalidArgumentError
from lakekv.record import layout
from lakekv.record.proto import (
    actions_pb2,
    auth_pb2,
    catalog_pb2,
    graveler_pb2,
    kv_pb2,
    mc_owner_pb2,
    multipart_pb2,
)

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
    def unknown_field_bytes(self) -> int:
        """Bytes of the decoded message (nested ones included) that its schema does not name;
        0 for a raw value. Non-zero means the value was written with a schema lakekv lacks."""
        return 0 if self.message is None else unknown_field_bytes(self.message)

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
        if unknown := self.unknown_field_bytes:
            out["unknown_field_bytes"] = unknown
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


def unknown_field_bytes(msg: Message) -> int:
    """How many encoded bytes of ``msg`` (nested messages included) are unknown fields.

    Computed as the size difference after dropping unknown fields, so map order does not
    matter (re-serialising is not byte-stable for maps).
    """
    known = type(msg)()
    known.CopyFrom(msg)
    known.DiscardUnknownFields()
    return msg.ByteSize() - known.ByteSize()


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


def _name(literal: bytes) -> bytes:
    """A name of :mod:`lakekv.record.layout` as a pattern matching exactly it."""
    return re.escape(literal)


def _under(prefix: bytes) -> bytes:
    """A key prefix of :mod:`lakekv.record.layout` as a pattern: the prefix, then anything."""
    return re.escape(prefix) + rb".+"


def _lakefs_registry() -> TypeRegistry:
    """Every partition and key lakeFS v1.86.0 writes, with lakeFS's message type.

    Sources (lakeFS v1.86.0): ``pkg/kv/store.go`` (schema version), ``pkg/graveler/model.go``
    and ``pkg/graveler/ref/manager.go`` (repositories, refs, pull requests and their index),
    ``pkg/graveler/settings`` and ``pkg/graveler/branch/protection_manager.go`` (settings),
    ``pkg/graveler/staging/manager.go`` (staged entries, cleanup tokens), ``pkg/catalog``
    (imports, tasks, instance heartbeats), ``pkg/auth/model/model.go``,
    ``pkg/auth/basic_service.go``, ``pkg/auth/metadata.go`` and ``contrib/auth/acl`` (auth),
    ``pkg/actions/service.go`` and ``store.go`` (action runs), ``pkg/gateway/multipart``
    (uploads), ``pkg/distributed/mc_owner.go`` (ownership), ``pkg/stats/usage_counter.go``.
    """
    reg = TypeRegistry()
    any_key = rb".+"
    # Every partition name and key prefix below is layout's (escaped), not typed again.
    repo_id = layout.REPOSITORY_ID_PATTERN
    repo_part = rf"{repo_id}-{layout.INSTANCE_UID_PATTERN}".encode()
    staging_part = (rf"{repo_id}-{layout.BRANCH_ID_PATTERN}:{layout.UUID_PATTERN}").encode()
    segment = r"[^/]+"
    # Fixed partitions first: no fixed name can match the repository or staging patterns.
    reg.register(
        "schema-version",
        _name(layout.SCHEMA_PARTITION),
        _name(layout.SCHEMA_VERSION_KEY),
        None,
        "lakeFS KV schema version (ASCII integer)",
    )
    reg.register(
        "repository",
        _name(layout.GRAVELER_PARTITION),
        _under(layout.REPOS_PREFIX),
        graveler_pb2.RepositoryData,
        "repository record",
    )
    reg.register(
        "cleanup-token",
        _name(layout.CLEANUP_TOKENS_PARTITION),
        any_key,
        None,
        "staging token queued for cleanup (value: stub-value)",
    )
    reg.register(
        "pull-request-index",
        _name(layout.PULLS_INDEX_PARTITION),
        _name(layout.REPOS_PREFIX) + repo_part + rb"/.+",
        kv_pb2.SecondaryIndex,
        "pull request by source/destination branch (primary key: the bare pull ID)",
    )
    # Auth: the ACL server (contrib/auth/acl) and older lakeFS servers write partition `auth`;
    # the basic auth service writes its one user and its credentials to `basicAuth`.
    for part in (layout.AUTH_PARTITION.decode(), layout.BASIC_AUTH_PARTITION.decode()):
        reg.register(
            f"{part}-credential",
            part,
            rf"uCredentials/{segment}/credentials/.+",
            auth_pb2.CredentialData,
            "access key of a user",
        )
        reg.register(f"{part}-user", part, rb"users/.+", auth_pb2.UserData, "user")
    reg.register(
        "auth-group", _name(layout.AUTH_PARTITION), rb"groups/.+", auth_pb2.GroupData, "group"
    )
    reg.register(
        "auth-policy", _name(layout.AUTH_PARTITION), rb"policies/.+", auth_pb2.PolicyData, "policy"
    )
    reg.register(
        "auth-group-member",
        _name(layout.AUTH_PARTITION),
        rf"gUsers/{segment}/users/.+",
        kv_pb2.SecondaryIndex,
        "group membership (primary key: users/<name>)",
    )
    reg.register(
        "auth-group-policy",
        _name(layout.AUTH_PARTITION),
        rf"gPolicies/{segment}/policies/.+",
        kv_pb2.SecondaryIndex,
        "policy attached to a group (primary key: policies/<name>)",
    )
    reg.register(
        "auth-user-policy",
        _name(layout.AUTH_PARTITION),
        rf"uPolicies/{segment}/policies/.+",
        kv_pb2.SecondaryIndex,
        "policy attached to a user (primary key: policies/<name>)",
    )
    reg.register(
        "auth-expired-token",
        _name(layout.AUTH_PARTITION),
        rb"expiredTokens/.+",
        auth_pb2.TokenData,
        "used reset token",
    )
    reg.register(
        "auth-installation-id",
        _name(layout.AUTH_PARTITION),
        rb"installation_id",
        None,
        "installation ID (text)",
    )
    reg.register(
        "auth-setup-timestamp",
        _name(layout.AUTH_PARTITION),
        rb"setup_timestamp",
        None,
        "setup time (RFC 3339 text)",
    )
    for part in (layout.AUTH_PARTITION.decode(), layout.ACL_AUTH_PARTITION.decode()):
        reg.register(
            f"{part}-installation-metadata",
            part,
            rb"installation_metadata/.+",
            None,
            "installation metadata value (text)",
        )
    # Actions: runs, hook runs and the two run indexes (primary key: repos/<repo>/runs/<id>).
    actions_repo = _name(layout.REPOS_PREFIX).decode() + repo_id
    reg.register(
        "action-run",
        _name(layout.ACTIONS_PARTITION),
        rf"{actions_repo}/runs/{segment}",
        actions_pb2.RunResultData,
        "action run",
    )
    reg.register(
        "action-hook-run",
        _name(layout.ACTIONS_PARTITION),
        rf"{actions_repo}/tasks/{segment}/.+",
        actions_pb2.TaskResultData,
        "hook run of an action run",
    )
    reg.register(
        "action-run-by-branch",
        _name(layout.ACTIONS_PARTITION),
        rf"{actions_repo}/branches/{layout.BRANCH_ID_PATTERN}/{segment}",
        kv_pb2.SecondaryIndex,
        "action run by branch",
    )
    reg.register(
        "action-run-by-commit",
        _name(layout.ACTIONS_PARTITION),
        rf"{actions_repo}/commits/{segment}/{segment}",
        kv_pb2.SecondaryIndex,
        "action run by commit",
    )
    reg.register(
        "instance-heartbeat",
        _name(layout.CATALOG_PARTITION),
        rb"instances/.+",
        catalog_pb2.InstanceHeartbeat,
        "liveness of a lakeFS server instance",
    )
    reg.register(
        "multipart-upload",
        _name(layout.MULTIPARTS_PARTITION),
        any_key,
        multipart_pb2.UploadData,
        "S3 gateway multipart upload (key: the upload ID)",
    )
    reg.register(
        "ownership",
        _name(layout.OWNERSHIP_PARTITION),
        any_key,
        mc_owner_pb2.MostlyCorrectOwnership,
        "mostly-correct ownership claim (e.g. of a branch)",
    )
    reg.register(
        "usage",
        _name(layout.USAGE_PARTITION),
        rb"usage/monthly/.+",
        None,
        "monthly API usage count (ASCII integer)",
    )
    # The repository partition.
    reg.register(
        "branch", repo_part, _under(layout.BRANCHES_PREFIX), graveler_pb2.BranchData, "branch"
    )
    reg.register(
        "commit", repo_part, _under(layout.COMMITS_PREFIX), graveler_pb2.CommitData, "commit"
    )
    reg.register("tag", repo_part, _under(layout.TAGS_PREFIX), graveler_pb2.TagData, "tag")
    reg.register(
        "repo-metadata",
        repo_part,
        _name(layout.REPO_METADATA_KEY),
        graveler_pb2.RepoMetadata,
        "repository metadata",
    )
    reg.register(
        "branch-protection",
        repo_part,
        _name(layout.SETTINGS_PREFIX + b"protected_branches"),
        graveler_pb2.BranchProtectionRules,
        "branch protection rules",
    )
    reg.register(
        "import",
        repo_part,
        _under(layout.IMPORTS_PREFIX),
        graveler_pb2.ImportStatusData,
        "import status",
    )
    nanoid = r"[A-Za-z0-9_-]{20}"  # catalog.NewTaskID: prefix + a 20-character nanoid
    for name, prefix, msg_type, what in (
        ("dump-refs-task", "DR", catalog_pb2.RepositoryDumpStatus, "refs dump task"),
        ("restore-refs-task", "RR", catalog_pb2.RepositoryRestoreStatus, "refs restore task"),
        (
            "gc-prepare-task",
            "GCPC",
            catalog_pb2.GarbageCollectionPrepareStatus,
            "garbage collection prepare task",
        ),
    ):
        reg.register(
            name, repo_part, rf"{layout.TASKS_PREFIX.decode()}{prefix}{nanoid}", msg_type, what
        )
    reg.register(
        "task",
        repo_part,
        _under(layout.TASKS_PREFIX),
        catalog_pb2.TaskMsg,
        "other asynchronous task status (every status record starts with its Task)",
    )
    reg.register(
        "pull-request",
        repo_part,
        _under(layout.PULLS_PREFIX),
        graveler_pb2.PullRequestData,
        "pull request",
    )
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


def undecodable(
    entries: Iterable[tuple[bytes, bytes, bytes]], registry: TypeRegistry | None = None
) -> Iterator[str]:
    """One line per entry that ``registry`` (default :data:`LAKEFS_TYPES`) does not fully
    decode: no rule matches it, its value does not parse as its rule's type, or the message
    (or a staged entry's ``catalog.Entry`` payload) carries fields the schema does not name.

    An empty result means every entry decoded to a known message or a known raw value.
    ``entries`` are ``(partition, key, value)`` triples (an :class:`~lakekv.kv.store.Entry`
    is one).
    """
    reg = LAKEFS_TYPES if registry is None else registry
    for partition, key, value in entries:
        where = f"partition {_text(partition)!r} key {_text(key)!r}"
        record = reg.decode(partition, key, value)
        if record.rule == "unknown":
            yield f"{where}: no type rule matches"
        elif record.error is not None:
            yield f"{where}: not a valid {record.rule} value: {record.error}"
        elif record.unknown_field_bytes:
            yield f"{where}: {record.unknown_field_bytes} bytes of unknown fields"
        elif isinstance(record.message, graveler_pb2.StagedEntryData) and record.message.identity:
            entry = catalog_pb2.Entry()
            try:
                entry.ParseFromString(record.message.data)
            except ProtoDecodeError as exc:
                yield f"{where}: staged payload is not a catalog.Entry: {exc}"
                continue
            if unknown := unknown_field_bytes(entry):
                yield f"{where}: staged payload has {unknown} bytes of unknown fields"
