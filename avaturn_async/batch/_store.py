"""The journal seam: what :func:`~avaturn_async.batch.onboard` needs from a journal.

:class:`JournalStore` is the whole contract, async and bound to one run (one
process's share of a batch). Two implementations satisfy it:

* :class:`SQLiteJournalStore`, one file owned by one run at a time (the
  :class:`~._journal.Journal`, with its writes group-committed in a worker thread);
* ``avaturn_async.postgres.PostgresJournal``, one database shared by any
  number of runs at once, each row held under a lease.

The onboarder never asks which one it has: it registers the rows it reads,
claims the ones that need work, and records each step of a claimed row.
A claim is what keeps two runs off one row: a row is worked on only while its
run holds it. When a store reports a lost lease (another run took the row over
after this one stopped renewing it), the onboarder stops working on the row
and every further write for it raises :class:`~avaturn_async.batch.LeaseLostError`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import anyio
import anyio.to_thread

from .._journal_records import (
    FailureRecord,
    Holdings,
    JournalStatus,
    Registration,
    RowEntry,
    RowRecord,
    RowState,
)
from .._sqlite import SQLiteThread
from ._journal import Journal

__all__ = ["Holdings", "JournalStore", "RowEntry", "SQLiteJournalStore", "opened_journal"]


@runtime_checkable
class JournalStore(Protocol):
    """An onboarding journal as one run uses it (see the module docstring).

    Every write is committed before the call returns, and a write that was
    called is made even if the caller is then cancelled.
    """

    @property
    def label(self) -> str:
        """Where the journal is, for messages (never a password)."""

    @property
    def run_id(self) -> int:
        """This run's id (valid after :meth:`begin_run`)."""

    async def begin_run(self, source: str | None = None) -> int:
        """Start this run; raises ``JournalBusyError`` when the store allows one run
        only and another is live."""

    async def end_run(self, outcome: str) -> tuple[list[FailureRecord], int]:
        """End the run (releasing what it still holds); returns the first failures
        (at most 20) and the total the summary reports."""

    async def register(self, entries: Sequence[RowEntry]) -> list[Registration | None]:
        """Record the lines read, in one commit (``None`` for a keyless line).

        A key already read on another line of this batch is a duplicate: its
        line is rejected. A bad line is recorded as its row's error, unless the
        row is finished.
        """

    async def claim(
        self, keys: Sequence[str], *, export: bool, retry_failed: bool
    ) -> list[RowRecord]:
        """Hold the rows among ``keys`` that need work and no live run holds.

        Returns their records as they are now, in line order. Left alone: rows
        finished (ready; exported too when ``export``), rows with bad input,
        ``avatar_failed`` rows unless ``retry_failed``, and rows another run of
        this batch already tried and let go.
        """

    async def release(self, key: str) -> None:
        """Stop holding ``key`` (its last step is recorded)."""

    def on_lease_lost(self, key: str, lost: Callable[[], None]) -> None:
        """Call ``lost()`` if the hold on ``key`` is lost while it lasts."""

    async def holdings(self) -> Holdings:
        """What other runs hold of this batch now."""

    async def record(self, key: str) -> RowRecord | None:
        """The row of ``key`` as the journal knows it now."""

    async def advance(
        self, key: str, state: RowState, *, detail: str | None = None, **columns: str | None
    ) -> None:
        """Move ``key`` to ``state``, clearing its error; ``columns`` sets
        ``user_id``, ``avatar_id`` or ``export_path``."""

    async def fail(
        self, key: str, kind: str, reason: str, *, state: RowState | None = None
    ) -> None:
        """Record that the last attempt at ``key`` failed (``state`` moves it)."""

    async def note(self, key: str, step: str, detail: str, *, orphan: bool = False) -> None:
        """Log a step that changes no state; ``orphan`` counts a possibly orphaned user."""

    async def status(self) -> JournalStatus:
        """Counts for ``--status``."""

    async def failures(self, limit: int = 20) -> list[FailureRecord]:
        """Failed rows, then the last run's rejected lines, by line."""

    async def aclose(self) -> None:
        """Close the store (a run should have ended first)."""


_FAILURES_SHOWN = 20


def _register(
    journal: Journal, run_id: int, entries: Sequence[RowEntry]
) -> list[Registration | None]:
    results: list[Registration | None] = []
    for entry in entries:
        if entry.key is None:
            journal.reject(run_id, entry.line, None, entry.problem or "no key", entry.extra)
            results.append(None)
            continue
        results.append(journal.register(run_id, entry.key, entry.line, entry.problem, entry.extra))
    return results


def _claim(
    journal: Journal, keys: Sequence[str], export: bool, retry_failed: bool
) -> list[RowRecord]:
    claimed = []
    for record in map(journal.record, keys):  # the rule PostgreSQL's CLAIM follows too
        if record is None or record.is_done(export=export) or record.error_kind == "input":
            continue
        if retry_failed or record.state is not RowState.AVATAR_FAILED:
            claimed.append(record)
    return sorted(claimed, key=lambda record: record.line)


def _end_run(journal: Journal, run_id: int, outcome: str) -> tuple[list[FailureRecord], int]:
    journal.end_run(run_id, outcome)
    return journal.failures(_FAILURES_SHOWN), journal.count_failures()


_ROWS_PAGE = (
    "SELECT key, line, state, user_id, avatar_id, export_path, error_kind, error,"
    " updated_at, extra FROM rows WHERE (line, key) > (?, ?) ORDER BY line, key LIMIT ?"
)
_REJECTS_PAGE = (
    "SELECT line, id, key, reason, at, extra FROM rejects"
    " WHERE run_id = (SELECT MAX(id) FROM runs) AND (line, id) > (?, ?)"
    " ORDER BY line, id LIMIT ?"
)
# In order of first appearance: json_each walks an object in its text's order.
_EXTRA_COLUMNS = (
    "SELECT j.key FROM rows, json_each(rows.extra) AS j WHERE rows.extra IS NOT NULL"
    " GROUP BY j.key ORDER BY MIN(rows.line), MIN(j.id)"
)


def _select(journal: Journal, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    return journal.connection.execute(sql, args).fetchall()


GATHER = 0.001
"""Seconds a journal commit that could start at once waits for more writes: it turns
several commits into one when rows are busy; against API calls of tens of ms it is noise."""


class SQLiteJournalStore:
    """The SQLite journal as a :class:`JournalStore`: one run owns the file at a time,
    so a claim always succeeds and a hold is never lost.

    The journal is confined to one worker thread; concurrent rows' writes share
    one commit (``avaturn_async._sqlite``), each committed before the task that
    made it goes on to the remote call it records. ``owned`` closes the journal
    with the store.
    """

    def __init__(self, journal: Journal, *, owned: bool = False) -> None:
        self.journal = journal
        self._thread = SQLiteThread(
            lambda: journal, name="avaturn-journal", gather=GATHER, close_handle=owned
        )
        self._run_id: int | None = None

    def __repr__(self) -> str:
        return f"SQLiteJournalStore({str(self.journal.path)!r})"

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> SQLiteJournalStore:
        """Open (or create) the journal file at ``path``."""
        # Off the event loop: opening checks (or creates) the file and starts a thread.
        return await anyio.to_thread.run_sync(lambda: cls(Journal(Path(path)), owned=True))

    @property
    def label(self) -> str:
        return str(self.journal.path)

    @property
    def run_id(self) -> int:
        if self._run_id is None:
            raise RuntimeError("begin_run() first")
        return self._run_id

    async def begin_run(self, source: str | None = None) -> int:
        self._run_id = await self._thread.write(Journal.begin_run, source)
        return self._run_id

    async def end_run(self, outcome: str) -> tuple[list[FailureRecord], int]:
        return await self._thread.write(_end_run, self.run_id, outcome)

    async def register(self, entries: Sequence[RowEntry]) -> list[Registration | None]:
        return await self._thread.write(_register, self.run_id, entries)

    async def claim(
        self, keys: Sequence[str], *, export: bool, retry_failed: bool
    ) -> list[RowRecord]:
        _ = self.run_id  # raises before begin_run(), as the other stores do
        return await self._thread.read(_claim, keys, export, retry_failed)

    async def release(self, key: str) -> None:
        return None

    def on_lease_lost(self, key: str, lost: Callable[[], None]) -> None:
        return None  # the file has one owner: nothing can take a row away

    async def holdings(self) -> Holdings:
        return Holdings()

    async def record(self, key: str) -> RowRecord | None:
        return await self._thread.read(Journal.record, key)

    async def advance(
        self, key: str, state: RowState, *, detail: str | None = None, **columns: str | None
    ) -> None:
        await self._thread.write(Journal.advance, self.run_id, key, state, detail=detail, **columns)

    async def fail(
        self, key: str, kind: str, reason: str, *, state: RowState | None = None
    ) -> None:
        await self._thread.write(Journal.fail, self.run_id, key, kind, reason, state=state)

    async def note(self, key: str, step: str, detail: str, *, orphan: bool = False) -> None:
        await self._thread.write(Journal.note, self.run_id, key, step, detail, orphan=orphan)

    async def status(self) -> JournalStatus:
        return await self._thread.read(Journal.status)

    async def failures(self, limit: int = 20) -> list[FailureRecord]:
        return await self._thread.read(Journal.failures, limit)

    # The results (``read_results``): keyset pages, each starting after the last row of
    # the one before, on an index, so page 100 costs what page 1 does.

    async def results_page(self, after: tuple[int, str], limit: int) -> list[tuple[Any, ...]]:
        return await self._thread.read(_select, _ROWS_PAGE, (*after, limit))

    async def rejects_page(self, after: tuple[int, int], limit: int) -> list[tuple[Any, ...]]:
        return await self._thread.read(_select, _REJECTS_PAGE, (*after, limit))

    async def extra_columns(self) -> list[str]:
        return [row[0] for row in await self._thread.read(_select, _EXTRA_COLUMNS, ())]

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._thread.close)


@contextlib.asynccontextmanager
async def opened_journal(
    location: str | os.PathLike[str] | Journal | JournalStore,
) -> AsyncIterator[JournalStore]:
    """The store for a ``journal=`` argument, closed on the way out if opened here.

    A ``postgresql://`` DSN opens a shared ``PostgresJournal`` (extra ``postgres``);
    any other URL (anything with ``://``) is a ``ConfigurationError``, never a file
    of that name; any other string or path is a SQLite file.
    """
    if not isinstance(location, (str, os.PathLike)):
        yield SQLiteJournalStore(location) if isinstance(location, Journal) else location
        return
    if "://" not in os.fspath(location):  # a file: importing postgres costs 12 ms of CPU
        store: JournalStore = await SQLiteJournalStore.open(location)
    else:
        from ..postgres import PostgresJournal

        store = await PostgresJournal.open(os.fspath(location))
    try:
        yield store
    finally:
        with anyio.CancelScope(shield=True):
            await store.aclose()
