"""Merge-join of two ordered entry streams (one partition from each side), constant memory."""

from __future__ import annotations

from collections.abc import Iterator

from lakekv.kv.store import Entry


def merge_join(
    a: Iterator[Entry], b: Iterator[Entry]
) -> Iterator[tuple[Entry | None, Entry | None]]:
    """Pairs by key from two ascending streams: ``(x, y)`` same key, ``(x, None)`` only in
    ``a``, ``(None, y)`` only in ``b``, in ascending key order."""
    x = next(a, None)
    y = next(b, None)
    while x is not None and y is not None:
        xk = x.key
        yk = y.key
        if xk == yk:
            yield x, y
            x = next(a, None)
            y = next(b, None)
        elif xk < yk:
            yield x, None
            x = next(a, None)
        else:
            yield None, y
            y = next(b, None)
    while x is not None:
        yield x, None
        x = next(a, None)
    while y is not None:
        yield None, y
        y = next(b, None)
