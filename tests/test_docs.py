"""The prose docs name only files and ``lakekv.…`` objects that exist in the tree.

Every code span of the checked documents that looks like a path (``src/lakekv/kv/url.py``,
``migrate/_io.py``, ``postgres/``, ``sqlite.py``) must name an existing file or directory,
every relative Markdown link must resolve, and every dotted ``lakekv.…`` name must import
(a module, or an attribute of one). A rename or a deletion that leaves a document behind
fails here.
"""

from __future__ import annotations

import importlib
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "lakekv"
DOCS = ["docs/architecture.md", "docs/writing-a-driver.md", "README.md", "CONTRIBUTING.md"]
SEARCHED = ["src", "tests", "examples", "scripts", "bench", "docs", ".ci"]
"""Where a bare file name (``sqlite.py``) may live."""

EXTENSIONS = (".py", ".md", ".proto", ".toml", ".yaml", ".yml", ".sh", ".cfg", ".lock", ".in")
NOT_PATHS = {"old.yaml", "new.yaml", "lakefs.yaml", "config.yaml"}
"""File names that documents use as examples of the user's own files."""
NOT_OBJECTS = {"lakekv.drivers", "lakekv.db", "lakekv.copy"}
"""Dotted names that are not Python objects: an entry-point group, a file name, a trace
span's name."""

_CODE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
_PATHLIKE = re.compile(r"[\w.][\w./-]*")
_DOTTED = re.compile(r"\blakekv(?:\.[A-Za-z_]\w*)+")


def _spans(text: str) -> list[str]:
    # Code blocks are examples of use, not references: only inline code spans count.
    return _CODE.findall(re.sub(r"```.*?```", "", text, flags=re.DOTALL))


@cache
def _names_in_tree() -> frozenset[str]:
    names: set[str] = set()
    for top in SEARCHED:
        for path in (ROOT / top).rglob("*"):
            if ".venv" not in path.parts and "__pycache__" not in path.parts:
                names.add(path.name + ("/" if path.is_dir() else ""))
    return frozenset(names)


def _path_exists(token: str, doc: Path) -> bool:
    examples = [p for p in (ROOT / "examples").iterdir() if p.is_dir()]
    for base in (ROOT, PACKAGE, doc.parent, *examples):
        if (base / token).exists():
            return True
    if "/" not in token.rstrip("/"):
        return token in _names_in_tree()
    # A path inside a layer or a driver package (``postgres/store.py``, ``record/proto/``).
    return any(p.is_relative_to(PACKAGE) for p in PACKAGE.rglob(token.rstrip("/")))


def _is_path(token: str) -> bool:
    if "://" in token or token.startswith(("-", "http")) or token in NOT_PATHS:
        return False
    if not _PATHLIKE.fullmatch(token) or (token.startswith(".") and token.count(".") == 1):
        return False  # not a path, or an extension (``.proto``)
    return token.endswith(EXTENSIONS) or (token.endswith("/") and len(token) > 1)


def _object_exists(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


@pytest.mark.parametrize("doc", DOCS)
def test_named_files_exist(doc: str) -> None:
    path = ROOT / doc
    text = path.read_text()
    missing = sorted(
        {t for t in _spans(text) if _is_path(t) and not _path_exists(t, path)}
        | {
            link
            for link in _LINK.findall(text)
            if "://" not in link
            and not link.startswith("mailto:")
            and not (path.parent / link).exists()
        }
    )
    assert missing == [], f"{doc} names files that do not exist"


@pytest.mark.parametrize("doc", DOCS)
def test_named_lakekv_objects_exist(doc: str) -> None:
    text = (ROOT / doc).read_text()
    names = {m for span in _spans(text) for m in _DOTTED.findall(span)} - NOT_OBJECTS
    missing = sorted(n for n in names if not _object_exists(n))
    assert missing == [], f"{doc} names lakekv objects that do not exist"


def test_the_checks_catch_what_they_should() -> None:
    doc = ROOT / "docs" / "architecture.md"
    assert _is_path("kv/drivers/lmdb.py") and not _path_exists("kv/drivers/lmdb.py", doc)
    assert _path_exists("kv/drivers/lmdb/store.py", doc) and _path_exists("postgres/", doc)
    assert _path_exists("sqlite.py", doc) and not _path_exists("nosuch.py", doc)
    assert not _is_path("sqlite:///kv.db") and not _is_path("lakekv get p k")
    assert _object_exists("lakekv.kv.store.Store") and _object_exists("lakekv.migrate")
    assert not _object_exists("lakekv.kv.store.NoSuchThing")


def test_readme_exit_codes_are_the_cli_s() -> None:
    """The README's exit-code table lists exactly the codes ``cli/_common.py`` defines, in
    the same order of meaning (one table, kept in step with the one set of constants)."""
    from lakekv.cli import _common  # noqa: PLC0415

    text = (ROOT / "README.md").read_text()
    table = re.search(r"\| code \| meaning \|\n\|---\|---\|\n((?:\|.*\|\n)+)", text)
    assert table is not None
    rows = re.findall(r"^\| ([\d /]+) \| ([^|]+) \|$", table.group(1), flags=re.MULTILINE)
    codes = [int(code) for code, _ in rows if "/" not in code]
    constants = {v: k for k, v in vars(_common).items() if k.startswith("EXIT_")}
    assert codes == sorted(constants), (codes, constants)
    meanings = {
        "EXIT_OK": "success",
        "EXIT_NOT_FOUND": "not found",
        "EXIT_USAGE": "usage",
        "EXIT_UNAVAILABLE": "unavailable",
        "EXIT_CONFLICT": "conflict",
        "EXIT_CORRUPT": "corrupt",
        "EXIT_ERROR": "other error",
    }
    for code, meaning in rows:
        if "/" not in code:
            assert meanings[constants[int(code)]] in meaning, (code, meaning)
