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

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from .._journal_records import FailureRecord as FailureRecord
    from .._journal_records import JournalBusyError as JournalBusyError
    from .._journal_records import JournalError as JournalError
    from .._journal_records import JournalStatus as JournalStatus
    from .._journal_records import LeaseLostError as LeaseLostError
    from .._journal_records import Registration as Registration
    from .._journal_records import RowRecord as RowRecord
    from .._journal_records import RowState as RowState
    from ._journal import Journal as Journal
    from ._manifest import Manifest as Manifest
    from ._manifest import ManifestError as ManifestError
    from ._manifest import OnboardRow as OnboardRow
    from ._manifest import RowError as RowError
    from ._manifest import count_rows as count_rows
    from ._onboard import RowSource as RowSource
    from ._onboard import onboard as onboard
    from ._results import RESULT_COLUMNS as RESULT_COLUMNS
    from ._results import ResultRow as ResultRow
    from ._results import read_results as read_results
    from ._results import results_format as results_format
    from ._results import write_results as write_results
    from ._rules import DEFAULT_CUSTOMIZATION as DEFAULT_CUSTOMIZATION
    from ._rules import OnboardingAbortedError as OnboardingAbortedError
    from ._rules import OnboardSettings as OnboardSettings
    from ._sample import write_sample_manifest as write_sample_manifest
    from ._store import Holdings as Holdings
    from ._store import JournalStore as JournalStore
    from ._store import RowEntry as RowEntry
    from ._store import SQLiteJournalStore as SQLiteJournalStore
    from ._summary import EXIT_FAILED as EXIT_FAILED
    from ._summary import EXIT_INTERRUPTED as EXIT_INTERRUPTED
    from ._summary import EXIT_OK as EXIT_OK
    from ._summary import EXIT_USAGE as EXIT_USAGE
    from ._summary import OnboardingSummary as OnboardingSummary

# One line above per public name: __all__ and the lazy table are read from them.
__getattr__: Callable[[str], Any]
__dir__: Callable[[], list[str]]
__all__: list[str]
__getattr__, __dir__, __all__ = _lazy_exports(__name__, __file__)
