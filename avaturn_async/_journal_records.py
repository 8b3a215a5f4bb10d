"""The onboarding journal's vocabulary: row states, records, report types and errors.

It sits below both :mod:`avaturn_async.batch` (which runs onboardings) and
:mod:`avaturn_async.postgres` (which stores a shared journal), so that neither
imports the other to speak of a row. ``avaturn_async.batch`` re-exports it.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from ._errors import AvaturnError
from ._redact import redact_urls

__all__ = [
    "FailureRecord",
    "Holdings",
    "JournalBusyError",
    "JournalError",
    "JournalStatus",
    "LeaseLostError",
    "Registration",
    "RowEntry",
    "RowRecord",
    "RowState",
    "record_from_row",
    "redact",
]



class RowState(str, enum.Enum):
    """Where a row stands; see the module docstring for the transitions."""

    NEW = "new"
    USER_REQUESTED = "user_requested"
    USER_CREATED = "user_created"
    AVATAR_REQUESTED = "avatar_requested"
    UPLOADING = "uploading"
    PROCESSING = "processing"
    READY = "ready"
    AVATAR_FAILED = "avatar_failed"
    EXPORTING = "exporting"
    EXPORTED = "exported"


class JournalError(AvaturnError, ValueError):
    """The journal file cannot be used (not a journal, newer schema, unreadable)."""


class JournalBusyError(JournalError):
    """Another live process is running an onboarding on this journal."""


class LeaseLostError(JournalError):
    """This run no longer holds the row: its lease ran out and another run took it.

    The write that raised it was not made; the run stops working on the row.
    """


def redact(text: str) -> str:
    """``text`` with the query string of every URL replaced: they may be credentials."""
    return redact_urls(text)


@attrs.frozen(kw_only=True)
class RowRecord:
    """One row as the journal knows it."""

    key: str
    line: int
    run_id: int
    state: RowState
    user_id: str | None = None
    avatar_id: str | None = None
    export_path: str | None = None
    error_kind: str | None = None
    error: str | None = None
    possible_orphans: int = 0

    @property
    def failed(self) -> bool:
        return self.error is not None or self.state is RowState.AVATAR_FAILED

    def is_done(self, *, export: bool) -> bool:
        """Finished: ready (or exported, when exports are asked for)."""
        if export:
            return self.state is RowState.EXPORTED
        return self.state in (RowState.READY, RowState.EXPORTED)


@attrs.frozen(kw_only=True)
class Registration:
    """What :meth:`Journal.register` made of one manifest row."""

    record: RowRecord | None
    """The row, or ``None`` when the line was rejected (``duplicate_of`` says why)."""
    duplicate_of: int | None = None
    """The line that already holds this key in the same run."""


@attrs.frozen(kw_only=True)
class FailureRecord:
    """A failed row or a rejected manifest line, for reports."""

    line: int
    key: str | None
    kind: str
    reason: str
    state: str | None = None


@attrs.frozen(kw_only=True)
class JournalStatus:
    """Counts for ``avaturn onboard --status`` and for tests."""

    rows: int
    by_state: dict[str, int]
    failed: int
    possible_orphans: int
    rejected_last_run: int
    runs: int
    last_run_outcome: str | None
    running_pid: int | None
    invalid: int = 0
    """Rows whose last reading was bad input (counted in ``failed`` too)."""
    live_runs: int = 0
    """Runs in progress on a shared journal (PostgreSQL), whichever machine runs them."""


def record_from_row(row: tuple[Any, ...]) -> RowRecord:
    """A :class:`RowRecord` from a ``rows`` table row (columns in schema order)."""
    return RowRecord(
        key=row[0],
        line=row[1],
        run_id=row[2],
        state=RowState(row[3]),
        user_id=row[4],
        avatar_id=row[5],
        export_path=row[6],
        error_kind=row[7],
        error=row[8],
        possible_orphans=row[9],
    )


@attrs.frozen(kw_only=True)
class RowEntry:
    """One manifest line as the journal registers it."""

    line: int
    key: str | None
    """``None`` for a line without a key: it is rejected."""
    problem: str | None = None
    """Why the line cannot be worked on (bad input), or ``None``."""


@attrs.frozen(kw_only=True)
class Holdings:
    """Unfinished rows that other runs hold, for the end of a run."""

    live: int = 0
    """Rows other runs hold under a lease that is still being renewed."""
    expired: frozenset[str] = frozenset()
    """Keys of unfinished rows no live run holds: their lease ran out (their run was
    killed) or their run let go of them unfinished (it was interrupted); take them over."""
    own: int = 0
    """Rows this run holds: while it works on them, other runs may still die."""
