"""A realistic lakeFS database, made through lakeFS's API, and what lakeFS shows of it.

:func:`build` drives a running lakeFS: two repositories, uploaded objects (text, binary,
non-ASCII paths), commits with metadata, branches, tags (one with ``~``: lakeFS 1.86 refuses
``/`` in a tag ID), a merge, a Lua hook that leaves action runs, an open, a merged and a closed
pull request, garbage-collection and branch-protection settings, an import of outside files, a
physical address awaiting a link, an S3 multipart upload left open, and uncommitted writes
**and** deletes on three branches. lakeFS 1.86 runs basic auth only: the admin user and its
credential are the users and credentials it keeps; groups and policies it refuses
(``auth_refusals``).

:func:`observe` is everything lakeFS's API shows of a database; two databases hold the same
lakeFS data when lakeFS shows the same observation for both.
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lakefs_sdk
from lakefs_sdk import (
    ActionsApi,
    AuthApi,
    BranchCreation,
    BranchesApi,
    CommitCreation,
    CommitsApi,
    ImportApi,
    Merge,
    ObjectsApi,
    PullRequestBasic,
    PullRequestCreation,
    PullsApi,
    RefsApi,
    RepositoriesApi,
    RepositoryCreation,
    StagingApi,
    TagCreation,
    TagsApi,
)
from lakefs_sdk.exceptions import ApiException

from lakekv.testing import require_module

require_module("boto3", "dynamodb")  # lakeFS's S3 gateway is driven with boto3

import boto3  # noqa: E402
import botocore.config  # noqa: E402

ALPHA = "alpha"
BETA = "beta"
ADMIN = "admin"
PAGE = 1000

ACTION_YAML = b"""name: scenario checks
on:
  pre-commit:
    branches: ["main"]
hooks:
  - id: say_hello
    type: lua
    properties:
      script: |
        print("hello from " .. action.branch_id)
"""


@dataclass
class Facts:
    """What :func:`build` made, for tests that need more than :func:`observe` shows."""

    pulls: dict[str, str] = field(default_factory=dict)
    """pull request title → ID"""
    staged: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    """(repo, branch) → {path: "added" | "changed" | "removed"} left uncommitted"""
    auth_refusals: dict[str, str] = field(default_factory=dict)
    """auth operation → lakeFS's status and message refusing it"""
    multipart: tuple[str, str, str] = ("", "", "")
    """an S3-gateway multipart upload left open on alpha's main: (key, upload ID, part ETag)"""


class Client:
    """The lakeFS API groups, on one connection."""

    def __init__(self, api: lakefs_sdk.ApiClient) -> None:
        self.api = api
        self.repos = RepositoriesApi(api)
        self.branches = BranchesApi(api)
        self.commits = CommitsApi(api)
        self.objects = ObjectsApi(api)
        self.tags = TagsApi(api)
        self.refs = RefsApi(api)
        self.pulls = PullsApi(api)
        self.actions = ActionsApi(api)
        self.auth = AuthApi(api)
        self.staging = StagingApi(api)
        self.imports = ImportApi(api)

    def upload(self, repo: str, branch: str, path: str, content: bytes) -> None:
        # The SDK uploads files by name (and takes the media type from the name).
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / path.rsplit("/", 1)[-1]
            local.write_bytes(content)
            self.objects.upload_object(repo, branch, path, content=str(local))

    def delete(self, repo: str, branch: str, path: str) -> None:
        self.objects.delete_object(repo, branch, path)

    def commit(self, repo: str, branch: str, message: str, **metadata: str) -> str:
        c = self.commits.commit(repo, branch, CommitCreation(message=message, metadata=metadata))
        return str(c.id)


def s3_client(api: lakefs_sdk.ApiClient) -> Any:
    """A boto3 S3 client for lakeFS's S3 gateway (path style: /<repo>/<ref>/<path>)."""
    conf = api.configuration
    return boto3.client(
        "s3",
        endpoint_url=conf.host.removesuffix("/api/v1"),
        aws_access_key_id=conf.username,
        aws_secret_access_key=conf.password,
        region_name="us-east-1",
        config=botocore.config.Config(s3={"addressing_style": "path"}),
    )


MULTIPART_PART = b"multipart " * 100


def _csv(rows: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    lines = ["id,value"] + [f"{i},{rnd.randint(0, 10**6)}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def _refusal(call: Any) -> str:
    try:
        call()
    except ApiException as exc:
        return f"{exc.status} {(exc.body or '').strip()}"
    return "accepted"


def build(api: lakefs_sdk.ApiClient, import_dir: Path) -> Facts:
    """Make the scenario on the (set-up, empty) lakeFS behind ``api``; ``import_dir`` is a
    directory lakeFS may import from (``LakeFS.import_dir``)."""
    lf = Client(api)
    facts = Facts()
    binary = bytes(random.Random(7).getrandbits(8) for _ in range(4096))

    # Repository alpha: history, tags, a merge, hooks, pull requests, settings.
    lf.repos.create_repository(
        RepositoryCreation(name=ALPHA, storage_namespace=f"local://{ALPHA}", default_branch="main")
    )
    # The hook goes in before the first commit: lakeFS caches a branch's action list for ~5 s.
    lf.upload(ALPHA, "main", "_lakefs_actions/checks.yaml", ACTION_YAML)
    lf.upload(ALPHA, "main", "data/a.csv", _csv(20, 1))
    lf.upload(ALPHA, "main", "data/b.csv", _csv(30, 2))
    lf.upload(ALPHA, "main", "images/logo.bin", binary)
    lf.upload(ALPHA, "main", "docs/naïve café.txt", "déjà vu\n".encode())
    lf.commit(ALPHA, "main", "initial data", owner="scenario", kind="load")  # runs the hook
    lf.upload(ALPHA, "main", "data/d.csv", _csv(5, 4))
    lf.commit(ALPHA, "main", "second load", owner="scenario", batch="2")
    lf.tags.create_tag(ALPHA, TagCreation(id="v1.0", ref="main"))

    lf.branches.create_branch(ALPHA, BranchCreation(name="dev", source="main"))
    lf.upload(ALPHA, "dev", "data/c.csv", _csv(10, 3))
    lf.upload(ALPHA, "dev", "data/b.csv", _csv(31, 5))
    lf.commit(ALPHA, "dev", "dev changes", ticket="LK-1")
    lf.refs.merge_into_branch(
        ALPHA, "dev", "main", merge=Merge(message="merge dev", metadata={"reviewed": "yes"})
    )
    lf.tags.create_tag(ALPHA, TagCreation(id="v2.0~merged", ref="main"))

    lf.branches.create_branch(ALPHA, BranchCreation(name="feature", source="main"))
    lf.upload(ALPHA, "feature", "docs/readme.md", b"# alpha\n")
    lf.commit(ALPHA, "feature", "docs")
    facts.pulls["add docs"] = str(
        lf.pulls.create_pull_request(
            ALPHA,
            PullRequestCreation(
                title="add docs",
                description="the readme",
                source_branch="feature",
                destination_branch="main",
            ),
        ).id
    )
    lf.branches.create_branch(ALPHA, BranchCreation(name="fix", source="main"))
    lf.upload(ALPHA, "fix", "data/fix.txt", b"fixed\n")
    lf.commit(ALPHA, "fix", "a fix")
    fix_pr = str(
        lf.pulls.create_pull_request(
            ALPHA,
            PullRequestCreation(
                title="a fix",
                description="merged through its pull request",
                source_branch="fix",
                destination_branch="main",
            ),
        ).id
    )
    facts.pulls["a fix"] = fix_pr
    lf.pulls.merge_pull_request(ALPHA, fix_pr)
    lf.branches.create_branch(ALPHA, BranchCreation(name="abandoned", source="main"))
    lf.upload(ALPHA, "abandoned", "tmp/x", b"x")
    lf.commit(ALPHA, "abandoned", "abandoned work")
    closed = str(
        lf.pulls.create_pull_request(
            ALPHA,
            PullRequestCreation(
                title="abandoned",
                description="closed without merging",
                source_branch="abandoned",
                destination_branch="main",
            ),
        ).id
    )
    facts.pulls["abandoned"] = closed
    lf.pulls.update_pull_request(ALPHA, closed, PullRequestBasic(status="closed"))

    lf.repos.set_gc_rules(
        ALPHA,
        lakefs_sdk.GarbageCollectionRules(
            default_retention_days=21,
            branches=[lakefs_sdk.GarbageCollectionRule(branch_id="dev", retention_days=7)],
        ),
    )
    lf.repos.set_branch_protection_rules(
        ALPHA, [lakefs_sdk.BranchProtectionRule(pattern="release-*")]
    )
    lf.staging.get_physical_address(ALPHA, "main", "pending/upload.bin")
    s3 = s3_client(api)
    upload = s3.create_multipart_upload(Bucket=ALPHA, Key="main/big/upload.bin")
    part = s3.upload_part(
        Bucket=ALPHA,
        Key="main/big/upload.bin",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=MULTIPART_PART,
    )
    facts.multipart = ("big/upload.bin", upload["UploadId"], part["ETag"])

    # An import of files from outside the blockstore, committed on its own branch.
    logs = import_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        (logs / f"day-{i}.log").write_bytes(f"log line {i}\n".encode())
    lf.branches.create_branch(ALPHA, BranchCreation(name="imported", source="main"))
    started = lf.imports.import_start(
        ALPHA,
        "imported",
        lakefs_sdk.ImportCreation(
            paths=[
                lakefs_sdk.ImportLocation(
                    type="common_prefix", path=f"local://{logs}/", destination="ext/logs/"
                )
            ],
            commit=CommitCreation(message="import logs", metadata={"source": "logs"}),
        ),
    )
    deadline = time.monotonic() + 60
    while not (status := lf.imports.import_status(ALPHA, "imported", started.id)).completed:
        assert status.error is None, status.error
        assert time.monotonic() < deadline, "the import did not complete"
        time.sleep(0.2)

    # Uncommitted writes and deletes on alpha's main and dev.
    lf.upload(ALPHA, "main", "staged/new.txt", b"new and uncommitted\n")
    lf.upload(ALPHA, "main", "data/c.csv", _csv(12, 6))
    lf.delete(ALPHA, "main", "data/a.csv")
    facts.staged[(ALPHA, "main")] = {
        "staged/new.txt": "added",
        "data/c.csv": "changed",
        "data/a.csv": "removed",
    }
    lf.upload(ALPHA, "dev", "dev/wip.txt", b"work in progress\n")
    lf.delete(ALPHA, "dev", "images/logo.bin")
    facts.staged[(ALPHA, "dev")] = {"dev/wip.txt": "added", "images/logo.bin": "removed"}

    # Repository beta: another default branch name, many prefixes, uncommitted work on "exp".
    lf.repos.create_repository(
        RepositoryCreation(name=BETA, storage_namespace=f"local://{BETA}", default_branch="trunk")
    )
    for i in range(24):
        lf.upload(BETA, "trunk", f"part={i % 4}/file-{i:03d}.json", f'{{"n": {i}}}\n'.encode())
    lf.commit(BETA, "trunk", "load beta", source="generator")
    lf.tags.create_tag(BETA, TagCreation(id="first", ref="trunk"))
    lf.branches.create_branch(BETA, BranchCreation(name="exp", source="trunk"))
    lf.delete(BETA, "exp", "part=0/file-000.json")
    lf.upload(BETA, "exp", "part=9/extra.json", b'{"extra": true}\n')
    lf.commit(BETA, "exp", "experiment")
    lf.upload(BETA, "exp", "part=1/file-001.json", b'{"n": "one"}\n')
    lf.delete(BETA, "exp", "part=2/file-002.json")
    lf.upload(BETA, "exp", "scratch/notes.txt", b"notes\n")
    facts.staged[(BETA, "exp")] = {
        "part=1/file-001.json": "changed",
        "part=2/file-002.json": "removed",
        "scratch/notes.txt": "added",
    }

    # Auth: lakeFS's basic auth keeps exactly one user and one credential.
    facts.auth_refusals = {
        "create_user": _refusal(
            lambda: lf.auth.create_user(lakefs_sdk.UserCreation(id="second-user"))
        ),
        "create_group": _refusal(
            lambda: lf.auth.create_group(lakefs_sdk.GroupCreation(id="analysts"))
        ),
        "create_policy": _refusal(
            lambda: lf.auth.create_policy(
                lakefs_sdk.Policy(
                    id="read-all",
                    statement=[
                        lakefs_sdk.Statement(effect="allow", resource="*", action=["fs:Read*"])
                    ],
                )
            )
        ),
        "create_credentials": _refusal(lambda: lf.auth.create_credentials(ADMIN)),
    }
    return facts


def _all(fetch: Any) -> list[Any]:
    """Every item of a paginated lakeFS listing (``fetch(after)`` returns one page)."""
    items: list[Any] = []
    after = ""
    while True:
        page = fetch(after)
        items.extend(page.results)
        if not page.pagination.has_more:
            return items
        after = page.pagination.next_offset


def _all_json(fetch: Any) -> list[dict[str, Any]]:
    """:func:`_all` for a ``*_with_http_info(..., _preload_content=False)`` call."""
    items: list[dict[str, Any]] = []
    after = ""
    while True:
        page = json.loads(fetch(after).raw_data)
        items.extend(page["results"])
        if not page["pagination"]["has_more"]:
            return items
        after = page["pagination"]["next_offset"]


def observe(api: lakefs_sdk.ApiClient, access_key_id: str) -> dict[str, Any]:
    """Everything lakeFS shows of its database, as plain data (objects by content hash)."""
    lf = Client(api)
    out: dict[str, Any] = {"repositories": {}}
    for repo in _all(lambda a: lf.repos.list_repositories(after=a, amount=PAGE)):
        rid = repo.id
        info: dict[str, Any] = {
            "storage_namespace": repo.storage_namespace,
            "default_branch": repo.default_branch,
            "creation_date": repo.creation_date,
            "read_only": repo.read_only,
        }
        branches = _all(lambda a, r=rid: lf.branches.list_branches(r, after=a, amount=PAGE))
        info["branches"] = {b.id: b.commit_id for b in branches}
        tags = _all(lambda a, r=rid: lf.tags.list_tags(r, after=a, amount=PAGE))
        info["tags"] = {t.id: t.commit_id for t in tags}
        info["logs"] = {}
        info["objects"] = {}
        info["uncommitted"] = {}
        for b in branches:
            log = _all(lambda a, r=rid, ref=b.id: lf.refs.log_commits(r, ref, after=a, amount=PAGE))
            info["logs"][b.id] = [
                (c.id, c.message, c.committer, c.creation_date, c.metadata, c.parents) for c in log
            ]
            objs = _all(
                lambda a, r=rid, ref=b.id: lf.objects.list_objects(r, ref, after=a, amount=PAGE)
            )
            listing = {}
            for o in objs:
                content = bytes(lf.objects.get_object(rid, b.id, o.path))
                listing[o.path] = (
                    o.checksum,
                    o.size_bytes,
                    o.content_type,
                    hashlib.sha256(content).hexdigest(),
                )
            info["objects"][b.id] = listing
            diff = _all(
                lambda a, r=rid, ref=b.id: lf.branches.diff_branch(r, ref, after=a, amount=PAGE)
            )
            info["uncommitted"][b.id] = sorted((d.path, d.type) for d in diff)
        # Raw JSON: the SDK's PullRequest model refuses the null description lakeFS returns.
        pulls = _all_json(
            lambda a, r=rid: lf.pulls.list_pull_requests_with_http_info(
                r, after=a, amount=PAGE, status="all", _preload_content=False
            )
        )
        info["pulls"] = sorted(
            (
                p["id"],
                p["title"],
                p["status"],
                p["source_branch"],
                p["destination_branch"],
                p.get("merged_commit_id"),
            )
            for p in pulls
        )
        runs = _all(lambda a, r=rid: lf.actions.list_repository_runs(r, after=a, amount=PAGE))
        info["action_runs"] = sorted(
            (r.run_id, r.branch, r.event_type, r.status, r.commit_id) for r in runs
        )
        try:
            gc = lf.repos.get_gc_rules(rid)
            info["gc_rules"] = (
                gc.default_retention_days,
                sorted((b.branch_id, b.retention_days) for b in gc.branches),
            )
        except ApiException as exc:
            info["gc_rules"] = exc.status
        info["branch_protection"] = sorted(
            r.pattern for r in lf.repos.get_branch_protection_rules(rid)
        )
        out["repositories"][rid] = info
    users = _all(lambda a: lf.auth.list_users(after=a, amount=PAGE))
    out["users"] = sorted(u.id for u in users)
    # Basic auth lists no credentials; it shows the one it has by its access key.
    out["current_user"] = lf.auth.get_current_user().user.id
    cred = lf.auth.get_credentials(out["current_user"], access_key_id)
    out["credential"] = (cred.access_key_id, cred.creation_date)
    out["credential_listing"] = _refusal(lambda: lf.auth.list_user_credentials(ADMIN))
    out["groups"] = _refusal(lf.auth.list_groups)
    out["policies"] = _refusal(lf.auth.list_policies)
    return out
