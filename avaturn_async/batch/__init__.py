"""High-volume onboarding: one Avaturn user and one ready avatar per person,
resumable after any crash from a durable SQLite journal.

::

    from avaturn_async import AvaturnClient
    from avaturn_async.batch import Manifest, OnboardSettings, onboard

    async with AvaturnClient() as client:
        with Manifest("people.csv") as rows:
            summary = await onboard(
                client, rows, journal="onboard.db", settings=OnboardSettings(concurrency=8)
            )
    print(summary.format())

The same from the command line: ``avaturn onboard people.csv --journal onboard.db``.
Rerun the same call (or command) after a crash: it resumes where it stopped.
See ``_journal`` for the journal's states and ``_row`` for how creates whose
answer was lost are reconciled.
"""

from __future__ import annotations

from .._journal_records import LeaseLostError, Registration
from ._journal import (
    FailureRecord,
    Journal,
    JournalBusyError,
    JournalError,
    JournalStatus,
    RowRecord,
    RowState,
)
from ._manifest import Manifest, ManifestError, OnboardRow, RowError, count_rows
from ._onboard import RowSource, onboard
from ._rules import DEFAULT_CUSTOMIZATION, OnboardingAbortedError, OnboardSettings
from ._sample import run_sample_onboarding, write_sample_manifest
from ._store import Holdings, JournalStore, RowEntry, SQLiteJournalStore
from ._summary import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    OnboardingSummary,
)

__all__ = [
    "DEFAULT_CUSTOMIZATION",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "FailureRecord",
    "Holdings",
    "Journal",
    "JournalBusyError",
    "JournalError",
    "JournalStatus",
    "JournalStore",
    "LeaseLostError",
    "Manifest",
    "ManifestError",
    "OnboardRow",
    "OnboardSettings",
    "OnboardingAbortedError",
    "OnboardingSummary",
    "Registration",
    "RowEntry",
    "RowError",
    "RowRecord",
    "RowSource",
    "RowState",
    "SQLiteJournalStore",
    "count_rows",
    "onboard",
    "run_sample_onboarding",
    "write_sample_manifest",
]
