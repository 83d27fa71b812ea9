"""``lakekv lakefs …``: inspect the lakeFS metadata in any store (read-only).

Each command calls :class:`lakekv.refs.RefStore` (or :mod:`lakekv.refs.orphans`) and prints a
table, or JSON with ``--json``.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from lakekv.cli._common import json_option, print_json, store_option
from lakekv.display import show_text
from lakekv.kv.registry import open_store
from lakekv.refs import RefStore
from lakekv.refs.errors import InvalidRefError
from lakekv.refs.orphans import find_orphans


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(show_text(cell)))

    def line(cells: Sequence[str]) -> str:
        cells = [show_text(c) for c in cells]
        padded = [c.ljust(widths[i]) for i, c in enumerate(cells[:-1])]
        return "  ".join([*padded, cells[-1]]).rstrip()

    click.echo(line(headers))
    for row in rows:
        click.echo(line(row))


def _short(text: str, n: int = 12) -> str:
    return text[:n]


def _listing_options(fn: click.decorators.FC) -> click.decorators.FC:
    fn = click.option("--limit", type=click.IntRange(min=0), default=None, help="At most N.")(fn)
    fn = click.option("--after", default="", help="Only IDs strictly after this one.")(fn)
    return click.option("--prefix", default="", help="Only IDs starting with this.")(fn)


@click.group(name="lakefs")
def lakefs() -> None:
    """Inspect lakeFS repositories, branches, tags, commits and staged objects in a store.

    \b
    Examples:
      lakekv -s postgres://postgres@127.0.0.1/lakefs lakefs repos
      lakekv lakefs branches my-repo --json
      lakekv lakefs log my-repo/main --limit 5
      lakekv lakefs staged my-repo main --prefix data/
      lakekv lakefs orphans
    """


@lakefs.command()
@store_option
@json_option
@_listing_options
def repos(store_url: str, as_json: bool, prefix: str, after: str, limit: int | None) -> int:
    """List repositories in ID order.

    \b
    Example:
      lakekv lakefs repos --prefix prod-
    """
    with open_store(store_url, read_only=True) as store:
        items = list(RefStore(store).list_repositories(prefix=prefix, after=after, limit=limit))
    if as_json:
        print_json([r.to_json() for r in items])
        return 0
    _table(
        ("ID", "DEFAULT BRANCH", "CREATED", "STATE", "STORAGE NAMESPACE"),
        [
            (
                r.id,
                r.default_branch_id,
                r.creation_date.strftime("%Y-%m-%d %H:%M:%S"),
                r.state.value,
                r.storage_namespace,
            )
            for r in items
        ],
    )
    return 0


@lakefs.command()
@store_option
@json_option
@_listing_options
@click.option(
    "--show-hidden", is_flag=True, help="Also list hidden branches (lakeFS leaves them out)."
)
@click.argument("repo")
def branches(
    store_url: str,
    as_json: bool,
    prefix: str,
    after: str,
    limit: int | None,
    show_hidden: bool,
    repo: str,
) -> int:
    """List the branches of REPO with their commit and staging tokens, as lakeFS lists them.

    \b
    Example:
      lakekv lakefs branches my-repo
    """
    with open_store(store_url, read_only=True) as store:
        items = list(
            RefStore(store).list_branches(
                repo, prefix=prefix, after=after, limit=limit, show_hidden=show_hidden
            )
        )
    if as_json:
        print_json([b.to_json() for b in items])
        return 0
    _table(
        ("BRANCH", "COMMIT", "SEALED", "STAGING TOKEN"),
        [(b.id, _short(b.commit_id), str(len(b.sealed_tokens)), b.staging_token) for b in items],
    )
    return 0


@lakefs.command()
@store_option
@json_option
@_listing_options
@click.argument("repo")
def tags(
    store_url: str, as_json: bool, prefix: str, after: str, limit: int | None, repo: str
) -> int:
    """List the tags of REPO.

    \b
    Example:
      lakekv lakefs tags my-repo --prefix v1.
    """
    with open_store(store_url, read_only=True) as store:
        items = list(RefStore(store).list_tags(repo, prefix=prefix, after=after, limit=limit))
    if as_json:
        print_json([t.to_json() for t in items])
        return 0
    _table(("TAG", "COMMIT"), [(t.id, t.commit_id) for t in items])
    return 0


def _split_ref(ref: str, second: str | None) -> tuple[str, str]:
    if second is not None:
        return ref, second
    text = ref.removeprefix("lakefs://")
    repo, sep, name = text.partition("/")
    if not sep or not repo or not name:
        raise InvalidRefError(f"expected REPO/REF or lakefs://REPO/REF, not {ref!r}")
    return repo, name


@lakefs.command()
@store_option
@json_option
@click.option("--limit", type=click.IntRange(min=0), default=None, help="At most N commits.")
@click.option("--after", default="", help="Only the commits listed after this one (the next page).")
@click.argument("ref")
@click.argument("name", required=False)
def log(
    store_url: str, as_json: bool, limit: int | None, after: str, ref: str, name: str | None
) -> int:
    """Show the history of REF (REPO/REF, lakefs://REPO/REF, or REPO REF) in lakeFS's order.

    REF is a branch, a tag or a commit ID. With --after C, the listing goes on after commit C,
    as lakeFS's log pages.

    \b
    Examples:
      lakekv lakefs log my-repo/main
      lakekv lakefs log lakefs://my-repo/v1.0 --json
      lakekv lakefs log my-repo 3f2a… --limit 1
    """
    repo, name_ = _split_ref(ref, name)
    with open_store(store_url, read_only=True) as store:
        items = list(RefStore(store).log(repo, name_, limit=limit, after=after))
    if as_json:
        print_json([c.to_json() for c in items])
        return 0
    _table(
        ("COMMIT", "GEN", "DATE", "COMMITTER", "MESSAGE"),
        [
            (
                _short(c.id),
                str(c.generation),
                c.creation_date.strftime("%Y-%m-%d %H:%M:%S"),
                c.committer,
                c.message.splitlines()[0] if c.message else "",
            )
            for c in items
        ],
    )
    return 0


@lakefs.command()
@store_option
@json_option
@click.option("--prefix", default="", help="Only object keys starting with this.")
@click.option("--after", default="", help="Only object keys strictly after this one.")
@click.option("--limit", type=click.IntRange(min=0), default=None, help="At most N entries.")
@click.option(
    "--tombstones/--no-tombstones", default=True, show_default=True, help="Show staged deletes."
)
@click.argument("repo")
@click.argument("branch")
def staged(
    store_url: str,
    as_json: bool,
    prefix: str,
    after: str,
    limit: int | None,
    tombstones: bool,
    repo: str,
    branch: str,
) -> int:
    """List the objects staged on BRANCH of REPO (staging token, then sealed tokens).

    \b
    Example:
      lakekv lakefs staged my-repo main --prefix data/ --no-tombstones
    """
    rows: list[dict[str, object]] = []
    with open_store(store_url, read_only=True) as store:
        entries = RefStore(store).list_staged(
            repo,
            branch,
            prefix=prefix.encode(),
            after=after.encode(),
            include_tombstones=tombstones,
        )
        for entry in entries:
            if limit is not None and len(rows) >= limit:
                break
            row = entry.to_json()
            catalog = entry.catalog_entry() if not entry.is_tombstone else None
            if catalog is not None:
                row["address"] = catalog.address
                row["size"] = catalog.size
                row["e_tag"] = catalog.e_tag
            rows.append(row)
    if as_json:
        print_json(rows)
        return 0
    _table(
        ("KEY", "STATE", "SIZE", "ADDRESS"),
        [
            (
                str(r["key"]),
                "deleted" if r["tombstone"] else "staged",
                str(r.get("size", "")),
                str(r.get("address", "")),
            )
            for r in rows
        ],
    )
    return 0


@lakefs.command()
@store_option
@json_option
def orphans(store_url: str, as_json: bool) -> int:
    """List partitions no repository reaches (e.g. staging tokens left by deletions).

    Needs a store that can list its partitions.

    \b
    Example:
      lakekv -s postgres://postgres@127.0.0.1/lakefs lakefs orphans --json
    """
    with open_store(store_url, read_only=True) as store:
        items = find_orphans(store)
    if as_json:
        print_json([o.to_json() for o in items])
        return 0
    _table(
        ("PARTITION", "KIND", "ENTRIES", "QUEUED", "OWNER"),
        [
            (
                o.partition.decode("utf-8", errors="backslashreplace"),
                o.kind.value,
                str(o.entries),
                "yes" if o.queued_for_cleanup else "no",
                o.owner or "",
            )
            for o in items
        ],
    )
    return 0
