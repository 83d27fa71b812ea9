"""The one optimistic-update loop of the ref store: read → compute → ``set_if`` → retry.

lakeFS updates branches (and staged entries, and a repository's state) without locks: read the
record with its predicate, compute the new record, write it with ``set_if(predicate)``; when a
concurrent writer got there first, back off and start again from a fresh read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from lakekv.errors import PredicateFailedError
from lakekv.refs.errors import ConcurrentUpdateError
from lakekv.retry import RetryPolicy

T = TypeVar("T")


class LostRaceError(Exception):
    """Raised by an attempt that found its read outdated for another reason than a failed
    predicate (e.g. a commit replaced the staging token it wrote to): try again."""


def optimistic_update(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    what: Callable[[], str],
) -> T:
    """Run ``attempt`` until it returns, backing off between tries.

    ``attempt`` reads, computes and writes with ``set_if`` and returns the result; it raises
    PredicateFailedError (from ``set_if``) or :class:`LostRaceError` when a concurrent writer won.
    After ``policy.max_tries`` lost races, ConcurrentUpdateError names ``what()``, chained to
    the last lost race. Anything else ``attempt`` raises propagates at once.
    """
    state = policy.attempts(sleep)
    while True:
        try:
            return attempt()
        except (PredicateFailedError, LostRaceError) as exc:
            if not state.backoff():
                message = f"{what()}: update lost to concurrent writers {policy.max_tries} times"
                raise ConcurrentUpdateError(message) from exc
