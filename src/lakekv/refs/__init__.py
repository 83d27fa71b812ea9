"""Layer 3: lakeFS repositories, branches, tags, commits and staged objects over any Store.

The entry point is :class:`RefStore`, a facade over a :class:`RefManager` (repositories,
branches, tags, commits) and a :class:`StagingManager` (staged entries by staging token).
Results are the frozen dataclasses of :mod:`lakekv.refs.models`; errors live in
:mod:`lakekv.refs.errors` (all under ``RefError``); :mod:`lakekv.refs.ident` computes content
addresses; :mod:`lakekv.refs.orphans` finds orphaned partitions.
"""

from lakekv.refs.errors import (
    BranchExistsError,
    BranchMovedError,
    BranchNotFoundError,
    CommitNotFoundError,
    ConcurrentUpdateError,
    DeleteDefaultBranchError,
    InvalidIDError,
    InvalidRefError,
    RefConflictError,
    RefExistsError,
    RefNotFoundError,
    RefNotResolvedError,
    RepositoryExistsError,
    RepositoryInDeletionError,
    RepositoryNotFoundError,
    StagedObjectNotFoundError,
    TagExistsError,
    TagNotFoundError,
)
from lakekv.refs.manager import RefManager, RepoArg
from lakekv.refs.models import (
    Branch,
    Commit,
    Page,
    Repository,
    RepositoryState,
    StagedEntry,
    Tag,
)
from lakekv.refs.staging import StagingManager
from lakekv.refs.store import FIRST_COMMIT_MESSAGE, BranchUpdate, RefStore
from lakekv.retry import RetryPolicy

__all__ = [
    "FIRST_COMMIT_MESSAGE",
    "Branch",
    "BranchExistsError",
    "BranchMovedError",
    "BranchNotFoundError",
    "BranchUpdate",
    "Commit",
    "CommitNotFoundError",
    "ConcurrentUpdateError",
    "DeleteDefaultBranchError",
    "InvalidIDError",
    "InvalidRefError",
    "Page",
    "RefConflictError",
    "RefExistsError",
    "RefNotFoundError",
    "RefNotResolvedError",
    "RefManager",
    "RefStore",
    "RepoArg",
    "Repository",
    "RepositoryExistsError",
    "RepositoryInDeletionError",
    "RepositoryNotFoundError",
    "RepositoryState",
    "RetryPolicy",
    "StagedEntry",
    "StagedObjectNotFoundError",
    "StagingManager",
    "Tag",
    "TagExistsError",
    "TagNotFoundError",
]
