"""Identifier rules (lakeFS's) and generators for instance UIDs and staging tokens.

Validation happens before any write: a call with an invalid ID raises
:class:`~lakekv.refs.errors.InvalidIDError` and touches nothing.

* repository ``^[a-z0-9][a-z0-9-]{2,62}$``
* branch ``^\\w[-\\w]*$`` (ASCII word characters, as Go's ``\\w``)
* tag: git ref-name rules (may contain ``/``): not empty, not ``@``; no ``..``, ``//``, ``@{``,
  no ``^ : ? * [ \\``, no space or control character; no component starting with ``.``; must not
  end with ``/``, ``.`` or ``.lock``
* commit: non-empty, printable, no ``/`` (commit IDs are hex SHA-256 addresses)
"""

from __future__ import annotations

import base64
import os
import re
import struct
import threading
import time
import uuid
from typing import Final

from lakekv.record import layout
from lakekv.refs.errors import InvalidIDError

_REPO_RE: Final = re.compile(rf"^{layout.REPOSITORY_ID_PATTERN}$", re.ASCII)
_BRANCH_RE: Final = re.compile(rf"^{layout.BRANCH_ID_PATTERN}$", re.ASCII)
_TAG_FORBIDDEN: Final = re.compile(r"[\x00-\x20^:?*\[\\]")


def _require_str(kind: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidIDError(f"{kind} ID must be a str, not {type(value).__name__}")
    if not value:
        raise InvalidIDError(f"{kind} ID is empty")
    return value


def validate_repository_id(value: object) -> str:
    """``value`` if it is a valid repository ID, else InvalidIDError."""
    s = _require_str("repository", value)
    if not _REPO_RE.fullmatch(s):
        raise InvalidIDError(
            f"invalid repository ID {s!r}: 3-63 characters of a-z, 0-9 and '-', "
            "starting with a letter or digit"
        )
    return s


def validate_branch_id(value: object) -> str:
    """``value`` if it is a valid branch ID, else InvalidIDError."""
    s = _require_str("branch", value)
    if not _BRANCH_RE.fullmatch(s):
        raise InvalidIDError(
            f"invalid branch ID {s!r}: letters, digits, '_' and '-', not starting with '-'"
        )
    return s


def validate_tag_id(value: object) -> str:
    """``value`` if it is a valid tag ID, else InvalidIDError.

    lakeFS's rules (``pkg/graveler/validate.go`` ``ValidateTagID``, v1.86.0), git's ref-name
    rules made stricter: not ``@`` alone; not ending in ``.`` or ``.lock``; no ``..``, ``/`` or
    ``@{``; none of ``^ : ? * [ \\``; no space or control character up to U+0020 (``~`` and
    DEL are allowed, as in lakeFS).
    """
    s = _require_str("tag", value)
    problem: str | None = None
    if s == "@":
        problem = "'@' alone is not a tag"
    elif s.endswith((".", ".lock")):
        problem = "ends with '.' or '.lock'"
    elif "/" in s or ".." in s or "@{" in s:
        problem = "contains '/', '..' or '@{'"
    elif _TAG_FORBIDDEN.search(s):
        problem = "contains a space, control character or one of ^ : ? * [ \\"
    if problem is not None:
        raise InvalidIDError(f"invalid tag ID {s!r}: {problem}")
    return s


def validate_commit_id(value: object) -> str:
    """``value`` if it can name a commit (non-empty, printable, no ``/``), else InvalidIDError."""
    s = _require_str("commit", value)
    if "/" in s or not s.isprintable() or any(c.isspace() for c in s):
        raise InvalidIDError(f"invalid commit ID {s!r}")
    return s


def validate_ref(value: object) -> str:
    """A name that may be a branch, tag or commit: non-empty and printable."""
    s = _require_str("ref", value)
    if not s.isprintable():
        raise InvalidIDError(f"invalid ref {s!r}")
    return s


# --- instance UIDs (xid) ----------------------------------------------------------------------

_xid_lock = threading.Lock()
_xid_counter = int.from_bytes(os.urandom(3), "big")
_xid_machine = os.urandom(3)


def new_instance_uid() -> str:
    """A fresh 20-character lowercase base32hex xid: 4-byte big-endian Unix time, 3-byte
    machine ID, 2-byte process ID, 3-byte counter (the format lakeFS uses)."""
    global _xid_counter
    with _xid_lock:
        _xid_counter = (_xid_counter + 1) & 0xFFFFFF
        counter = _xid_counter
    raw = (
        struct.pack(">I", int(time.time()) & 0xFFFFFFFF)
        + _xid_machine
        + struct.pack(">H", os.getpid() & 0xFFFF)
        + counter.to_bytes(3, "big")
    )
    return base64.b32hexencode(raw).decode("ascii").lower().rstrip("=")


def new_staging_token(repository_id: str, branch_id: str) -> str:
    """``<repoID>-<branchID>:<uuid4>``: the name of a fresh staging partition."""
    return layout.staging_token(repository_id, branch_id, str(uuid.uuid4()))
