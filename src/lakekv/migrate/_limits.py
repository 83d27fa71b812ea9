"""A target's size limits, checked entry by entry before (or while) writing into it.

``load`` compares every entry of a dump with the limits the target's driver declares
(:class:`~lakekv.kv.store.Capabilities`) during its pre-check, so an entry the target cannot
hold stops the load before anything is written. ``copy``, which cannot read ahead, names the
entry and says how much it had written.
"""

from __future__ import annotations

from dataclasses import dataclass

from lakekv.display import show_bytes
from lakekv.errors import InvalidArgumentError, MigrationError
from lakekv.kv.registry import driver_class
from lakekv.kv.store import Capabilities, Entry, Store
from lakekv.kv.url import StoreURL
from lakekv.migrate.lakefs_config import LakeFSDatabase


class TargetLimitError(MigrationError, InvalidArgumentError):
    """An entry is larger than the target store can hold (exit 2); the message names it."""


@dataclass(frozen=True)
class Limits:
    """The size limits of one store kind; ``None`` for no limit."""

    scheme: str
    partition: int | None = None
    key: int | None = None
    value: int | None = None
    item: int | None = None

    @classmethod
    def of(cls, store: Store | StoreURL | str | LakeFSDatabase) -> Limits:
        """The limits of ``store``, or of the driver a URL names (without opening it)."""
        if isinstance(store, LakeFSDatabase):
            store = store.url
        if isinstance(store, Store):
            scheme, caps = store.scheme, store.capabilities
        else:
            url = store if isinstance(store, StoreURL) else StoreURL.parse(store)
            scheme, caps = url.scheme, driver_class(url.scheme).capabilities
        return cls.from_capabilities(scheme, caps)

    @classmethod
    def from_capabilities(cls, scheme: str, caps: Capabilities) -> Limits:
        return cls(
            scheme,
            caps.max_partition_size,
            caps.max_key_size,
            caps.max_value_size,
            caps.max_item_size,
        )

    @property
    def unlimited(self) -> bool:
        return self.partition is self.key is self.value is self.item is None

    def problem(self, e: Entry) -> str | None:
        """Why ``e`` does not fit, or ``None`` when it does."""
        p, k, v = len(e.partition), len(e.key), len(e.value)
        where = f"{self.scheme}:// allows at most"
        if self.partition is not None and p > self.partition:
            return f"the partition name is {p} bytes; {where} {self.partition}"
        if self.key is not None and k > self.key:
            return f"the key is {k} bytes; {where} {self.key}"
        if self.value is not None and v > self.value:
            return f"the value is {v} bytes; {where} {self.value}"
        if self.item is not None and p + k + v > self.item:
            return f"partition + key + value is {p + k + v} bytes; {where} {self.item}"
        return None

    def refusal(self, e: Entry) -> str | None:
        """The sentence naming ``e`` and why the target cannot hold it, or ``None``."""
        why = self.problem(e)
        if why is None:
            return None
        return (
            f"partition '{show_bytes(e.partition)}' key '{show_bytes(e.key)}' cannot be stored "
            f"in the target: {why}"
        )

    def check(self, e: Entry, source: str) -> None:
        """Raise TargetLimitError naming ``e`` (found in ``source``) if it does not fit."""
        refusal = self.refusal(e)
        if refusal is not None:
            raise TargetLimitError(f"{source}: {refusal}")
