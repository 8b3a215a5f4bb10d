"""The results of an onboarding, out of its journal: one line per manifest row.

What a batch is for is the mapping from your own key to the Avaturn ``user_id``
and ``avatar_id``: :func:`read_results` streams it, row by row in manifest order,
from a SQLite journal file or a ``postgresql://`` journal alike, and
:func:`write_results` writes it as CSV or JSON Lines. Rows are read a page at a
time (keyset pages on ``(line, key)``), so memory stays flat at any number of rows.

Each row says ``key``, ``state`` (the reports' one vocabulary: ``ready``,
``in_progress``, ``failed``, ``invalid``), ``user_id``, ``avatar_id``,
``export_path``, ``error_kind``, ``error``, ``line``, ``updated_at`` (ISO 8601,
UTC), then the manifest's own columns (``extra``). Lines of the last run that
never became a row (no key, a duplicate key) come too, as ``invalid``.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import datetime
import io
import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, TextIO

import anyio
import anyio.to_thread
import attrs

from .._errors import ConfigurationError
from .._journal_records import JournalError, outcome_of, shown_kind
from ._journal import Journal
from ._rules import PROCESSING_FAILED
from ._store import JournalStore, opened_journal

__all__ = ["RESULT_COLUMNS", "ResultRow", "read_results", "results_format", "write_results"]

RESULT_COLUMNS = (
    "key",
    "state",
    "user_id",
    "avatar_id",
    "export_path",
    "error_kind",
    "error",
    "line",
    "updated_at",
)
"""The columns every results file starts with; the manifest's own columns follow."""

PAGE = 1000
"""Rows read per round trip to the journal."""

ResultsFormat = Literal["csv", "jsonl"]


@attrs.frozen(kw_only=True)
class ResultRow:
    """One manifest row's outcome (see the module docstring for the fields)."""

    key: str | None
    state: str
    user_id: str | None = None
    avatar_id: str | None = None
    export_path: str | None = None
    error_kind: str | None = None
    error: str | None = None
    line: int
    updated_at: datetime.datetime | None = None
    extra: dict[str, Any] = attrs.field(factory=dict, hash=False)

    def as_dict(self, extra_columns: Sequence[str] | None = None) -> dict[str, Any]:
        """The row as one flat record: :data:`RESULT_COLUMNS`, then ``extra_columns``
        (default: this row's own). A manifest column named like a result column is
        written as ``manifest.<name>``."""
        record: dict[str, Any] = {name: getattr(self, name) for name in RESULT_COLUMNS}
        if self.updated_at is not None:
            record["updated_at"] = self.updated_at.isoformat()
        for name in self.extra if extra_columns is None else extra_columns:
            record[extra_name(name)] = self.extra.get(name)
        return record


def extra_name(name: str) -> str:
    """The results column of a manifest column (renamed if it clashes)."""
    return f"manifest.{name}" if name in RESULT_COLUMNS else name


def _when(value: Any) -> datetime.datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.timezone.utc)
    return datetime.datetime.fromtimestamp(float(value), tz=datetime.timezone.utc)


def _extra(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def result_of_row(raw: Sequence[Any]) -> ResultRow:
    """A :class:`ResultRow` from a journal row read by a store's ``results_page``:
    ``(key, line, state, user_id, avatar_id, export_path, error_kind, error,
    updated_at, extra_json)``, ``updated_at`` in epoch seconds or an aware datetime."""
    key, line, state, user_id, avatar_id, export_path, kind, error, updated, extra = raw
    if kind is None and error is None and state == "avatar_failed":
        kind, error = "avatar_failed", PROCESSING_FAILED
    return ResultRow(
        key=key,
        state=outcome_of(state, kind, error),
        user_id=user_id,
        avatar_id=avatar_id,
        export_path=export_path,
        error_kind=shown_kind(kind),
        error=error,
        line=line,
        updated_at=_when(updated),
        extra=_extra(extra),
    )


def result_of_reject(raw: Sequence[Any]) -> ResultRow:
    """A :class:`ResultRow` from a store's ``rejects_page``:
    ``(line, id, key, reason, at, extra_json)``."""
    line, _id, key, reason, at, extra = raw
    return ResultRow(
        key=key,
        state="invalid",
        error_kind=shown_kind("rejected", reason),
        error=reason,
        line=line,
        updated_at=_when(at),
        extra=_extra(extra),
    )


class _Pager:
    """One keyset-paged reader of a store (``read(after, limit)``), a page in hand."""

    def __init__(
        self, read: Any, after: tuple[Any, Any], position: Callable[[Any], tuple[Any, Any]]
    ) -> None:
        self._read, self._after, self._position = read, after, position
        self.items: collections.deque[Sequence[Any]] = collections.deque()
        self.done = False

    @property
    def waiting(self) -> bool:
        """Empty, with more to read: merging must wait for the next page."""
        return not self.items and not self.done

    async def fill(self) -> None:
        page = await self._read(self._after, PAGE)
        self.done = len(page) < PAGE
        if page:
            self._after = self._position(page[-1])
        self.items.extend(page)


async def _result_pages(store: Any) -> AsyncIterator[list[ResultRow]]:
    """Rows and the last run's rejected lines, merged in line order, a page at a time."""
    # Rows are paged on (line, key), rejected lines on (line, id).
    rows = _Pager(store.results_page, (-1, ""), lambda row: (row[1], row[0]))
    rejects = _Pager(store.rejects_page, (-1, -1), lambda reject: (reject[0], reject[1]))
    while True:
        for pager in (rows, rejects):
            if pager.waiting:
                await pager.fill()
        if not rows.items and not rejects.items:
            return
        batch: list[ResultRow] = []
        while (rows.items or rejects.items) and not rows.waiting and not rejects.waiting:
            if rejects.items and (not rows.items or rejects.items[0][0] < rows.items[0][1]):
                batch.append(result_of_reject(rejects.items.popleft()))
            else:
                batch.append(result_of_row(rows.items.popleft()))
        yield batch


@contextlib.asynccontextmanager
async def _opened(journal: str | os.PathLike[str] | Journal | JournalStore) -> AsyncIterator[Any]:
    """The store of ``journal``, closed after the block if it was opened here."""
    if isinstance(journal, (str, os.PathLike)):
        name = os.fspath(journal)
        if "://" not in name and not await anyio.to_thread.run_sync(Path(name).is_file):
            raise JournalError(f"no journal at {name}")
    async with opened_journal(journal) as store:
        pages = ("results_page", "rejects_page", "extra_columns")
        if not all(callable(getattr(store, name, None)) for name in pages):
            raise ConfigurationError(f"{store!r} cannot list its results (no results_page())")
        yield store


async def read_results(
    journal: str | os.PathLike[str] | Journal | JournalStore,
) -> AsyncIterator[ResultRow]:
    """Every row of ``journal`` with its outcome, in manifest order, streamed.

    ``journal`` is what :func:`~avaturn_async.batch.onboard` takes: a SQLite file,
    a ``postgresql://`` DSN, an open :class:`Journal` or a store. Raises
    :class:`JournalError` when a file is not there (nothing is created).
    """
    async with _opened(journal) as store:
        async for batch in _result_pages(store):
            for result in batch:
                yield result


def results_format(destination: str | os.PathLike[str]) -> ResultsFormat:
    """``csv`` or ``jsonl`` by the file's extension (``-``: JSON Lines to stdout).

    Raises ``ConfigurationError`` for any other extension.
    """
    name = os.fspath(destination)
    suffix = ".jsonl" if name == "-" else Path(name).suffix.lower()
    if suffix in (".csv", ".jsonl", ".ndjson"):
        return "csv" if suffix == ".csv" else "jsonl"
    raise ConfigurationError(
        f"results file {name!r}: the extension says the format: .csv or .jsonl (or - for stdout)"
    )


def _csv(rows: Iterable[Iterable[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def _lines(results: list[ResultRow], columns: Sequence[str], fmt: ResultsFormat) -> str:
    records = [result.as_dict(columns) for result in results]
    if fmt == "jsonl":
        return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    return _csv(map(_cell, record.values()) for record in records)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list, bool)):
        return json.dumps(value, ensure_ascii=False)
    return value


async def _write_stream(store: Any, out: TextIO, fmt: ResultsFormat) -> int:
    columns = list(await store.extra_columns())
    if fmt == "csv":
        out.write(_csv([[*RESULT_COLUMNS, *map(extra_name, columns)]]))
    written = 0
    async for batch in _result_pages(store):
        await anyio.to_thread.run_sync(out.write, _lines(batch, columns, fmt))
        written += len(batch)
    return written


async def write_results(
    journal: str | os.PathLike[str] | Journal | JournalStore,
    destination: str | os.PathLike[str] | TextIO,
    *,
    format: ResultsFormat | None = None,
) -> int:
    """Write the results of ``journal`` (see :func:`read_results`); returns the rows written.

    ``destination`` is a path (``.csv`` with a header row, or ``.jsonl``; the
    file appears whole, written under a temporary name first), ``-`` for JSON
    Lines on standard output, or an open text stream (``format`` then says which,
    default JSON Lines). The manifest's own columns follow the fixed ones, in the
    order the manifest had them.
    """
    async with _opened(journal) as store:
        if not isinstance(destination, (str, os.PathLike)):
            return await _write_stream(store, destination, format or "jsonl")
        fmt = format or results_format(destination)
        if os.fspath(destination) == "-":
            count = await _write_stream(store, sys.stdout, fmt)
            sys.stdout.flush()
            return count
        path = Path(destination)
        partial = path.with_name(f".{path.name}.partial")
        with partial.open("w", encoding="utf-8", newline="") as out:
            count = await _write_stream(store, out, fmt)
        partial.replace(path)
        return count
