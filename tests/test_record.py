"""Record helpers over every backend, and the type registry over every lakeFS partition and key."""

from __future__ import annotations

import json
import uuid

import pytest
from google.protobuf.message import Message

from lakekv.errors import DecodeError, KeyNotFoundError, PredicateFailedError, RecordError
from lakekv.kv.store import MUST_EXIST, Store
from lakekv.record import (
    LAKEFS_TYPES,
    TypeRegistry,
    decode_entry,
    get_message,
    scan_messages,
    scan_raw,
    scan_secondary,
    set_message,
    set_message_if,
)
from lakekv.record.proto import (
    actions_pb2,
    auth_pb2,
    catalog_pb2,
    graveler_pb2,
    kv_pb2,
    mc_owner_pb2,
    multipart_pb2,
)
from lakekv.refs.ids import new_instance_uid, new_staging_token

P = b"records"


def tag(i: int) -> graveler_pb2.TagData:
    return graveler_pb2.TagData(id=f"t{i}", commit_id=f"c{i}")


def test_get_set_set_if(fresh_store: Store) -> None:
    set_message(fresh_store, P, b"tags/a", tag(1))
    got = get_message(fresh_store, P, b"tags/a", graveler_pb2.TagData)
    assert got.message == tag(1)
    set_message_if(fresh_store, P, b"tags/a", tag(2), got.predicate)
    assert get_message(fresh_store, P, b"tags/a", graveler_pb2.TagData).message == tag(2)
    with pytest.raises(PredicateFailedError):
        set_message_if(fresh_store, P, b"tags/a", tag(3), got.predicate)
    with pytest.raises(PredicateFailedError):
        set_message_if(fresh_store, P, b"tags/a", tag(3), None)
    set_message_if(fresh_store, P, b"tags/b", tag(4), None)
    set_message_if(fresh_store, P, b"tags/b", tag(5), MUST_EXIST)
    assert get_message(fresh_store, P, b"tags/b", graveler_pb2.TagData).message == tag(5)
    with pytest.raises(KeyNotFoundError):
        get_message(fresh_store, P, b"tags/missing", graveler_pb2.TagData)
    # An empty message is zero bytes, and legal.
    set_message(fresh_store, P, b"empty", graveler_pb2.RepoMetadata())
    assert fresh_store.get(P, b"empty").value == b""
    assert get_message(fresh_store, P, b"empty", graveler_pb2.RepoMetadata).message == (
        graveler_pb2.RepoMetadata()
    )


def test_decode_error_names_the_entry(fresh_store: Store) -> None:
    fresh_store.set(P, b"bad", b"\xff\xff\xff")
    with pytest.raises(DecodeError) as info:
        get_message(fresh_store, P, b"bad", graveler_pb2.TagData)
    assert isinstance(info.value, RecordError)
    assert "b'bad'" in str(info.value)
    assert "io.treeverse.lakefs.graveler.TagData" in str(info.value)


def test_primary_iterator_prefix_start_after(fresh_store: Store) -> None:
    for i, key in enumerate([b"a", b"tags/1", b"tags/2", b"tags/3", b"tags0", b"z"]):
        set_message(fresh_store, P, key, tag(i))

    def keys(**kw: bytes) -> list[bytes]:
        return [e.key for e in scan_messages(fresh_store, P, graveler_pb2.TagData, **kw)]

    assert keys(prefix=b"tags/") == [b"tags/1", b"tags/2", b"tags/3"]
    assert keys(prefix=b"tags/", start=b"tags/2") == [b"tags/2", b"tags/3"]
    assert keys(prefix=b"tags/", after=b"tags/2") == [b"tags/3"]
    assert keys(prefix=b"tags/", after=b"tags/") == [b"tags/1", b"tags/2", b"tags/3"]
    assert keys(prefix=b"tags/", after=b"a") == [b"tags/1", b"tags/2", b"tags/3"]
    assert keys(after=b"tags0") == [b"z"]
    assert keys(prefix=b"nothing") == []
    entries = list(scan_messages(fresh_store, P, graveler_pb2.TagData, prefix=b"tags/3"))
    assert entries[0].message == tag(3)
    assert entries[0].raw == tag(3).SerializeToString()
    assert [k for k, _ in scan_raw(fresh_store, P, start=b"tags/3", after=b"tags/3")] == [
        b"tags0",
        b"z",
    ]


def test_secondary_iterator_skips_dangling_entries(fresh_store: Store) -> None:
    for i in range(3):
        set_message(fresh_store, P, f"pulls/{i}".encode(), tag(i))
    for i in range(4):  # index entry 3 points at a primary record that does not exist
        index = kv_pb2.SecondaryIndex(primary_key=f"pulls/{i}".encode())
        set_message(fresh_store, P, f"idx/{i}".encode(), index)
    set_message(fresh_store, P, b"idx/empty", kv_pb2.SecondaryIndex())
    fresh_store.delete(P, b"pulls/1")
    got = list(scan_secondary(fresh_store, P, graveler_pb2.TagData, prefix=b"idx/"))
    assert [(e.key, e.message) for e in got] == [(b"pulls/0", tag(0)), (b"pulls/2", tag(2))]
    other = b"primaries"
    set_message(fresh_store, other, b"pulls/9", tag(9))
    set_message(fresh_store, P, b"jdx/9", kv_pb2.SecondaryIndex(primary_key=b"pulls/9"))
    elsewhere = scan_secondary(
        fresh_store, P, graveler_pb2.TagData, prefix=b"jdx/", primary_partition=other
    )
    assert [e.message for e in elsewhere] == [tag(9)]


def test_secondary_iterator_reads_lakefs_pull_index(fresh_store: Store) -> None:
    # lakeFS (pkg/graveler/ref/manager.go CreatePullRequest) writes the bare pull ID into a
    # SecondaryIndex (field 1) in partition `pulls`; the pull lives at pulls/<id> of the
    # repository partition.
    repo_part = P + b"-repo"
    pull = graveler_pb2.PullRequestData(id="p1", source_branch="dev", destination_branch="main")
    set_message(fresh_store, repo_part, b"pulls/p1", pull)
    index_part = P + b"-pulls"
    index_key = b"repos/" + repo_part + b"/dev/main"
    fresh_store.set(index_part, index_key, b"\x0a\x02p1")  # lakeFS's bytes
    got = list(
        scan_secondary(
            fresh_store,
            index_part,
            graveler_pb2.PullRequestData,
            prefix=b"repos/" + repo_part + b"/",
            primary_partition=repo_part,
            primary_prefix=b"pulls/",
        )
    )
    assert [(e.key, e.message) for e in got] == [(b"pulls/p1", pull)]


# --- the type registry ------------------------------------------------------------------------

REPO_PART = f"my-repo-{new_instance_uid()}".encode()
STAGING = new_staging_token("my-repo", "feature-x").encode()


def _param_id(value: object) -> str | None:
    """A test ID without the generated IDs above, so that every run (and every pytest-xdist
    worker) collects the same test names; ``None``: pytest's own."""
    if not isinstance(value, bytes):
        return None
    named = value.replace(STAGING, b"<staging-token>").replace(REPO_PART[8:], b"<uid>")
    return named.decode("utf-8", "backslashreplace")


NANO = b"V1StGXR8_Z5jdHi6B-myT"[:20]

EXPECTED: list[tuple[bytes, bytes, type[Message] | None, str]] = [
    # Every key pattern lakeFS v1.86.0 writes (file named per group), with lakeFS's type.
    # pkg/kv/store.go
    (b"kv-internal-metadata", b"kv/schema/version", None, "schema-version"),
    # pkg/graveler/model.go, pkg/graveler/ref/manager.go, pkg/graveler/staging/manager.go
    (b"graveler", b"repos/my-repo", graveler_pb2.RepositoryData, "repository"),
    (REPO_PART, b"branches/main", graveler_pb2.BranchData, "branch"),
    (REPO_PART, b"commits/abc", graveler_pb2.CommitData, "commit"),
    (REPO_PART, b"tags/v1/rc", graveler_pb2.TagData, "tag"),
    (REPO_PART, b"repo-metadata", graveler_pb2.RepoMetadata, "repo-metadata"),
    (REPO_PART, b"pulls/p1", graveler_pb2.PullRequestData, "pull-request"),
    (STAGING, b"any/object/path\xff", graveler_pb2.StagedEntryData, "staged-entry"),
    (b"cleanup-tokens", STAGING, None, "cleanup-token"),
    (b"pulls", b"repos/" + REPO_PART + b"/a/b", kv_pb2.SecondaryIndex, "pull-request-index"),
    # pkg/graveler/branch/protection_manager.go
    (
        REPO_PART,
        b"settings/protected_branches",
        graveler_pb2.BranchProtectionRules,
        "branch-protection",
    ),
    # pkg/catalog/catalog.go, task.go, import.go
    (REPO_PART, b"imports/xyz", graveler_pb2.ImportStatusData, "import"),
    (REPO_PART, b"tasks/DR" + NANO, catalog_pb2.RepositoryDumpStatus, "dump-refs-task"),
    (REPO_PART, b"tasks/RR" + NANO, catalog_pb2.RepositoryRestoreStatus, "restore-refs-task"),
    (
        REPO_PART,
        b"tasks/GCPC" + NANO,
        catalog_pb2.GarbageCollectionPrepareStatus,
        "gc-prepare-task",
    ),
    (REPO_PART, b"tasks/CA123", catalog_pb2.TaskMsg, "task"),
    (b"catalog", b"instances/i-1", catalog_pb2.InstanceHeartbeat, "instance-heartbeat"),
    # pkg/auth/model/model.go (contrib/auth/acl and older servers), pkg/auth/metadata.go
    (b"auth", b"users/alice", auth_pb2.UserData, "auth-user"),
    (b"auth", b"groups/Admins", auth_pb2.GroupData, "auth-group"),
    (b"auth", b"policies/FSFullAccess", auth_pb2.PolicyData, "auth-policy"),
    (
        b"auth",
        b"uCredentials/alice/credentials/AKIAEXAMPLE",
        auth_pb2.CredentialData,
        "auth-credential",
    ),
    (b"auth", b"gUsers/Admins/users/alice", kv_pb2.SecondaryIndex, "auth-group-member"),
    (b"auth", b"gPolicies/Admins/policies/P", kv_pb2.SecondaryIndex, "auth-group-policy"),
    (b"auth", b"uPolicies/alice/policies/P", kv_pb2.SecondaryIndex, "auth-user-policy"),
    (b"auth", b"expiredTokens/t1", auth_pb2.TokenData, "auth-expired-token"),
    (b"auth", b"installation_id", None, "auth-installation-id"),
    (b"auth", b"setup_timestamp", None, "auth-setup-timestamp"),
    (b"auth", b"installation_metadata/setup_timestamp", None, "auth-installation-metadata"),
    (b"aclauth", b"installation_metadata/x", None, "aclauth-installation-metadata"),
    # pkg/auth/basic_service.go
    (b"basicAuth", b"users/superAdmin", auth_pb2.UserData, "basicAuth-user"),
    (
        b"basicAuth",
        b"uCredentials/superAdmin/credentials/AKIAEXAMPLE",
        auth_pb2.CredentialData,
        "basicAuth-credential",
    ),
    # pkg/actions/service.go, store.go
    (b"actions", b"repos/my-repo/runs/r1", actions_pb2.RunResultData, "action-run"),
    (b"actions", b"repos/my-repo/tasks/r1/h1", actions_pb2.TaskResultData, "action-hook-run"),
    (b"actions", b"repos/my-repo/branches/main/r1", kv_pb2.SecondaryIndex, "action-run-by-branch"),
    (b"actions", b"repos/my-repo/commits/c1/r1", kv_pb2.SecondaryIndex, "action-run-by-commit"),
    # pkg/gateway/multipart/tracker.go, pkg/distributed/mc_owner.go, pkg/stats/usage_counter.go
    (b"multiparts", b"upload-id", multipart_pb2.UploadData, "multipart-upload"),
    (
        b"mc-ownership",
        b"run-refs/approximate-branch-owner/7:my-repo/main",
        mc_owner_pb2.MostlyCorrectOwnership,
        "ownership",
    ),
    (b"usage", b"usage/monthly/inst/202611", None, "usage"),
]


@pytest.mark.parametrize(("partition", "key", "msg_type", "rule"), EXPECTED, ids=_param_id)
def test_registry_covers_every_lakefs_partition_and_key(
    partition: bytes, key: bytes, msg_type: type[Message] | None, rule: str
) -> None:
    found = LAKEFS_TYPES.lookup(partition, key)
    assert found is not None
    assert found.name == rule
    assert found.msg_type is msg_type
    assert LAKEFS_TYPES.message_type(partition, key) is msg_type


def test_every_registry_rule_is_tested() -> None:
    assert sorted(r.name for r in LAKEFS_TYPES.rules) == sorted(rule for *_, rule in EXPECTED)


def test_unknown_fields_are_reported() -> None:
    index = kv_pb2.SecondaryIndex(primary_key=b"p1").SerializeToString()
    assert decode_entry(b"pulls", b"repos/" + REPO_PART + b"/a/b", index).unknown_field_bytes == 0
    # what lakekv wrote before field 1 was fixed: field 99, unknown to lakeFS's schema
    old = b"\x9a\x06\x02p1"
    record = decode_entry(b"pulls", b"repos/" + REPO_PART + b"/a/b", old)
    assert record.unknown_field_bytes == len(old)
    assert record.to_json()["unknown_field_bytes"] == len(old)
    task = catalog_pb2.Task(id="x").SerializeToString() + b"\xa0\x06\x01"  # field 100 = 1
    bad = b"\x0a" + bytes([len(task)]) + task  # RepositoryDumpStatus.task holding it
    assert decode_entry(REPO_PART, b"tasks/DR" + NANO, bad).unknown_field_bytes == 3


@pytest.mark.parametrize(
    ("partition", "key"),
    [
        (b"some-random-partition", b"branches/main"),
        (b"my-repo-short", b"branches/main"),  # not a 20-character instance UID
        (b"MY-REPO-" + REPO_PART[8:], b"branches/main"),  # repository IDs are lowercase
        (b"my-repo-main:not-a-uuid", b"k"),
        (b"\xff\xfe", b"k"),
        # what lakeFS does not write (any more): unknown, not a guessed type
        (REPO_PART, b"settings/gc_rules"),  # lives in object storage
        (REPO_PART, b"link-addresses/data/x"),  # removed from lakeFS
        (REPO_PART, b"whatever/else"),
        (b"graveler", b"other"),
        (b"actions", b"runs/1"),
        (b"pulls", b"other"),
    ],
    ids=_param_id,
)
def test_unknown_entries_are_never_decoded_as_staged(partition: bytes, key: bytes) -> None:
    value = graveler_pb2.StagedEntryData(key=b"k", identity=b"i").SerializeToString()
    record = decode_entry(partition, key, value)
    assert record.rule == "unknown"
    assert record.message is None
    assert record.raw == value


def test_decode_success_and_fallback_to_raw() -> None:
    branch = graveler_pb2.BranchData(id="main", commit_id="c", staging_token="t")
    record = decode_entry(REPO_PART, b"branches/main", branch.SerializeToString())
    assert record.message == branch
    assert record.type_name == "io.treeverse.lakefs.graveler.BranchData"
    out = record.to_json()
    assert out["value"]["commit_id"] == "c"
    json.dumps(out)
    broken = decode_entry(REPO_PART, b"branches/main", b"\xff\xff")
    assert broken.message is None
    assert broken.error is not None
    assert broken.to_json()["raw_base64"] == "//8="
    version = decode_entry(b"kv-internal-metadata", b"kv/schema/version", b"4").to_json()
    assert version["raw"] == "4"
    assert version["type"] is None


def test_staged_entry_json_includes_the_catalog_entry() -> None:
    entry = catalog_pb2.Entry(address="s3://x", size=7, e_tag="e")
    staged = graveler_pb2.StagedEntryData(
        key=b"p/\xff", identity=b"id", data=entry.SerializeToString()
    )
    out = decode_entry(STAGING, b"p/\xff", staged.SerializeToString()).to_json()
    assert out["object_key"] == "p/\\xff"
    assert out["tombstone"] is False
    assert out["entry"]["address"] == "s3://x"
    assert out["entry"]["size"] == "7"  # int64 is a JSON string in the protobuf mapping
    tomb = graveler_pb2.StagedEntryData(key=b"p")
    out = decode_entry(STAGING, b"p", tomb.SerializeToString()).to_json()
    assert out["tombstone"] is True
    assert "entry" not in out
    json.dumps(out)


def test_custom_registry_rules_are_ordered_and_unique() -> None:
    reg = TypeRegistry()
    reg.register("specific", rb"p", rb"tags/special", graveler_pb2.TagData)
    reg.register("general", rb"p", rb"tags/.+", None)
    assert reg.message_type(b"p", b"tags/special") is graveler_pb2.TagData
    assert reg.message_type(b"p", b"tags/other") is None
    assert reg.lookup(b"q", b"tags/other") is None
    with pytest.raises(ValueError):
        reg.register("general", rb"x", rb"y", None)


def test_staging_token_shapes() -> None:
    token = new_staging_token("a-b-c", "x-y")
    assert token.startswith("a-b-c-x-y:")
    uuid.UUID(token.split(":", 1)[1])
    assert LAKEFS_TYPES.message_type(token.encode(), b"k") is graveler_pb2.StagedEntryData
