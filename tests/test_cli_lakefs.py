"""``lakekv lakefs …`` and ``--decode`` on any store URL: tables, JSON and exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from _cli import run

from lakekv.kv.registry import open_store
from lakekv.kv.store import Store
from lakekv.record.proto import catalog_pb2
from lakekv.refs import RefStore, Repository

T0 = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


@pytest.fixture
def sample(fresh_store_url: str, fresh_store: Store) -> tuple[str, Repository, str]:
    """A store with one repository: branches main and dev, a commit, a tag, staged objects.

    ``fresh_store`` stays open for the test, so a named ``memory://`` store keeps its data
    while the CLI opens the same URL."""
    refs = RefStore(fresh_store)
    repo = refs.create_repository("demo-repo", "s3://bucket/demo", creation_date=T0)
    refs.create_branch(repo, "dev", "main")
    refs.stage_object(repo, "dev", b"data/a.csv", catalog_pb2.Entry(address="x", size=3))
    commit = refs.commit(repo, "dev", committer="ann", message="add a", creation_date=T0)
    refs.create_tag(repo, "v1.0", "dev")
    refs.stage_object(repo, "dev", b"data/b.csv", catalog_pb2.Entry(address="y", size=4))
    refs.delete_staged(repo, "dev", b"data/a.csv")
    return fresh_store_url, repo, commit.id


def test_repos_branches_tags(
    capsys: pytest.CaptureFixture[str], sample: tuple[str, Repository, str]
) -> None:
    url, repo, commit_id = sample
    code, out, _ = run(capsys, "--store", url, "lakefs", "repos")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["ID", "DEFAULT"]
    assert lines[1].split()[:2] == ["demo-repo", "main"]
    code, out, _ = run(capsys, "lakefs", "repos", "--store", url, "--json")
    assert code == 0
    assert [r["id"] for r in json.loads(out)] == ["demo-repo"]
    assert json.loads(out)[0]["instance_uid"] == repo.instance_uid
    code, out, _ = run(capsys, "-s", url, "lakefs", "branches", "demo-repo", "--json")
    branches = json.loads(out)
    assert [b["id"] for b in branches] == ["dev", "main"]
    assert branches[0]["commit_id"] == commit_id
    code, out, _ = run(capsys, "-s", url, "lakefs", "branches", "demo-repo", "--prefix", "m")
    assert [ln.split()[0] for ln in out.splitlines()] == ["BRANCH", "main"]
    code, out, _ = run(capsys, "-s", url, "lakefs", "tags", "demo-repo")
    assert out.splitlines()[1].split() == ["v1.0", commit_id]


def test_log_forms(capsys: pytest.CaptureFixture[str], sample: tuple[str, Repository, str]) -> None:
    url, _, commit_id = sample
    code, out, _ = run(capsys, "-s", url, "lakefs", "log", "demo-repo/dev", "--json")
    assert code == 0
    log = json.loads(out)
    assert [c["message"] for c in log] == ["add a", "Repository created"]
    assert log[0]["id"] == commit_id
    for form in (["lakefs://demo-repo/v1.0"], ["demo-repo", commit_id]):
        code, out, _ = run(capsys, "-s", url, "lakefs", "log", *form, "--limit", "1")
        assert code == 0
        assert out.splitlines()[1].split()[0] == commit_id[:12]


def test_staged(capsys: pytest.CaptureFixture[str], sample: tuple[str, Repository, str]) -> None:
    url, _, _ = sample
    code, out, _ = run(capsys, "-s", url, "lakefs", "staged", "demo-repo", "dev", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["key"], r["tombstone"]) for r in rows] == [
        ("data/a.csv", True),
        ("data/b.csv", False),
    ]
    assert rows[1]["size"] == 4
    code, out, _ = run(capsys, "-s", url, "lakefs", "staged", "demo-repo", "dev", "--no-tombstones")
    assert [ln.split()[:2] for ln in out.splitlines()] == [
        ["KEY", "STATE"],
        ["data/b.csv", "staged"],
    ]


def test_errors_are_one_line_with_exit_codes(
    capsys: pytest.CaptureFixture[str], sample: tuple[str, Repository, str]
) -> None:
    url, _, _ = sample
    code, out, err = run(capsys, "-s", url, "lakefs", "branches", "no-such-repo")
    assert code == 1
    assert out == ""
    assert err.startswith("error: repository 'no-such-repo' not found")
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "-s", url, "lakefs", "branches", "Bad_Repo")
    assert code == 2
    assert "invalid repository ID" in err
    code, _, err = run(capsys, "-s", url, "lakefs", "log", "demo-repo/nothing")
    assert code == 1
    code, _, err = run(capsys, "-s", url, "lakefs", "log", "no-slash")
    assert code == 2


def test_orphans(capsys: pytest.CaptureFixture[str], sample: tuple[str, Repository, str]) -> None:
    url, _, _ = sample
    with open_store(url) as store:
        can_list = store.capabilities.list_partitions
        store.set(b"demo-repo-gone:00000000-0000-4000-8000-000000000000", b"k", b"")
    code, out, err = run(capsys, "-s", url, "lakefs", "orphans", "--json")
    if not can_list:
        assert code == 2
        assert "cannot list partitions" in err
        return
    assert code == 0
    orphans = json.loads(out)
    assert [(o["kind"], o["owner"], o["entries"]) for o in orphans] == [
        ("staging", "demo-repo-gone", 1)
    ]


def test_get_and_scan_decode(
    capsys: pytest.CaptureFixture[str], sample: tuple[str, Repository, str]
) -> None:
    url, repo, commit_id = sample
    code, out, _ = run(capsys, "-s", url, "get", "graveler", "repos/demo-repo", "--decode")
    assert code == 0
    record = json.loads(out)
    assert record["type"] == "io.treeverse.lakefs.graveler.RepositoryData"
    assert record["value"]["storage_namespace"] == "s3://bucket/demo"
    partition = repo.partition.decode()
    code, out, _ = run(capsys, "-s", url, "scan", partition, "--decode")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["rule"], r["key"]) for r in rows] == [
        ("branch", "branches/dev"),
        ("branch", "branches/main"),
        ("commit", f"commits/{rows[2]['key'].split('/')[1]}"),
        ("commit", f"commits/{rows[3]['key'].split('/')[1]}"),
        ("tag", "tags/v1.0"),
    ]
    assert commit_id in {rows[2]["value"]["id"], rows[3]["value"]["id"]}
