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

import functools
import itertools
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import anyio
import anyio.to_thread
import attrs
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from .. import _models as m
from .._errors import ConfigurationError
from .._public import public
from ._journal import FailureRecord, Journal, Registration, RowRecord, RowState
from ._manifest import Manifest, OnboardRow, RowError, check_photos
from ._row import RowRunner
from ._rules import RowSettings
from ._summary import OnboardingSummary
from ._writer import JournalWriter

if TYPE_CHECKING:
    from .._client import AvaturnClient

__all__ = ["DEFAULT_CUSTOMIZATION", "RowSource", "onboard"]

RowItem: TypeAlias = OnboardRow | RowError
RowSource: TypeAlias = Iterable[RowItem] | AsyncIterable[RowItem]
"""Rows to onboard: a :class:`~avaturn_async.batch.Manifest`, or any (async) iterable."""

DEFAULT_CUSTOMIZATION = m.ExternalAvatarCustomization()
"""Set before exporting: exports of photo-made avatars are undefined until one is set."""

_CHUNK = 64  # rows read and registered per worker-thread hop
_FAILURES_SHOWN = 20


@attrs.frozen
class _Work:
    row: OnboardRow
    record: RowRecord


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
            chunk = await anyio.to_thread.run_sync(_read_chunk, iter((item,)), read, False)
            yield chunk
        return
    iterator, checked = iter(rows), isinstance(rows, Manifest)
    while chunk := await anyio.to_thread.run_sync(_read_chunk, iterator, read + 1, checked):
        read += len(chunk)
        yield chunk


def _register(journal: Journal, run_id: int, chunk: list[RowItem]) -> list[Registration | None]:
    """Record a chunk of rows in one transaction; ``None`` for a keyless bad row."""
    results: list[Registration | None] = []
    with journal.transaction():
        for item in chunk:
            if item.key is None:
                assert isinstance(item, RowError)
                journal.reject(run_id, item.line, None, item.reason)
                results.append(None)
                continue
            problem = item.reason if isinstance(item, RowError) else None
            results.append(journal.register(run_id, item.key, item.line, problem))
    return results


class _Run:
    """The state one ``onboard()`` call shares between its tasks."""

    def __init__(
        self,
        writer: JournalWriter,
        summary: OnboardingSummary,
        runner: RowRunner,
        *,
        export: bool,
        retry_failed: bool,
        changed: Callable[[], None],
    ) -> None:
        self.writer = writer
        self.summary = summary
        self.runner = runner
        self.export = export
        self.retry_failed = retry_failed
        self.changed = changed
        self.fatal: Exception | None = None

    def _triage(self, item: RowItem, registration: Registration | None) -> _Work | None:
        """Count a registered row, and return it if it needs work."""
        summary = self.summary
        summary.read += 1
        record = None if registration is None else registration.record
        if record is None or isinstance(item, RowError):
            if record is not None and record.is_done(export=self.export):
                summary.already_done += 1  # finished earlier: its photos are not needed
            else:
                summary.invalid += 1
            return None
        assert isinstance(item, OnboardRow)
        if record.is_done(export=self.export):
            summary.already_done += 1
            return None
        if record.state is RowState.AVATAR_FAILED and not self.retry_failed:
            summary.add_failure("avatar_failed")
            return None
        return _Work(item, record)

    def _stop(self, exc: Exception, scope: anyio.CancelScope) -> None:
        """Stop the whole run on an error that dooms every row (a rejected API key,
        an unreadable source); it is raised, unwrapped, once the tasks are done."""
        if self.fatal is None:
            self.fatal = exc
        scope.cancel()

    async def produce(
        self, rows: RowSource, send: ObjectSendStream[_Work], scope: anyio.CancelScope
    ) -> None:
        async with send:
            try:
                async for chunk in _chunks(rows):
                    register = functools.partial(_register, run_id=self.writer.run_id, chunk=chunk)
                    registrations = await self.writer.call(register)
                    for item, registration in zip(chunk, registrations, strict=True):
                        work = self._triage(item, registration)
                        self.changed()
                        if work is not None:
                            await send.send(work)
            except Exception as exc:
                self._stop(exc, scope)

    async def consume(self, receive: ObjectReceiveStream[_Work], scope: anyio.CancelScope) -> None:
        async with receive:
            async for work in receive:
                try:
                    await self.runner.run(work.row, work.record)
                except Exception as exc:
                    self._stop(exc, scope)
                    return


def _check(concurrency: int, max_in_flight: int | None, ready_timeout: float) -> int:
    if concurrency < 1:
        raise ConfigurationError("concurrency must be at least 1")
    in_flight = max_in_flight if max_in_flight is not None else 8 * concurrency
    if in_flight < concurrency:
        raise ConfigurationError("max_in_flight must be at least concurrency")
    if ready_timeout <= 0:
        raise ConfigurationError("ready_timeout must be positive")
    return in_flight


async def onboard(
    client: AvaturnClient,
    rows: RowSource,
    *,
    journal: str | os.PathLike[str] | Journal,
    concurrency: int = 8,
    max_in_flight: int | None = None,
    export: bool = False,
    export_dir: str | os.PathLike[str] | None = None,
    customization: m.ExternalAvatarCustomization | None = DEFAULT_CUSTOMIZATION,
    retry_failed: bool = False,
    poll_interval: float | None = None,
    ready_timeout: float = 1800.0,
    progress: Callable[[OnboardingSummary], None] | None = None,
    summary: OnboardingSummary | None = None,
    source: str | None = None,
) -> OnboardingSummary:
    """Onboard ``rows``: for each, one Avaturn user, one avatar from its photos, ready.

    Rerunning with the same journal resumes: finished rows are skipped, and no
    row gets a second user or avatar the journal knows of (see ``_row`` for how
    an unanswered create is reconciled). Per-row failures are journaled and
    counted; the run goes on.

    Args:
        client: the client; give it an ``event_hub`` fed by webhooks to avoid polling.
        rows: :class:`OnboardRow` / :class:`RowError` items, e.g. a :class:`Manifest`.
        journal: the SQLite journal file (created if missing) or an open :class:`Journal`.
        concurrency: rows creating users/avatars and uploading at once; also exports.
        max_in_flight: rows in progress at once, waiting included (8 x concurrency).
        export: also export each model and download it to ``export_dir``.
        customization: set before exporting (``None``: leave the avatar's own).
        retry_failed: give rows whose avatar failed processing a new avatar.
        poll_interval: first wait between status polls (the job's default if None).
        ready_timeout: seconds to wait for an avatar (and export); the row then
            fails with kind ``timeout`` and a rerun waits again.
        progress: called with the summary whenever a row changes (keep it cheap).
        summary: an :class:`OnboardingSummary` to fill in (readable after a cancel).
        source: a label for the journal's ``runs`` table (the manifest path).
    """
    in_flight = _check(concurrency, max_in_flight, ready_timeout)
    folder = _export_folder(export, export_dir)
    summary = summary if summary is not None else OnboardingSummary()
    owned = not isinstance(journal, Journal)
    if isinstance(journal, Journal):
        opened = journal
    else:
        path = journal
        opened = await anyio.to_thread.run_sync(lambda: Journal(path))
    try:
        run_id = await anyio.to_thread.run_sync(opened.begin_run, source)
        settings = RowSettings(
            export_dir=folder,
            customization=customization,
            retry_failed=retry_failed,
            poll_interval=poll_interval,
            ready_timeout=ready_timeout,
            unreachable_after=max(20, 2 * concurrency),
        )
        await _run(
            client,
            rows,
            JournalWriter(opened, run_id),
            summary,
            progress,
            settings,
            concurrency=concurrency,
            in_flight=in_flight,
            export=export,
        )
    finally:
        if owned:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(opened.close)
    return summary


def _export_folder(export: bool, export_dir: str | os.PathLike[str] | None) -> Path | None:
    if not export:
        return None
    if export_dir is None:
        raise ConfigurationError("export=True needs export_dir")
    folder = Path(export_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _run(
    client: AvaturnClient,
    rows: RowSource,
    writer: JournalWriter,
    summary: OnboardingSummary,
    progress: Callable[[OnboardingSummary], None] | None,
    settings: RowSettings,
    *,
    concurrency: int,
    in_flight: int,
    export: bool,
) -> None:
    def changed() -> None:
        if progress is not None:
            progress(summary)

    runner = RowRunner(
        client,
        writer,
        summary,
        settings,
        submit=anyio.CapacityLimiter(concurrency),
        export=anyio.CapacityLimiter(concurrency),
        changed=changed,
    )
    run = _Run(
        writer,
        summary,
        runner,
        export=export,
        retry_failed=settings.retry_failed,
        changed=changed,
    )
    outcome = "interrupted"
    try:
        async with anyio.create_task_group() as group:
            send, receive = anyio.create_memory_object_stream[_Work](0)
            group.start_soon(run.produce, rows, send, group.cancel_scope)
            with receive:
                for _ in range(in_flight):
                    group.start_soon(run.consume, receive.clone(), group.cancel_scope)
        outcome = "fatal" if run.fatal is not None else "finished"
    except anyio.get_cancelled_exc_class():
        summary.interrupted = True
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await _finish(writer, summary, outcome)
    if run.fatal is not None:
        raise run.fatal


async def _finish(writer: JournalWriter, summary: OnboardingSummary, outcome: str) -> None:
    """Close the run in the journal and read back the failures to report."""
    summary.finished = time.monotonic()

    def close(journal: Journal) -> tuple[list[FailureRecord], int]:
        journal.end_run(writer.run_id, outcome)
        return journal.failures(_FAILURES_SHOWN), journal.count_failures()

    summary.failures, summary.failures_total = await writer.call(close)


public("avaturn_async.batch", onboard)
