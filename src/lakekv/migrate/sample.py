"""``sample``: a realistic, deterministic lakeFS-shaped database of exactly N entries.

Every entry is one lakeFS v1.86.0 would write, at the key it would write it to, encoded with
lakeFS's schemas (:mod:`lakekv.record.proto`); every entry decodes through
:data:`~lakekv.record.LAKEFS_TYPES` with no unknown field:

* ``kv-internal-metadata / kv/schema/version`` = ``4``;
* ``graveler / repos/<id>`` → ``RepositoryData``;
* each repository partition ``<id>-<instance uid>``: ``commits/<id>`` (``CommitData``; IDs
  content-addressed by :func:`lakekv.refs.ident.commit_id`, a first "Repository created"
  commit, a parent chain, a branch forked and merged back with a two-parent merge commit),
  ``branches/…`` (``BranchData`` at those commits, some with sealed tokens), ``tags/…``
  (``TagData``, IDs as lakeFS allows them: no ``/``), ``repo-metadata`` (``RepoMetadata``, often
  empty: an empty value), ``settings/protected_branches``, ``pulls/<id>``, ``imports/<id>``,
  ``tasks/DR<id>`` (a refs-dump task);
* staging partitions ``<repo>-<branch>:<uuid4>`` (staging and sealed tokens) holding
  ``StagedEntryData`` objects wrapping ``catalog.Entry`` with their content identity:
  Zipf-skewed partition sizes, skewed metadata sizes, some tombstones, a few object paths that
  are not valid UTF-8;
* ``cleanup-tokens`` (``stub-value``); ``pulls`` (``SecondaryIndex`` holding the bare pull ID);
* ``auth``: installation ID and metadata, users, groups, policies, credentials under
  ``uCredentials/<user>/credentials/<access key>``, group memberships and policy attachments
  (``SecondaryIndex``); ``basicAuth``: the single user and its credentials;
* ``actions``: runs, hook runs and their by-branch and by-commit indexes; ``catalog``: an
  instance heartbeat; ``multiparts``: an upload; ``mc-ownership``: a branch ownership claim;
  ``usage``: a monthly counter.

Nothing lakeFS no longer writes (``settings/gc_rules`` lives in object storage, ``link-addresses/``
was removed). The same seed and size always produce the same bytes. Entries are generated and
written in batches: memory does not grow with N.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from lakekv.kv.store import Entry, OnConflict, Store
from lakekv.migrate import _retry
from lakekv.migrate._common import BATCH_ENTRIES, StoreLike, opened, url_of
from lakekv.migrate._progress import ProgressCallback, Tracker
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
from lakekv.refs.ident import commit_id, entry_identity

_B32HEX = "0123456789abcdefghijklmnopqrstuv"
_EPOCH = 1_700_000_000
_CONTENT_TYPES = (
    "application/octet-stream",
    "application/x-parquet",
    "text/csv",
    "application/json",
    "image/jpeg",
)
_EXTS = (".parquet", ".csv", ".json", ".jpg", ".avro", "")
_NANOID = "_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass
class SampleReport:
    """What ``sample`` wrote."""

    target: str
    seed: int
    entries: int = 0
    bytes: int = 0
    partitions: int = 0
    repositories: int = 0
    staging_partitions: int = 0
    non_utf8_keys: int = 0
    empty_values: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _ts(rnd: random.Random) -> Timestamp:
    return Timestamp(seconds=_EPOCH + rnd.randrange(0, 90 * 86400), nanos=rnd.randrange(10**9))


def _xid(rnd: random.Random) -> str:
    return "".join(rnd.choice(_B32HEX) for _ in range(20))


def _uuid(rnd: random.Random) -> str:
    return str(uuid.UUID(int=rnd.getrandbits(128), version=4))


def _nanoid(rnd: random.Random, n: int = 20) -> str:
    return "".join(rnd.choice(_NANOID) for _ in range(n))


def _rfc3339(ts: Timestamp) -> str:
    return datetime.fromtimestamp(ts.seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _entry(partition: str | bytes, key: str | bytes, value: bytes) -> Entry:
    p = partition.encode() if isinstance(partition, str) else partition
    k = key.encode() if isinstance(key, str) else key
    return Entry(p, k, value)


class _Generator:
    def __init__(self, n: int, seed: int, report: SampleReport) -> None:
        self.n = n
        self.rnd = random.Random(seed)
        self.report = report

    # --- metadata ----------------------------------------------------------------------------

    def _meta(self) -> tuple[list[Entry], list[tuple[bytes, float]]]:
        """Everything but the staged objects, and the staging partitions with Zipf weights."""
        rnd = self.rnd
        out: list[Entry] = [
            Entry(layout.SCHEMA_PARTITION, layout.SCHEMA_VERSION_KEY, layout.LAKEFS_SCHEMA_VERSION)
        ]
        staging: list[tuple[bytes, float]] = []
        repos = max(1, min(8, 1 + self.n // 200_000))
        self.report.repositories = repos
        cleanup: list[str] = []
        repo_names: list[str] = []
        for r in range(repos):
            repo = f"repo-{r:02d}-{rnd.choice(['analytics', 'ml', 'raw', 'lake'])}"
            repo_names.append(repo)
            out += self._repository(r, repo, staging, cleanup)
        for tok in sorted(cleanup):
            out.append(_entry(layout.CLEANUP_TOKENS_PARTITION, tok, layout.CLEANUP_STUB_VALUE))
        out += self._auth()
        out += self._services(repo_names)
        out.sort()
        return out, staging

    def _commits(self, rp: str, count: int) -> tuple[list[Entry], list[str], str]:
        """A content-addressed history: a first commit, a chain on ``main``, a ``dev`` chain
        forked from it and merged back. Returns the entries, ``main``'s chain (oldest first)
        and ``dev``'s head."""
        rnd = self.rnd
        out: list[Entry] = []
        start = _EPOCH + rnd.randrange(0, 30 * 86400)

        def add(message: str, parents: list[str], generation: int, at: int) -> str:
            when = Timestamp(seconds=at, nanos=rnd.randrange(10**9))
            metadata = {
                f"key{i}": f"value-{rnd.randrange(10**6)}" for i in range(rnd.choice([0, 0, 1, 3]))
            }
            first = not parents
            committer = "" if first else rnd.choice(["alice", "bob", "etl-bot"])
            meta_range = "" if first else hashlib.sha256(rnd.randbytes(16)).hexdigest()
            cid = commit_id(
                committer=committer,
                message=message,
                meta_range_id=meta_range,
                creation_date=datetime.fromtimestamp(when.seconds, UTC),
                metadata=metadata,
                parents=parents,
            )
            commit = graveler_pb2.CommitData(
                id=cid,
                committer=committer,
                message=message,
                creation_date=when,
                meta_range_id=meta_range,
                metadata=metadata,
                parents=parents,
                version=1,  # graveler.CurrentCommitVersion (CommitVersionParentSwitch)
                generation=generation,
            )
            out.append(_entry(rp, layout.commit_key(cid), commit.SerializeToString()))
            return cid

        main = [add("Repository created", [], 1, start)]
        for g in range(2, count + 1):
            main.append(add(f"ingest batch {g}", [main[-1]], g, start + g * 3600))
        half = len(main) // 2
        dev = add("feature work", [main[half]], half + 2, start + (half + 1) * 3600 + 1800)
        merged = add(
            "Merge 'dev' into 'main'",
            [main[-1], dev],
            max(len(main), half + 2) + 1,
            start + (count + 1) * 3600,
        )
        main.append(merged)
        return out, main, dev

    def _repository(
        self, r: int, repo: str, staging: list[tuple[bytes, float]], cleanup: list[str]
    ) -> list[Entry]:
        rnd = self.rnd
        uid = _xid(rnd)
        rp = layout.repository_partition(repo, uid).decode()
        out: list[Entry] = [
            _entry(
                layout.GRAVELER_PARTITION,
                layout.repository_key(repo),
                graveler_pb2.RepositoryData(
                    id=repo,
                    storage_namespace=f"s3://bucket-{r}/{repo}",
                    default_branch_id="main",
                    creation_date=_ts(rnd),
                    instance_uid=uid,
                    storage_id="",
                ).SerializeToString(),
            )
        ]
        commits, main, dev = self._commits(rp, 3 + min(40, self.n // 20_000))
        out += commits
        branches = {"main": main[-1], "dev": dev}
        for i in range(rnd.randrange(1, 6)):
            branches[f"feature-{i}"] = rnd.choice(main[:-1])
        for b, head in branches.items():
            token = layout.staging_token(repo, b, _uuid(rnd))
            sealed = [
                layout.staging_token(repo, b, _uuid(rnd))
                for _ in range(rnd.choice([0, 0, 0, 1, 2]))
            ]
            branch = graveler_pb2.BranchData(
                id=b, commit_id=head, staging_token=token, sealed_tokens=sealed
            )
            out.append(_entry(rp, layout.branch_key(b), branch.SerializeToString()))
            for i, tok in enumerate([token, *sealed]):
                staging.append((tok.encode(), 1.0 / (len(staging) + 1) ** 0.8 / (i + 1)))
        for t in range(rnd.randrange(1, 5)):
            # lakeFS v1.86.0 refuses '/' in tag IDs (pkg/graveler/validate.go ValidateTagID)
            tag = f"v{t}.0" if t % 2 else f"release-2024-v{t}~rc{t}"
            data = graveler_pb2.TagData(id=tag, commit_id=rnd.choice(main))
            out.append(_entry(rp, layout.tag_key(tag), data.SerializeToString()))
        meta = graveler_pb2.RepoMetadata()
        if r % 2:
            meta.metadata["owner"] = "data-platform"
        out.append(_entry(rp, layout.REPO_METADATA_KEY, meta.SerializeToString()))
        rules = graveler_pb2.BranchProtectionRules()
        if r % 2:  # otherwise no rules: an empty message, an empty value
            rules.branch_pattern_to_blocked_actions["main"].value.append(
                graveler_pb2.BranchProtectionBlockedAction.STAGING_WRITE
            )
        out.append(_entry(rp, b"settings/protected_branches", rules.SerializeToString()))
        pull_id = _xid(rnd)  # graveler.NewRunID: an xid
        pull = graveler_pb2.PullRequestData(
            id=pull_id,
            status=graveler_pb2.PullRequestStatus.MERGED,
            created_at=_ts(rnd),
            title="Add new partitions",
            author="alice",
            description="",
            source_branch="dev",
            destination_branch="main",
            commit_id=main[-1],
            closed_at=_ts(rnd),
        )
        out.append(_entry(rp, layout.PULLS_PREFIX + pull_id.encode(), pull.SerializeToString()))
        index = kv_pb2.SecondaryIndex(primary_key=pull_id.encode())  # the bare pull ID
        out.append(
            _entry(
                layout.PULLS_INDEX_PARTITION,
                layout.pull_index_key(rp.encode(), "dev", "main"),
                index.SerializeToString(),
            )
        )
        imp = _xid(rnd)
        status = graveler_pb2.ImportStatusData(
            id=imp,
            completed=True,
            updated_at=_ts(rnd),
            progress=1000,
            metarange_id=hashlib.sha256(imp.encode()).hexdigest(),
        )
        out.append(_entry(rp, layout.IMPORTS_PREFIX + imp.encode(), status.SerializeToString()))
        task_id = "DR" + _nanoid(rnd)  # catalog.NewTaskID(DumpRefsTaskIDPrefix)
        dump = catalog_pb2.RepositoryDumpStatus(
            task=catalog_pb2.Task(
                id=task_id,
                done=True,
                updated_at=_ts(rnd),
                operation="dump_refs",
                owner_instance_id=_xid(rnd),
            ),
            info=catalog_pb2.RepositoryDumpInfo(
                commits_metarange_id=hashlib.sha256(rnd.randbytes(8)).hexdigest(),
                tags_metarange_id=hashlib.sha256(rnd.randbytes(8)).hexdigest(),
                branches_metarange_id=hashlib.sha256(rnd.randbytes(8)).hexdigest(),
            ),
        )
        out.append(_entry(rp, layout.TASKS_PREFIX + task_id.encode(), dump.SerializeToString()))
        # A sealed token whose commit finished: queued for cleanup, data still there.
        leftover = f"{repo}-main:{_uuid(rnd)}"
        cleanup.append(leftover)
        staging.append((leftover.encode(), 0.2))
        return out

    def _auth(self) -> list[Entry]:
        """Auth records as the ACL server writes them (``auth``) and as the basic service
        writes its single user (``basicAuth``), plus the installation metadata."""
        rnd = self.rnd
        out: list[Entry] = []
        setup = _ts(rnd)
        setup.nanos = 0
        out.append(_entry(layout.AUTH_PARTITION, "installation_id", _uuid(rnd).encode()))
        for name in ("setup_timestamp", "setup_auth_basic"):
            key = f"installation_metadata/{name}"
            out.append(_entry(layout.AUTH_PARTITION, key, _rfc3339(setup).encode()))
        users = ["admin", "alice", "bob", "etl-bot"]
        for user in users:
            data = auth_pb2.UserData(
                created_at=_ts(rnd),
                username=user,
                friendly_name=user.title(),
                email=f"{user}@example.com",
                encrypted_password=rnd.randbytes(60) if user != "etl-bot" else b"",
                source="internal",
            )
            out.append(_entry(layout.AUTH_PARTITION, f"users/{user}", data.SerializeToString()))
            out.append(self._credential("auth", user))
        policies = {
            "FSFullAccess": ("allow", ["fs:*"], "*"),
            "FSReadAll": ("allow", ["fs:List*", "fs:Read*"], "*"),
            "AuthManageOwnCredentials": (
                "allow",
                ["auth:CreateCredentials", "auth:DeleteCredentials", "auth:ListCredentials"],
                "arn:lakefs:auth:::user/${user}",
            ),
        }
        for name, (effect, actions, resource) in policies.items():
            policy = auth_pb2.PolicyData(created_at=_ts(rnd), display_name=name)
            policy.statements.add(effect=effect, action=actions, resource=resource)
            out.append(
                _entry(layout.AUTH_PARTITION, f"policies/{name}", policy.SerializeToString())
            )
        groups = {"Admins": ["admin"], "Developers": ["alice", "bob"], "Viewers": ["etl-bot"]}
        attached = {"Admins": ["FSFullAccess"], "Developers": ["FSFullAccess"]}
        attached["Viewers"] = ["FSReadAll"]
        for group, members in groups.items():
            group_data = auth_pb2.GroupData(created_at=_ts(rnd), display_name=group)
            out.append(
                _entry(layout.AUTH_PARTITION, f"groups/{group}", group_data.SerializeToString())
            )
            for user in members:  # primary key: model.UserPath(user)
                index = kv_pb2.SecondaryIndex(primary_key=f"users/{user}".encode())
                out.append(
                    _entry(
                        layout.AUTH_PARTITION,
                        f"gUsers/{group}/users/{user}",
                        index.SerializeToString(),
                    )
                )
            for name in attached[group]:  # primary key: model.PolicyPath(policy)
                index = kv_pb2.SecondaryIndex(primary_key=f"policies/{name}".encode())
                out.append(
                    _entry(
                        layout.AUTH_PARTITION,
                        f"gPolicies/{group}/policies/{name}",
                        index.SerializeToString(),
                    )
                )
        index = kv_pb2.SecondaryIndex(primary_key=b"policies/AuthManageOwnCredentials")
        key = "uPolicies/alice/policies/AuthManageOwnCredentials"
        out.append(_entry(layout.AUTH_PARTITION, key, index.SerializeToString()))
        # basicAuth: the one user lives under users/superAdmin, its credentials likewise.
        admin = auth_pb2.UserData(created_at=_ts(rnd), username="admin", source="internal")
        out.append(
            _entry(layout.BASIC_AUTH_PARTITION, "users/superAdmin", admin.SerializeToString())
        )
        out.append(self._credential("basicAuth", "admin", path_user="superAdmin"))
        return out

    def _credential(self, partition: str, user: str, path_user: str | None = None) -> Entry:
        """An access key of ``user`` (model.ProtoFromCredential: ``user_id`` is the user name)."""
        rnd = self.rnd
        key_id = "AKIAJ" + "".join(
            rnd.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(15)
        )
        data = auth_pb2.CredentialData(
            access_key_id=key_id,
            secret_access_key_encrypted_bytes=rnd.randbytes(72),
            issued_date=_ts(rnd),
            user_id=user.encode(),
        )
        key = layout.credential_key(path_user or user, key_id)
        return Entry(partition.encode(), key, data.SerializeToString())

    def _services(self, repos: list[str]) -> list[Entry]:
        """Action runs, an instance heartbeat, an upload, an ownership claim, a usage count."""
        rnd = self.rnd
        out: list[Entry] = []
        for repo in repos:
            for _ in range(2):
                run_id = _xid(rnd)  # graveler.NewRunID
                commit = hashlib.sha256(rnd.randbytes(8)).hexdigest()
                passed = rnd.random() < 0.8
                run = actions_pb2.RunResultData(
                    run_id=run_id,
                    branch_id="main",
                    commit_id=commit,
                    source_ref="main",
                    event_type="pre-commit",
                    start_time=_ts(rnd),
                    end_time=_ts(rnd),
                    passed=passed,
                )
                run_key = layout.actions_run_key(repo, run_id)
                out.append(_entry(layout.ACTIONS_PARTITION, run_key, run.SerializeToString()))
                hook = actions_pb2.TaskResultData(
                    run_id=run_id,
                    hook_run_id="0000_0000",  # actions.NewHookRunID(0, 0)
                    hook_id="check_schema",
                    action_name="Check schema",
                    start_time=_ts(rnd),
                    end_time=_ts(rnd),
                    passed=passed,
                )
                key = layout.actions_task_key(repo, run_id, hook.hook_run_id)
                out.append(_entry(layout.ACTIONS_PARTITION, key, hook.SerializeToString()))
                index = kv_pb2.SecondaryIndex(primary_key=run_key).SerializeToString()
                for kind, ref in (("branches", "main"), ("commits", commit)):
                    index_key = layout.actions_index_key(repo, kind, ref, run_id)
                    out.append(_entry(layout.ACTIONS_PARTITION, index_key, index))
        beat = catalog_pb2.InstanceHeartbeat(updated_at=_ts(rnd))
        out.append(
            _entry(
                layout.CATALOG_PARTITION, layout.instance_key(_xid(rnd)), beat.SerializeToString()
            )
        )
        upload_id = hashlib.sha256(rnd.randbytes(8)).hexdigest()
        upload = multipart_pb2.UploadData(
            upload_id=upload_id,
            path="data/large-file.parquet",
            creation_date=_ts(rnd),
            physical_address=f"data/{_xid(rnd)}",
            content_type="application/x-parquet",
        )
        upload.metadata["x-amz-meta-source"] = "spark"
        out.append(_entry(layout.MULTIPARTS_PARTITION, upload_id, upload.SerializeToString()))
        repo = repos[0]
        claim = mc_owner_pb2.MostlyCorrectOwnership(
            owner=f"{_uuid(rnd)}#{_nanoid(rnd, 21)}", expires=_ts(rnd), comment=""
        )
        owner_key = f"run-refs/approximate-branch-owner/{len(repo)}:{repo}/main"
        out.append(_entry(layout.OWNERSHIP_PARTITION, owner_key, claim.SerializeToString()))
        usage_key = f"usage/monthly/{_uuid(rnd)}/202611"
        usage = str(rnd.randrange(1, 10**6)).encode()
        out.append(_entry(layout.USAGE_PARTITION, usage_key, usage))
        return out

    # --- staged objects ----------------------------------------------------------------------

    def _objects(self, partition: bytes, count: int) -> Iterator[Entry]:
        rnd = self.rnd
        dirs = max(1, count // 200)
        for i in range(count):
            ext = rnd.choice(_EXTS)
            path = f"data/part={i % dirs:05d}/file-{i:08d}{ext}".encode()
            if i % 1999 == 7 or rnd.random() < 0.0003:
                path = b"raw/\xff\xfe-" + path  # not UTF-8: lakeFS paths are bytes
                self.report.non_utf8_keys += 1
            if rnd.random() < 0.03:
                value = graveler_pb2.StagedEntryData(key=path).SerializeToString()  # tombstone
            else:
                size = int(rnd.paretovariate(1.2) * 1024)
                entry = catalog_pb2.Entry(
                    address=f"data/{_uuid(rnd)}",
                    last_modified=_ts(rnd),
                    size=size,
                    e_tag=hashlib.md5(path, usedforsecurity=False).hexdigest(),
                    address_type=catalog_pb2.Entry.AddressType.RELATIVE,
                    content_type=rnd.choice(_CONTENT_TYPES),
                )
                extra = min(60, int(rnd.paretovariate(1.5)) - 1)
                for m in range(extra):
                    entry.metadata[f"x-amz-meta-{m}"] = "v" * rnd.randrange(1, 40)
                value = graveler_pb2.StagedEntryData(
                    key=path, identity=entry_identity(entry), data=entry.SerializeToString()
                ).SerializeToString()
            yield Entry(partition, path, value)

    def entries(self) -> Iterator[Entry]:
        meta, staging = self._meta()
        if len(meta) >= self.n:
            keep = [e for e in meta if e.partition == layout.SCHEMA_PARTITION]
            keep += [e for e in meta if e.partition != layout.SCHEMA_PARTITION][: self.n - 1]
            yield from keep[: self.n]
            return
        yield from meta
        left = self.n - len(meta)
        total = sum(w for _, w in staging)
        counts = [int(left * w / total) for _, w in staging]
        counts[0] += left - sum(counts)
        for (partition, _), count in zip(staging, counts, strict=True):
            if count:
                self.report.staging_partitions += 1
                yield from self._objects(partition, count)


def _write(dst: Store, batch: list[Entry]) -> None:
    _retry.call(lambda: dst.write_batch(batch, OnConflict.OVERWRITE))


def sample(
    target: StoreLike,
    entries: int,
    *,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> SampleReport:
    """Write a lakeFS-shaped database of exactly ``entries`` entries into ``target``.

    Deterministic for a seed. Existing keys are overwritten. Memory does not grow with
    ``entries``.
    """
    if entries < 1:
        raise ValueError("entries must be >= 1")
    started = time.monotonic()
    with opened(target) as dst:
        report = SampleReport(target=url_of(dst), seed=seed)
        tracker = Tracker(progress, "sample")
        partitions: set[bytes] = set()
        it = _Generator(entries, seed, report).entries()
        while batch := list(islice(it, BATCH_ENTRIES)):
            nbytes = 0
            for e in batch:
                nbytes += len(e.key) + len(e.value)
                if not e.value:
                    report.empty_values += 1
                partitions.add(e.partition)
            _write(dst, batch)
            report.entries += len(batch)
            report.bytes += nbytes
            tracker.add(len(batch), nbytes)
        tracker.finish()
        report.partitions = len(partitions)
        report.seconds = time.monotonic() - started
        return report
