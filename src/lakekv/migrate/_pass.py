"""The one shape of a migration pass, shared by ``copy``, ``load``, ``sync`` and ``verify``.

:meth:`Pass.run` is the only place that orders a pass; each command fills in the steps:

1. ``open``      both sides, on the pass's exit stack: a source opened read-only and existing,
                 one store on both sides refused (``SameStoreError``).
2. ``versions``  lakeFS's schema versions read and checked. This comes before anything that a
                 refusal would have to undo (a change feed, a checkpoint), so every refusal
                 leaves the stores as they were.
3. ``prepare``   what must come before the snapshot: a pair's lock, a checkpoint, a change
                 feed started (``copy --track-changes``) or read (``sync``). Default: nothing.
4. ``snapshot``  the side(s) read seen at one point in time, when their driver can.
5. ``plan``      the partitions to visit (``None``: a streamed input names them as it goes),
                 and the report the pass fills.
6. ``move``      every partition but ``kv-internal-metadata``.
7. schema last   ``kv-internal-metadata`` (lakeFS's schema version) after all the rest, and
                 not at all after conflicts: a target that holds the version looks complete to
                 lakeFS (:meth:`Pass._schema_last`, the rule written once).
8. ``finish``    what the pass records or ends: a checkpoint, a change feed, the pair's record.

A failure in steps 4-5 calls :meth:`Pass.abandon` (undo what ``prepare`` started) before
it propagates; the exit stack closes both sides whatever happens.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from typing import Generic, Protocol, TypeVar

from lakekv.migrate.partitions import SCHEMA_PARTITION, schema_last


class PassReport(Protocol):
    """What every pass's report has (see :mod:`lakekv.migrate.reports`)."""

    seconds: float
    warnings: list[str]


R = TypeVar("R", bound=PassReport)

SCHEMA_ALREADY_THERE = (
    "the target held lakeFS's schema version before this pass, so lakeFS would take it for "
    "complete although it differs from the source (the conflicts); resolve them before "
    "starting lakeFS on it"
)
"""The warning of a pass that met conflicts on a target that already held a schema version:
there is nothing to withhold."""


class Pass(ABC, Generic[R]):
    """One migration pass; :meth:`run` runs the steps of the module docstring in order.

    A subclass implements ``open``, ``plan`` and ``move`` and whichever other step it needs;
    state passes between steps as attributes. ``report`` is set by ``plan``;
    ``target_version`` (the target's schema version before the pass) by ``versions``.
    """

    stack: contextlib.ExitStack
    report: R
    target_version: str | None = None
    schema_pending: bool = False
    """``kv-internal-metadata`` is still to move: it was in the plan, or (a streamed pass)
    ``move`` met it and held it back."""
    started: float = 0.0

    def run(self) -> R:
        """Run the pass; the report, with the wall-clock time it took."""
        self.started = time.monotonic()
        with contextlib.ExitStack() as stack:
            self.stack = stack
            self.open()
            self.versions()
            self.prepare()
            try:
                self.snapshot()
                partitions = self.plan()
            except BaseException:
                self.abandon()
                raise
            main: list[bytes] = []
            if partitions is not None:
                main, self.schema_pending = schema_last(partitions)
            self.move(main)
            if self.schema_pending:
                self._schema_last()
            self.finish()
            self.report.seconds = time.monotonic() - self.started
            return self.report

    def _schema_last(self) -> None:
        """``kv-internal-metadata`` last: moved when the pass met no conflicts; else withheld,
        or, when the target held a version before, left there with a warning."""
        if not self.conflicts():
            self.move_schema()
        elif self.target_version is not None:
            self.report.warnings.append(SCHEMA_ALREADY_THERE)
        else:
            self.withhold_schema()

    # --- the steps ---------------------------------------------------------------------

    @abstractmethod
    def open(self) -> None:
        """Open both sides on ``stack`` and refuse one store on both."""

    def versions(self) -> None:
        """Read and check lakeFS's schema versions (refusals here leave no trace)."""

    def prepare(self) -> None:
        """What must precede the snapshot."""

    def snapshot(self) -> None:
        """See the side(s) read at one point in time."""

    @abstractmethod
    def plan(self) -> list[bytes] | None:
        """The partitions to visit (``None``: streamed); sets ``report``."""

    @abstractmethod
    def move(self, partitions: list[bytes]) -> None:
        """Visit ``partitions`` (never ``kv-internal-metadata``)."""

    def move_schema(self) -> None:
        """Visit ``kv-internal-metadata``, once everything else is done."""
        self.move([SCHEMA_PARTITION])

    def conflicts(self) -> int:
        """Conflicts met so far (entries left unlike the source): the schema partition is then
        not moved. A pass that overwrites or only reads has none."""
        return 0

    def withhold_schema(self) -> None:
        """Record that the schema partition was withheld (only a pass that can meet
        conflicts gets here)."""
        raise AssertionError(f"{type(self).__name__} met conflicts but cannot withhold")

    def abandon(self) -> None:
        """Undo what ``prepare`` started, after a failure before ``move``."""

    def finish(self) -> None:
        """End the pass: record, release, warn."""
