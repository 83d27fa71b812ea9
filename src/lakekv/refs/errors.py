"""Errors of the ref store, under :class:`~lakekv.errors.RefError`.

Each class combines the layer (``RefError``) with a kind a caller can act on::

    RefError
    ├── RefNotFoundError [NotFound] ........... exit 1
    │   ├── RepositoryNotFoundError
    │   ├── BranchNotFoundError
    │   ├── TagNotFoundError
    │   ├── CommitNotFoundError
    │   ├── RefNotResolvedError ............... a name that is no branch, tag or commit
    │   └── StagedObjectNotFoundError
    ├── RefExistsError [AlreadyExists] ........ exit 4
    │   ├── RepositoryExistsError
    │   ├── BranchExistsError
    │   └── TagExistsError
    ├── RefConflictError [Conflict] ........... exit 4
    │   ├── ConcurrentUpdateError ............. optimistic retries exhausted
    │   ├── BranchMovedError .................. the branch moved under a commit
    │   └── RepositoryInDeletionError ......... the repository is being deleted
    └── InvalidRefError [InvalidArgument] ..... exit 2
        ├── InvalidIDError .................... an ID breaks lakeFS's naming rules
        └── DeleteDefaultBranchError

Store errors are translated where the ref store meets the store (``raise … from exc``): a
predicate-failed create becomes ``…ExistsError``, a missing key ``…NotFoundError``, a predicate
failure that outlasts the retry budget ``ConcurrentUpdateError``. Unavailable stores
(``StoreUnavailableError``) and corrupt records (``DecodeError``) pass through unchanged.
"""

from __future__ import annotations

from lakekv.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    RefError,
)


class RefNotFoundError(RefError, NotFoundError):
    """A repository, branch, tag, commit or staged object does not exist."""


class RepositoryNotFoundError(RefNotFoundError):
    """No repository with that ID."""


class BranchNotFoundError(RefNotFoundError):
    """No branch with that ID in the repository."""


class TagNotFoundError(RefNotFoundError):
    """No tag with that ID in the repository."""


class CommitNotFoundError(RefNotFoundError):
    """No commit with that ID in the repository."""


class RefNotResolvedError(RefNotFoundError):
    """The name is not a branch, a tag or a commit ID of the repository."""


class StagedObjectNotFoundError(RefNotFoundError):
    """The key is not staged on the branch (neither in its staging token nor a sealed one)."""


class RefExistsError(RefError, AlreadyExistsError):
    """A create-only write found the record already there."""


class RepositoryExistsError(RefExistsError):
    """A repository with that ID already exists."""


class BranchExistsError(RefExistsError):
    """A branch with that ID already exists in the repository."""


class TagExistsError(RefExistsError):
    """A tag with that ID already exists in the repository."""


class RefConflictError(RefError, ConflictError):
    """A concurrent change won; re-read and decide again."""


class ConcurrentUpdateError(RefConflictError):
    """An optimistic update kept losing to concurrent writers until its retry budget ran out."""


class BranchMovedError(RefConflictError):
    """The branch's commit changed while a commit was being made on it."""


class RepositoryInDeletionError(RefConflictError):
    """The repository is being deleted; only the deletion may continue."""


class InvalidRefError(RefError, InvalidArgumentError):
    """An argument of a ref-store call is invalid (checked before any write)."""


class InvalidIDError(InvalidRefError):
    """An identifier does not follow lakeFS's rules for its kind."""


class DeleteDefaultBranchError(InvalidRefError):
    """The repository's default branch cannot be deleted."""
