"""``lakekv sample`` writes what lakeFS v1.86.0 would write: every entry decodes with lakeFS's
schemas and no unknown field, commits are content-addressed with a real parent chain, and the
index and credential keys are lakeFS's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from lakekv.kv.registry import open_store
from lakekv.kv.store import Entry, Store
from lakekv.migrate.sample import sample
from lakekv.record import LAKEFS_TYPES, decode_entry, layout, undecodable
from lakekv.record.proto import auth_pb2, catalog_pb2, graveler_pb2, kv_pb2
from lakekv.refs.ident import commit_id, entry_identity

RAW_RULES = {
    "schema-version",
    "cleanup-token",
    "auth-installation-id",
    "auth-installation-metadata",
    "usage",
}
"""The rules whose values lakeFS stores as text, not as a message."""

NOT_IN_SAMPLE = {
    "auth-setup-timestamp",  # read by lakeFS for old installations, written by none
    "aclauth-installation-metadata",  # the ACL server's old location, now only read
    "auth-expired-token",  # registered by lakeFS v1.86.0, written by no code of it
    "restore-refs-task",
    "gc-prepare-task",
    "task",
}


@pytest.fixture(scope="module")
def entries() -> Iterator[list[Entry]]:
    with open_store("memory://") as store:
        sample(store, 6000, seed=3)
        yield _all(store)


def _all(store: Store) -> list[Entry]:
    out: list[Entry] = []
    for partition in store.list_partitions():
        with store.scan(partition) as it:
            out.extend(it)
    return out


def test_every_entry_decodes_with_no_unknown_field(entries: list[Entry]) -> None:
    assert len(entries) == 6000
    assert list(undecodable(entries)) == []
    rules: set[str] = set()
    for e in entries:
        record = decode_entry(e.partition, e.key, e.value)
        rules.add(record.rule)
        if record.message is None:
            assert record.rule in RAW_RULES, (e.partition, e.key)
    assert rules == {r.name for r in LAKEFS_TYPES.rules} - NOT_IN_SAMPLE


def test_undecodable_names_what_lakekv_cannot_decode() -> None:
    part = b"repo-00-x-" + b"0" * 20
    bad = [
        Entry(part, b"settings/gc_rules", b""),  # lakeFS keeps GC rules in object storage
        Entry(b"pulls", b"repos/" + part + b"/a/b", b"\x9a\x06\x02p1"),  # field 99
        Entry(part, b"branches/main", b"\xff"),
        Entry(
            b"rep-main:00000000-0000-4000-8000-000000000000",
            b"k",
            graveler_pb2.StagedEntryData(
                key=b"k", identity=b"i", data=b"\xa0\x06\x01"
            ).SerializeToString(),
        ),
    ]
    problems = list(undecodable(bad))
    assert len(problems) == 4
    assert "no type rule" in problems[0]
    assert "unknown fields" in problems[1]
    assert "not a valid branch value" in problems[2]
    assert "staged payload has 3 bytes of unknown fields" in problems[3]


def _by_rule(entries: list[Entry], rule: str) -> list[tuple[Entry, object]]:
    out = []
    for e in entries:
        record = decode_entry(e.partition, e.key, e.value)
        if record.rule == rule:
            out.append((e, record.message))
    return out


def test_commits_are_content_addressed_with_a_real_parent_chain(entries: list[Entry]) -> None:
    commits: dict[tuple[bytes, str], graveler_pb2.CommitData] = {}
    for e, msg in _by_rule(entries, "commit"):
        assert isinstance(msg, graveler_pb2.CommitData)
        assert e.key == layout.commit_key(msg.id)
        assert msg.id == commit_id(
            committer=msg.committer,
            message=msg.message,
            meta_range_id=msg.meta_range_id,
            creation_date=datetime.fromtimestamp(msg.creation_date.seconds, UTC),
            metadata=dict(msg.metadata),
            parents=list(msg.parents),
        )
        commits[(e.partition, msg.id)] = msg
    assert commits
    merges = 0
    for (part, _), msg in commits.items():
        parents = [commits[(part, p)] for p in msg.parents]  # every parent exists
        if not parents:
            assert msg.message == "Repository created" and msg.generation == 1
        else:
            assert msg.generation == max(p.generation for p in parents) + 1
        merges += len(parents) == 2
        assert msg.version == 1
    assert merges >= 1
    for rule in ("branch", "tag"):
        refs = _by_rule(entries, rule)
        assert refs
        for e, msg in refs:
            assert isinstance(msg, graveler_pb2.BranchData | graveler_pb2.TagData)
            assert (e.partition, msg.commit_id) in commits
            # lakeFS v1.86.0 pkg/graveler/validate.go: no '/' (nor '..', '@{') in a tag ID
            assert "/" not in msg.id and ".." not in msg.id and "@{" not in msg.id


def test_indexes_and_credentials_use_lakefs_keys(entries: list[Entry]) -> None:
    keys = {(e.partition, e.key) for e in entries}
    pulls = _by_rule(entries, "pull-request-index")
    assert pulls
    for e, msg in pulls:
        assert isinstance(msg, kv_pb2.SecondaryIndex)
        assert b"/" not in msg.primary_key  # the bare pull ID
        repo_partition = e.key.split(b"/")[1]
        assert (repo_partition, layout.PULLS_PREFIX + msg.primary_key) in keys
    for rule in ("auth-group-member", "auth-group-policy", "auth-user-policy"):
        found = _by_rule(entries, rule)
        assert found, rule
        for e, msg in found:
            assert isinstance(msg, kv_pb2.SecondaryIndex)
            assert (e.partition, msg.primary_key) in keys
    for rule in ("action-run-by-branch", "action-run-by-commit"):
        for e, msg in _by_rule(entries, rule):
            assert isinstance(msg, kv_pb2.SecondaryIndex)
            assert (e.partition, msg.primary_key) in keys
    creds = _by_rule(entries, "auth-credential") + _by_rule(entries, "basicAuth-credential")
    assert len(creds) >= 2
    for e, msg in creds:
        assert isinstance(msg, auth_pb2.CredentialData)
        assert e.key == layout.credential_key(e.key.split(b"/")[1].decode(), msg.access_key_id)
    for _e, msg in _by_rule(entries, "staged-entry"):
        assert isinstance(msg, graveler_pb2.StagedEntryData)
        if msg.identity:
            assert msg.identity == entry_identity(catalog_pb2.Entry.FromString(msg.data))
    assert not any(k.startswith((b"settings/gc_rules", b"link-addresses/")) for _, k in keys)
