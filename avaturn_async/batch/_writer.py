"""Async access to the journal: blocking SQLite calls run in a worker thread.

One connection, used by one thread at a time: every call goes through one
:class:`~._batcher.ThreadBatcher`, which also runs the calls that concurrent
tasks make at about the same time in one thread hop and one transaction
(group commit). That keeps the journal's cost per row small when many rows are
in flight, while every write is still committed before the task that made it
goes on to the remote call it records.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ._batcher import Call, ThreadBatcher
from ._journal import Journal, RowState

__all__ = ["JournalWriter"]

T = TypeVar("T")

GATHER = 0.001
"""Seconds a journal commit that could start at once waits for more writes."""


def _commit(journal: Journal, batch: list[Call[Any]]) -> None:
    """Run ``batch`` in one transaction; if that fails, each call in its own, so one
    bad write cannot take the others down with it."""
    try:
        with journal.transaction():
            for call in batch:
                call.result = call.fn()
                call.ran = True
    except Exception:
        for call in batch:
            call.ran = False
            try:
                with journal.transaction():
                    call.run()
            except Exception as exc:  # the commit itself failed
                call.error = exc
                call.ran = True


class JournalWriter:
    """The journal of one run, for async code (see the module docstring)."""

    def __init__(self, journal: Journal, run_id: int) -> None:
        self.journal = journal
        self.run_id = run_id
        # A millisecond's wait for company turns several commits (thread hops)
        # into one when rows are busy; against API calls of tens of ms it is noise.
        self._batcher = ThreadBatcher(lambda batch: _commit(journal, batch), gather=GATHER)

    @property
    def commits(self) -> int:
        """Transactions committed so far (each holds one or more calls)."""
        return self._batcher.batches

    async def call(self, fn: Callable[[Journal], T]) -> T:
        """Run ``fn(journal)`` in the worker thread, inside a transaction."""
        journal = self.journal
        return await self._batcher.run(lambda: fn(journal))

    async def write(self, write: Callable[[Journal], None]) -> None:
        """Commit ``write(journal)`` (possibly with others) before returning.

        Once called, the write is made even if the caller is then cancelled: a
        step that was decided (a user was created) must be recorded, else the
        rerun would take the created user for a possible orphan.
        """
        await self.call(write)

    # Shorthands bound to this run.

    async def advance(
        self,
        key: str,
        state: RowState,
        *,
        detail: str | None = None,
        **columns: str | None,
    ) -> None:
        run_id = self.run_id
        await self.write(
            lambda journal: journal.advance(run_id, key, state, detail=detail, **columns)
        )

    async def fail(
        self, key: str, kind: str, reason: str, *, state: RowState | None = None
    ) -> None:
        run_id = self.run_id
        await self.write(lambda journal: journal.fail(run_id, key, kind, reason, state=state))

    async def note(self, key: str, step: str, detail: str, *, orphan: bool = False) -> None:
        run_id = self.run_id
        await self.write(lambda journal: journal.note(run_id, key, step, detail, orphan=orphan))
