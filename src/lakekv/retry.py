"""One retry policy for the whole package: exponential backoff with jitter, bounded by attempts
and, optionally, by time.

Used by the DynamoDB driver (throttling, 5xx, dropped connections), the migration tool
(transient :class:`~lakekv.errors.RetryableError` of any store) and the ref store (optimistic
updates that lost a compare-and-set). Each user picks its own numbers; the formula is this one:

* before retry *n* (1-based) the nominal interval is
  ``min(max_interval, initial_interval × multiplier^(n-1))``;
* the sleep is uniform in ``[interval × (1 - jitter), interval]`` — ``jitter=1`` is "full
  jitter" (anything from 0 to the interval), ``jitter=0`` no randomness;
* at most ``max_tries`` attempts in all (the first included), and, when ``budget`` is set, no
  sleep that would end more than ``budget`` seconds after the first attempt.

Example::

    policy = RetryPolicy(max_tries=6, initial_interval=0.1, max_interval=2.0)
    value = policy.call(lambda: store.get(b"p", b"k"))   # retries RetryableError
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from lakekv.errors import InvalidArgumentError, RetryableError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; see the module docstring for the formula.

    The defaults are lakeFS's for optimistic branch updates (10 tries, intervals from 2 ms,
    capped at 5 s). InvalidArgumentError for values that make no sense.
    """

    max_tries: int = 10
    """Attempts in all, the first included; ``1`` disables retries."""
    initial_interval: float = 0.002
    max_interval: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.5
    """Random fraction of the interval: the sleep is in ``[interval·(1-jitter), interval]``."""
    budget: float | None = None
    """Seconds from the first attempt past which no retry starts (``None``: no time bound)."""

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise InvalidArgumentError("RetryPolicy.max_tries must be >= 1")
        if self.initial_interval < 0 or self.max_interval < 0:
            raise InvalidArgumentError("RetryPolicy intervals must be >= 0")
        if self.multiplier < 1:
            raise InvalidArgumentError("RetryPolicy.multiplier must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise InvalidArgumentError("RetryPolicy.jitter must be within [0, 1]")
        if self.budget is not None and self.budget < 0:
            raise InvalidArgumentError("RetryPolicy.budget must be >= 0")

    def interval(self, retry: int) -> float:
        """The nominal interval before retry ``retry`` (1-based)."""
        exponent = min(max(retry - 1, 0), 64)
        return min(self.max_interval, self.initial_interval * self.multiplier**exponent)

    def delay(self, retry: int) -> float:
        """A random sleep before retry ``retry`` (1-based), per the formula."""
        interval = self.interval(retry)
        return interval * (1.0 - self.jitter * random.random())

    def delays(self) -> Iterator[float]:
        """The ``max_tries - 1`` sleeps between attempts (the time budget is not applied)."""
        for retry in range(1, self.max_tries):
            yield self.delay(retry)

    def attempts(self, sleep: Callable[[float], None] = time.sleep) -> Attempts:
        """A fresh retry state for one logical operation under this policy."""
        return Attempts(self, sleep)

    def call(
        self,
        fn: Callable[[], T],
        *,
        retry_on: tuple[type[BaseException], ...] = (RetryableError,),
        on_retry: Callable[[BaseException], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> T:
        """``fn()``, called again after an exception of ``retry_on`` while the policy allows;
        then the last exception propagates. ``on_retry(exc)`` runs before each sleep."""
        state = self.attempts(sleep)
        while True:
            try:
                return fn()
            except retry_on as exc:
                if not state.backoff():
                    raise
                if on_retry is not None:
                    on_retry(exc)


class Attempts:
    """The retry state of one logical operation: retries so far and since when.

    :meth:`backoff` sleeps before the next attempt, or returns ``False`` (without sleeping)
    when the policy's attempts or time budget would be exceeded; :meth:`progress` starts the
    count afresh after the operation got somewhere (for multi-round requests).
    """

    __slots__ = ("_sleep", "policy", "retries", "started")

    def __init__(self, policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep) -> None:
        self.policy = policy
        self._sleep = sleep
        self.retries = 0
        self.started = time.monotonic()

    def progress(self) -> None:
        """Something was processed: the next stall gets the full budget again."""
        self.retries = 0
        self.started = time.monotonic()

    def backoff(self) -> bool:
        """Sleep before the next attempt; ``False`` (no sleep) when tries or time ran out."""
        self.retries += 1
        if self.retries >= self.policy.max_tries:
            return False
        pause = self.policy.delay(self.retries)
        budget = self.policy.budget
        if budget is not None and time.monotonic() + pause - self.started > budget:
            return False
        self._sleep(pause)
        return True

    @property
    def elapsed(self) -> float:
        """Seconds since the first attempt (or the last :meth:`progress`)."""
        return time.monotonic() - self.started
