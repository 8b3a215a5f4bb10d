"""``onboard()``: many people, three photos each, one Avaturn user and one ready
avatar per person, resumable from the journal after any crash.

Shape of a run: one producer task reads the rows lazily (a chunk at a time,
in a worker thread) and records them in the journal; it hands the rows that
still need work through an unbuffered memory stream to ``max_in_flight``
worker tasks, so reading stops while every worker is busy (backpressure) and
memory does not grow with the number of rows. Inside a row, stages have their
own limits: at most ``concurrency`` rows create users and avatars and upload
photos at once, as many as ``max_in_flight`` wait for processing, and at most
``concurrency`` export and download. All HTTP goes through the one client and
its own limit on requests in flight.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import warnings
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import anyio
import anyio.to_thread
import attrs
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from .. import _metrics
from .._journal_records import LeaseLostError
from .._limiter import RequestLimiter
from ._journal import Journal, Registration, RowRecord, RowState
from ._manifest import Manifest, OnboardRow, RowError, check_photos
from ._row import RowRunner
from ._rules import OnboardSettings
from ._store import JournalStore, RowEntry, opened_journal
from ._summary import OnboardingSummary

if TYPE_CHECKING:
    from .._client import AvaturnClient

__all__ = ["RowSource", "onboard"]

RowItem: TypeAlias = OnboardRow | RowError
RowSource: TypeAlias = Iterable[RowItem] | AsyncIterable[RowItem]
"""Rows to onboard: a :class:`~avaturn_async.batch.Manifest`, or any (async) iterable."""

DEFAULT_SETTINGS = OnboardSettings()
_CHUNK = 64  # rows read and registered per worker-thread hop
_CLAIM_BATCH = 8  # rows claimed at once, just before workers are free to take them
_HOLDINGS_POLL = 1.0  # seconds between looks at the rows other runs hold, at the end
_Work: TypeAlias = tuple[OnboardRow, RowRecord]
"""A claimed row, and its record as the claim found it."""


def _read_chunk(rows: Iterator[RowItem], start: int, checked: bool) -> list[RowItem]:
    """The next rows, numbered when they carry no line, their photos checked unless
    ``checked`` (a :class:`Manifest` checks its own). Runs in a worker thread."""
    chunk: list[RowItem] = []
    for number, item in enumerate(itertools.islice(rows, _CHUNK), start=start):
        if item.line == 0:
            item = attrs.evolve(item, line=number)
        if isinstance(item, OnboardRow) and not checked:
            problem = check_photos(item)
            if problem is not None:
                item = RowError(line=item.line, key=item.key, reason=problem)
        chunk.append(item)
    return chunk


async def _chunks(rows: RowSource) -> AsyncIterator[list[RowItem]]:
    read = 0
    if isinstance(rows, AsyncIterable):
        async for item in rows:
            read += 1
            yield await anyio.to_thread.run_sync(_read_chunk, iter((item,)), read, False)
        return
    iterator, checked = iter(rows), isinstance(rows, Manifest)
    while chunk := await anyio.to_thread.run_sync(_read_chunk, iterator, read + 1, checked):
        read += len(chunk)
        yield chunk


def _entry(item: RowItem) -> RowEntry:
    problem = item.reason if isinstance(item, RowError) else None
    extra = json.dumps(item.extra, ensure_ascii=False, default=str) if item.extra else None
    return RowEntry(line=item.line, key=item.key, problem=problem, extra=extra)


class _Run:
    """The state one ``onboard()`` call shares between its tasks."""

    def __init__(
        self,
        client: AvaturnClient,
        store: JournalStore,
        summary: OnboardingSummary,
        settings: OnboardSettings,
        progress: Callable[[OnboardingSummary], None] | None,
    ) -> None:
        self.store = store
        self.summary = summary
        summary.user_cap = settings.max_new_users
        self.settings = settings
        self.export = settings.export_folder is not None
        self.progress = progress
        self.fatal: Exception | None = None
        self.runner = RowRunner(
            client,
            store,
            summary,
            settings,
            # The client's limiter: a free slot is taken without a trip through the
            # event loop (anyio's CapacityLimiter always yields), once per row and stage.
            submit=RequestLimiter(settings.concurrency),
            export=RequestLimiter(settings.concurrency),
            changed=self.changed,
        )

    def changed(self) -> None:
        if self.progress is not None:
            self.progress(self.summary)

    async def rows_by_state(self) -> dict[str, int]:
        """What the ``avaturn.onboard.rows`` gauge reads on each metrics collection."""
        return dict((await self.store.status()).by_state)

    async def run(self, rows: RowSource) -> None:
        """Read, claim and run the rows; the journal's ``runs`` table gets the outcome."""
        outcome = "interrupted"
        try:
            async with anyio.create_task_group() as group:
                send, receive = anyio.create_memory_object_stream[_Work](0)
                group.start_soon(self.produce, rows, send, group.cancel_scope)
                with receive:
                    for _ in range(self.settings.in_flight):
                        group.start_soon(self.consume, receive.clone(), group.cancel_scope)
            outcome = "fatal" if self.fatal is not None else "finished"
        except anyio.get_cancelled_exc_class():
            self.summary.interrupted = True
            raise
        finally:
            with anyio.CancelScope(shield=True):
                summary = self.summary
                summary.finished = time.monotonic()
                summary.failures, summary.failures_total = await self.store.end_run(outcome)
        if self.fatal is not None:
            raise self.fatal

    def _triage(self, item: RowItem, registration: Registration | None) -> bool:
        """Count a registered row; ``True`` if it needs work."""
        summary = self.summary
        summary.read += 1
        record = None if registration is None else registration.record
        if record is not None and record.is_done(export=self.export):
            summary.already_done += 1  # finished earlier: its photos are not needed
            return False
        if record is None or isinstance(item, RowError):
            summary.invalid += 1
            return False
        if record.state is RowState.AVATAR_FAILED and not self.settings.retry_failed:
            summary.add_failure("avatar_failed")
            return False
        return True

    def _stop(self, exc: Exception, scope: anyio.CancelScope) -> None:
        """Stop the whole run on an error that dooms every row (a rejected API key,
        an unreadable source); it is raised, unwrapped, once the tasks are done."""
        if self.fatal is None:
            self.fatal = exc
        scope.cancel()

    async def _hand_out(
        self, rows: list[OnboardRow], send: ObjectSendStream[_Work], *, taken_over: bool = False
    ) -> int:
        """Claim ``rows`` a few at a time, just before workers are free to take them
        (so runs sharing the journal share the rows); returns how many were claimed.

        ``taken_over``: the rows were counted as handled by other runs; each claimed
        one leaves that count before a worker can count it again (a row is never
        counted twice, not even for a moment on the progress line)."""
        claimed = 0
        for start in range(0, len(rows), _CLAIM_BATCH):
            group = {row.key: row for row in rows[start : start + _CLAIM_BATCH]}
            records = await self.store.claim(
                list(group), export=self.export, retry_failed=self.settings.retry_failed
            )
            claimed += len(records)
            if taken_over:
                self.summary.elsewhere -= len(records)
            for record in records:
                await send.send((group[record.key], record))
        return claimed

    async def produce(
        self, rows: RowSource, send: ObjectSendStream[_Work], scope: anyio.CancelScope
    ) -> None:
        async with send:
            try:
                async for chunk in _chunks(rows):
                    registrations = await self.store.register([_entry(item) for item in chunk])
                    todo: list[OnboardRow] = []
                    for item, registration in zip(chunk, registrations, strict=True):
                        if self._triage(item, registration):
                            assert isinstance(item, OnboardRow)
                            todo.append(item)
                        self.changed()
                    if self.runner.cap_reached:
                        # No more rows start: they are read to the end, counted, left as is.
                        self.summary.not_started += len(todo)
                        continue
                    claimed = await self._hand_out(todo, send)
                    self.summary.elsewhere += len(todo) - claimed
                if isinstance(rows, Manifest) and not self.runner.cap_reached:
                    await self._take_over(rows.path, send)
            except Exception as exc:
                self._stop(exc, scope)

    async def _take_over(self, path: Path, send: ObjectSendStream[_Work]) -> None:
        """While this run or others still hold rows, take over those no live run
        holds (their run was killed or interrupted), reading their photos from the
        manifest again. Rows left then are a rerun's."""
        foreign: set[str] = set()  # unfinished rows this manifest does not hold
        while True:
            holdings = await self.store.holdings()
            wanted = holdings.expired - foreign
            if wanted:
                found, claimed = await self._rescan(path, wanted, send)
                foreign |= wanted - found
                if claimed:
                    continue
            if not holdings.live and not holdings.own:
                return
            await anyio.sleep(_HOLDINGS_POLL)

    async def _rescan(
        self, path: Path, wanted: frozenset[str] | set[str], send: ObjectSendStream[_Work]
    ) -> tuple[set[str], int]:
        """Claim the ``wanted`` rows of the manifest; the keys found, and how many claimed."""
        found: set[str] = set()
        claimed = 0
        with Manifest(path) as again:
            async for chunk in _chunks(again):
                todo = [
                    item for item in chunk if isinstance(item, OnboardRow) and item.key in wanted
                ]
                found.update(item.key for item in todo)
                claimed += await self._hand_out(todo, send, taken_over=True)
        return found, claimed

    async def consume(self, receive: ObjectReceiveStream[_Work], scope: anyio.CancelScope) -> None:
        async with receive:
            async for row, record in receive:
                key = row.key
                if self.runner.cap_reached:  # claimed before the cap was reached
                    self.summary.not_started += 1
                    await self.store.release(key)
                    self.changed()
                    continue
                counted = False  # the runner counts a row it finished (ready or failed)
                with anyio.CancelScope() as row_scope:
                    self.store.on_lease_lost(key, row_scope.cancel)
                    try:
                        await self.runner.run(row, record)
                        counted = True
                    except LeaseLostError:
                        row_scope.cancel()
                    except Exception as exc:
                        self._stop(exc, scope)
                        return
                    finally:
                        with anyio.CancelScope(shield=True):
                            await self.store.release(key)
                if row_scope.cancel_called and not counted:
                    self.summary.elsewhere += 1  # another run took it over
                    self.changed()


async def onboard(
    client: AvaturnClient,
    rows: RowSource,
    *,
    journal: str | os.PathLike[str] | Journal | JournalStore,
    settings: OnboardSettings = DEFAULT_SETTINGS,
    progress: Callable[[OnboardingSummary], None] | None = None,
    summary: OnboardingSummary | None = None,
    **deprecated_settings: Any,
) -> OnboardingSummary:
    """Onboard ``rows``: for each, one Avaturn user, one avatar from its photos, ready.

    Rerunning with the same journal resumes: finished rows are skipped, and no
    row gets a second user or avatar the journal knows of (see ``_row`` for how
    an unanswered create is reconciled). Per-row failures are journaled and
    counted; the run goes on.

    Args:
        client: the client; give it an ``event_hub`` fed by webhooks to avoid polling.
        rows: :class:`OnboardRow` / :class:`RowError` items, e.g. a :class:`Manifest`.
        journal: the SQLite journal file (created if missing), an open
            :class:`Journal`, or any :class:`JournalStore` (a shared
            ``avaturn_async.postgres.PostgresJournal``: runs on many machines
            share the batch; with a :class:`Manifest`, a run also takes over
            the rows of runs that were killed).
        settings: how the run goes (:class:`OnboardSettings`: concurrency, export, ...).
        progress: called with the summary whenever a row changes (keep it cheap).
        summary: an :class:`OnboardingSummary` to fill in (readable after a cancel).
        deprecated_settings: the fields of :class:`OnboardSettings` as keywords
            (``concurrency=4``): deprecated, they still work for one release.
    """
    if deprecated_settings:
        warnings.warn(
            "onboard(..., concurrency=..., export=..., ...) is deprecated: pass "
            "settings=OnboardSettings(...) instead",
            DeprecationWarning,
            stacklevel=2,
        )
        settings = attrs.evolve(settings, **deprecated_settings)
    if settings.export_folder is not None:
        settings.export_folder.mkdir(parents=True, exist_ok=True)
    summary = summary if summary is not None else OnboardingSummary()
    async with opened_journal(journal) as store:
        await store.begin_run(settings.source)
        run = _Run(client, store, summary, settings, progress)
        with _metrics.watching("journal", store.label, run.rows_by_state):
            await run.run(rows)
    return summary
