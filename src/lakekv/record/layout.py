"""Where lakeFS keeps what: partition names, key paths and the patterns that recognise them.

Keys are path segments joined with ``/`` and **not escaped** (lakeFS ``kv.FormatPath``), so a tag
ID containing ``/`` yields a key with more segments; readers must split on the first ``/`` only.
The table is lakeFS v1.86.0's (the files are named in :mod:`lakekv.record.registry`).

=============================  ===========================================  ====================
partition                      key                                          value
=============================  ===========================================  ====================
``kv-internal-metadata``       ``kv/schema/version``                        ASCII integer
``graveler``                   ``repos/<repoID>``                           RepositoryData
``<repoID>-<instanceUID>``     ``branches/<id>`` ``commits/<id>``            BranchData, CommitData,
                               ``tags/<id>`` ``repo-metadata``              TagData, RepoMetadata,
                               ``settings/protected_branches``              BranchProtectionRules,
                               ``imports/<id>`` ``tasks/<id>``              ImportStatusData, tasks,
                               ``pulls/<id>``                               PullRequestData
``<repoID>-<branchID>:<uuid>`` the object path (raw bytes)                  StagedEntryData
``cleanup-tokens``             a staging token                              ``stub-value``
``pulls``                      ``repos/<repoPartition>/<src>/<dst>``         SecondaryIndex
``auth``                       ``users/<n>`` ``groups/<n>`` ``policies/<n>``  UserData, GroupData,
                               ``uCredentials/<user>/credentials/<key>``    PolicyData, Credential
                               ``gUsers/<g>/users/<u>`` ``gPolicies/…``      SecondaryIndex
                               ``uPolicies/…`` ``expiredTokens/<id>``       …, TokenData
                               ``installation_id`` ``installation_metadata/…``  text
``basicAuth``                  ``users/superAdmin``, ``uCredentials/…``      UserData, Credential
``actions``                    ``repos/<repoID>/runs/<run>``                RunResultData
                               ``repos/<repoID>/tasks/<run>/<hook run>``    TaskResultData
                               ``repos/<repoID>/branches|commits/<id>/<run>``  SecondaryIndex
``catalog``                    ``instances/<instance>``                     InstanceHeartbeat
``multiparts``                 the upload ID                                UploadData
``mc-ownership``               ``<prefix>/<key>``                           MostlyCorrectOwnership
``usage``                      ``usage/monthly/<installation>/<YYYYMM>``    ASCII integer
=============================  ===========================================  ====================

lakeFS no longer keeps ``settings/gc_rules`` here (garbage-collection rules live in the
repository's object storage) nor ``link-addresses/…`` (removed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from google.protobuf.message import DecodeError

from lakekv.kv.store import Entry, Store
from lakekv.record.proto import graveler_pb2

SCHEMA_PARTITION: Final = b"kv-internal-metadata"
SCHEMA_VERSION_KEY: Final = b"kv/schema/version"
LAKEFS_SCHEMA_VERSION: Final = b"4"
"""The latest lakeFS KV schema version (the value under ``SCHEMA_VERSION_KEY``)."""
GRAVELER_PARTITION: Final = b"graveler"
CLEANUP_TOKENS_PARTITION: Final = b"cleanup-tokens"
CLEANUP_STUB_VALUE: Final = b"stub-value"
PULLS_INDEX_PARTITION: Final = b"pulls"
AUTH_PARTITION: Final = b"auth"
BASIC_AUTH_PARTITION: Final = b"basicAuth"
ACL_AUTH_PARTITION: Final = b"aclauth"
ACTIONS_PARTITION: Final = b"actions"
CATALOG_PARTITION: Final = b"catalog"
MULTIPARTS_PARTITION: Final = b"multiparts"
USAGE_PARTITION: Final = b"usage"
OWNERSHIP_PARTITION: Final = b"mc-ownership"

FIXED_PARTITIONS: Final[tuple[bytes, ...]] = tuple(
    sorted(
        (
            SCHEMA_PARTITION,
            GRAVELER_PARTITION,
            CLEANUP_TOKENS_PARTITION,
            PULLS_INDEX_PARTITION,
            AUTH_PARTITION,
            BASIC_AUTH_PARTITION,
            ACL_AUTH_PARTITION,
            ACTIONS_PARTITION,
            CATALOG_PARTITION,
            MULTIPARTS_PARTITION,
            USAGE_PARTITION,
            OWNERSHIP_PARTITION,
        )
    )
)
"""Partitions lakeFS uses under fixed names, bytewise sorted: always reachable."""

REPOS_PREFIX: Final = b"repos/"
BRANCHES_PREFIX: Final = b"branches/"
COMMITS_PREFIX: Final = b"commits/"
TAGS_PREFIX: Final = b"tags/"
SETTINGS_PREFIX: Final = b"settings/"
IMPORTS_PREFIX: Final = b"imports/"
TASKS_PREFIX: Final = b"tasks/"
PULLS_PREFIX: Final = b"pulls/"
REPO_METADATA_KEY: Final = b"repo-metadata"

# Identifier patterns (lakeFS pkg/graveler validation). Go's \w is ASCII-only: so is ours.
REPOSITORY_ID_PATTERN: Final = r"[a-z0-9][a-z0-9-]{2,62}"
BRANCH_ID_PATTERN: Final = r"\w[-\w]*"
INSTANCE_UID_PATTERN: Final = r"[0-9a-v]{20}"
UUID_PATTERN: Final = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

REPOSITORY_PARTITION_RE: Final = re.compile(
    rf"^(?P<repo>{REPOSITORY_ID_PATTERN})-(?P<uid>{INSTANCE_UID_PATTERN})$", re.ASCII
)
"""A repository partition name, ``<repoID>-<instanceUID>``."""

STAGING_TOKEN_RE: Final = re.compile(
    rf"^(?P<prefix>{REPOSITORY_ID_PATTERN}-{BRANCH_ID_PATTERN}):(?P<uuid>{UUID_PATTERN})$",
    re.ASCII,
)
"""A staging token (and staging partition name), ``<repoID>-<branchID>:<uuid>``."""


def join_key(*parts: str) -> bytes:
    """Segments joined with ``/``, UTF-8 encoded, not escaped (as lakeFS does)."""
    return "/".join(parts).encode()


def repository_partition(repository_id: str, instance_uid: str) -> bytes:
    """The partition holding a repository's branches, commits, tags and settings."""
    return f"{repository_id}-{instance_uid}".encode()


def staging_token(repository_id: str, branch_id: str, unique: str) -> str:
    """``<repoID>-<branchID>:<unique>``: a staging token, also its partition's name (lakeFS
    puts a UUID in ``unique``)."""
    return f"{repository_id}-{branch_id}:{unique}"


def repository_key(repository_id: str) -> bytes:
    """``repos/<id>`` in the ``graveler`` partition."""
    return REPOS_PREFIX + repository_id.encode()


def branch_key(branch_id: str) -> bytes:
    return BRANCHES_PREFIX + branch_id.encode()


def commit_key(commit_id: str) -> bytes:
    return COMMITS_PREFIX + commit_id.encode()


def tag_key(tag_id: str) -> bytes:
    return TAGS_PREFIX + tag_id.encode()


def pull_index_key(repo_partition: bytes, source: str, destination: str) -> bytes:
    """``repos/<repoPartition>/<src>/<dst>`` in the ``pulls`` partition."""
    return b"repos/" + repo_partition + b"/" + join_key(source, destination)


def credential_key(user: str, access_key_id: str) -> bytes:
    """``uCredentials/<user>/credentials/<access key>`` in ``auth`` / ``basicAuth``."""
    return join_key("uCredentials", user, "credentials", access_key_id)


def actions_run_key(repository_id: str, run_id: str) -> bytes:
    """``repos/<repoID>/runs/<run>`` in ``actions``: a RunResultData."""
    return join_key("repos", repository_id, "runs", run_id)


def actions_task_key(repository_id: str, run_id: str, hook_run_id: str) -> bytes:
    """``repos/<repoID>/tasks/<run>/<hook run>`` in ``actions``: a TaskResultData."""
    return join_key("repos", repository_id, "tasks", run_id, hook_run_id)


def actions_index_key(repository_id: str, kind: str, ref: str, run_id: str) -> bytes:
    """``repos/<repoID>/<kind>/<ref>/<run>`` in ``actions`` (``kind`` is ``branches`` or
    ``commits``): a SecondaryIndex pointing at the run's key."""
    return join_key("repos", repository_id, kind, ref, run_id)


def instance_key(instance_id: str) -> bytes:
    """``instances/<id>`` in ``catalog``: an InstanceHeartbeat."""
    return join_key("instances", instance_id)


def decode_text(data: bytes) -> str | None:
    """``data`` as UTF-8 text, or ``None`` if it is not valid UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def is_repository_partition(partition: bytes) -> bool:
    text = decode_text(partition)
    return text is not None and REPOSITORY_PARTITION_RE.match(text) is not None


def is_staging_partition(partition: bytes) -> bool:
    text = decode_text(partition)
    return text is not None and STAGING_TOKEN_RE.match(text) is not None


Reader = Callable[[bytes, bytes], Iterable[tuple[bytes, bytes]]]
"""``read(partition, prefix)``: the ``(key, value)`` pairs of ``partition`` whose key starts with
``prefix``, in key order."""


def reader(store: Store, wrap: Callable[[Iterator[Entry]], Iterator[Entry]] = iter) -> Reader:
    """A :data:`Reader` over ``store``; ``wrap`` wraps each scan (e.g. to retry it)."""

    def read(partition: bytes, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        with store.scan(partition, start=prefix) as it:
            for entry in wrap(it):
                if not entry.key.startswith(prefix):
                    return
                yield entry.key, entry.value

    return read


@dataclass(frozen=True)
class Reachable:
    """What the lakeFS model reaches from ``graveler``: see :func:`walk`."""

    repositories: frozenset[bytes]
    """Partitions of the repositories listed under ``graveler/repos/*``."""
    tokens: frozenset[bytes]
    """Staging and sealed tokens of those repositories' branches."""
    cleanup_queued: frozenset[bytes]
    """Tokens queued under ``cleanup-tokens`` (being dropped; may hold data still)."""

    def partitions(self) -> list[bytes]:
        """Every partition named here or fixed, bytewise sorted."""
        found = set(FIXED_PARTITIONS) | self.repositories | self.tokens | self.cleanup_queued
        return sorted(found)


def walk(read: Reader) -> Reachable:
    """Walk the lakeFS model: ``graveler/repos/*`` → each repository's partition → each
    branch's staging and sealed tokens; and the tokens queued under ``cleanup-tokens``.

    Records that do not decode are skipped (a walk never fails on one bad value). Partitions
    nothing points to any more (e.g. staging partitions of a deleted repository) are not
    found: only listing a store's partitions finds those.
    """
    repositories: set[bytes] = set()
    tokens: set[bytes] = set()
    for _key, raw in read(GRAVELER_PARTITION, REPOS_PREFIX):
        try:
            repo = graveler_pb2.RepositoryData.FromString(raw)
        except DecodeError:
            continue
        if not repo.id:
            continue
        partition = repository_partition(repo.id, repo.instance_uid)
        repositories.add(partition)
        for _bkey, braw in read(partition, BRANCHES_PREFIX):
            try:
                branch = graveler_pb2.BranchData.FromString(braw)
            except DecodeError:
                continue
            tokens.update(t.encode() for t in (branch.staging_token, *branch.sealed_tokens) if t)
    queued = frozenset(key for key, _value in read(CLEANUP_TOKENS_PARTITION, b""))
    return Reachable(frozenset(repositories), frozenset(tokens), queued)
