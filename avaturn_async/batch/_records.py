"""What the journal stores and reports (defined in ``avaturn_async._journal_records``,
below this package and the PostgreSQL one, which both speak of rows)."""

from __future__ import annotations

from .._journal_records import (
    FailureRecord,
    Holdings,
    JournalBusyError,
    JournalError,
    JournalStatus,
    LeaseLostError,
    Registration,
    RowEntry,
    RowRecord,
    RowState,
    record_from_row,
    redact,
)

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
