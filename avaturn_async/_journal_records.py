"""The onboarding journal's vocabulary: row states, records, report types and errors.

It sits below both :mod:`avaturn_async.batch` (which runs onboardings) and
:mod:`avaturn_async.postgres` (which stores a shared journal), so that neither
imports the other to speak of a row. ``avaturn_async.batch`` re-exports it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

import attrs

from ._errors import AvaturnError
from ._redact import redact_urls

__all__ = [
    "OUTCOMES",
    "OUTCOME_SQL",
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
    "outcome_of",
    "record_from_row",
    "redact",
    "shown_kind",
    "status_from",
]

# The one vocabulary of a row's outcome, in every report (progress, summary,
# --status, --json, the results file): a row is READY, IN_PROGRESS (started or not
# yet, and not finished), FAILED (an attempt failed: reason recorded, a rerun tries
# again) or INVALID (bad input or a duplicate key: nothing was sent).
READY = "ready"
IN_PROGRESS = "in_progress"
FAILED = "failed"
INVALID = "invalid"
OUTCOMES = (READY, IN_PROGRESS, FAILED, INVALID)
INPUT_KIND = "input"
"""The stored ``error_kind`` of a row with bad input (shown as ``invalid``)."""
REJECTED_KIND = "rejected"
"""The kind of a manifest line that never became a row (no key, duplicate key)."""
OUTCOME_SQL = (
    "CASE WHEN error_kind = 'input' THEN 'invalid'"
    " WHEN error IS NOT NULL OR state = 'avatar_failed' THEN 'failed'"
    " WHEN state IN ('ready', 'exported') THEN 'ready' ELSE 'in_progress' END"
)
""":func:`outcome_of` in SQL (SQLite and PostgreSQL alike), over a journal's rows."""


class RowState(str, enum.Enum):
    """Where a row stands in the journal."""

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


_FINISHED_STATES = frozenset({"ready", "exported"})  # RowState values, read per row


def outcome_of(state: str, error_kind: str | None, error: str | None) -> str:
    """The vocabulary word of a journal row (see ``OUTCOMES``); every store counts so."""
    if error_kind == INPUT_KIND:
        return INVALID
    if error is not None or state == "avatar_failed":
        return FAILED
    return READY if state in _FINISHED_STATES else IN_PROGRESS


def shown_kind(kind: str | None, reason: str | None = None) -> str | None:
    """The ``error_kind`` as reports show it: bad input and keyless lines are
    ``invalid``, a duplicate key's line ``duplicate_key``; failure kinds as stored."""
    if kind == REJECTED_KIND:
        return "duplicate_key" if reason is not None and reason.startswith("duplicate") else INVALID
    return INVALID if kind == INPUT_KIND else kind


class JournalError(AvaturnError, ValueError):
    """The journal file cannot be used (not a journal, newer schema, unreadable)."""


class JournalBusyError(JournalError):
    """Another live process is running an onboarding on this journal."""


class LeaseLostError(JournalError):
    """This run no longer holds the row: its lease ran out and another run took it.

    The write that raised it was not made; the run stops working on the row.
    """


redact = redact_urls  # every stored reason and detail: URL queries may be credentials


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
        return self.state is RowState.EXPORTED if export else self.state in _FINISHED_STATES


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

    @property
    def outcome(self) -> str:
        """``invalid`` (bad input, a keyless or duplicate line) or ``failed``."""
        return INVALID if self.kind in (INPUT_KIND, REJECTED_KIND) else FAILED

    @property
    def shown_kind(self) -> str:
        """The kind in the reports' words (:func:`shown_kind`)."""
        return shown_kind(self.kind, self.reason) or self.outcome


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
    outcomes: dict[str, int] = attrs.field(factory=dict)
    """Rows by outcome (``ready``, ``in_progress``, ``failed``, ``invalid``): each row
    counted once (:func:`outcome_of`); the last run's rejected lines are not rows."""
    in_progress_by_step: dict[str, int] = attrs.field(factory=dict)
    """The journal state of each row in progress (where a rerun resumes it)."""


def status_from(grouped: Iterable[tuple[str, str, int]], **counts: Any) -> JournalStatus:
    """A :class:`JournalStatus` from the ``(outcome, state, rows)`` groups of
    :data:`OUTCOME_SQL` and the journal's other counts (``counts``)."""
    by_state: dict[str, int] = {}
    outcomes, steps = dict.fromkeys(OUTCOMES, 0), {}
    for outcome, state, rows in grouped:
        by_state[state] = by_state.get(state, 0) + rows
        outcomes[outcome] += rows
        if outcome == IN_PROGRESS:
            steps[state] = rows
    return JournalStatus(
        rows=sum(by_state.values()),
        by_state=by_state,
        outcomes=outcomes,
        in_progress_by_step=dict(sorted(steps.items())),
        **counts,
    )


_ROW_FIELDS = [field.name for field in attrs.fields(RowRecord)]


def record_from_row(row: tuple[Any, ...]) -> RowRecord:
    """A :class:`RowRecord` from a ``rows`` table row, whose columns are its fields in order."""
    fields = dict(zip(_ROW_FIELDS, row, strict=True))
    return RowRecord(**fields | {"state": RowState(fields["state"])})


@attrs.frozen(kw_only=True)
class RowEntry:
    """One manifest line as the journal registers it."""

    line: int
    key: str | None
    """``None`` for a line without a key: it is rejected."""
    problem: str | None = None
    """Why the line cannot be worked on (bad input), or ``None``."""
    extra: str | None = None
    """The manifest's own columns the SDK does not use, as a JSON object (kept for
    the results), or ``None``."""


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
