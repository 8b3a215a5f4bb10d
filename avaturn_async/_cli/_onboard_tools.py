"""The onboarding command's tools around a run: ``--results``, ``--dry-run``,
``--write-sample``, ``--max-new-users`` and ``--rate`` (their options and handlers),
and the journal, gate and pace a run's workers share.

``--results FILE`` writes one line per manifest row out of the journal (see
``avaturn_async.batch.write_results``): alone it only writes them; with a manifest
the run writes them when it ends, interrupted or not.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

import anyio

from .._adaptive import RateLimitGate
from .._errors import ConfigurationError, StorageError
from .._pacing import RateBudget
from ..batch import (
    EXIT_OK,
    EXIT_USAGE,
    JournalError,
    JournalStore,
    OnboardingSummary,
    results_format,
    write_results,
    write_sample_manifest,
)
from ..postgres import is_url
from ._argtypes import checked, count

__all__ = [
    "add_tool_options",
    "check_tool_options",
    "journal_and_pace",
    "save_results",
    "stop_on_signal",
    "write_sample",
]


_rate = checked(float, lambda v: v > 0, "must be a positive number of requests per second",
                name="rate")


def add_tool_options(add: Any) -> None:
    """Add the options of the tools to the ``onboard`` parser's ``add_argument``."""
    add("--results", metavar="FILE",
        help="write one line per manifest row (key, state, user_id, avatar_id, ..., and the "
        "manifest's own columns): .csv or .jsonl by the extension, - for JSON Lines on "
        "stdout; without a manifest only the results are written")
    add("--dry-run", action="store_true",
        help="check every row offline (photos, fields, unique keys) and report as a run "
        "would; sends nothing, needs no API key and no journal (--journal: counts the "
        "rows already done); exit 0 when every row would be sent")
    add("--max-new-users", type=count, metavar="N",
        help="create at most N new Avaturn users in this run, then start no more rows "
        "(left as they are for a later run; exit 1)")
    add("--rate", type=_rate, metavar="N",
        help="at most N API requests per second, paced smoothly; with a postgresql:// "
        "journal one budget shared by every worker of the batch (without --rate, a pace "
        "learned from 429s: with a postgresql:// journal one for every worker)")
    add("--write-sample", metavar="DIR",
        help="write a sample manifest (DIR/people.csv) with its photos (DIR/photos/) and exit")
    add("--rows", type=count, default=6, metavar="N",
        help="with --write-sample: people in the sample (default 6)")


def check_tool_options(args: argparse.Namespace) -> None:
    """Refuse a results file of an unknown format before anything runs."""
    if args.results is not None:
        results_format(args.results)


def write_sample(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``--write-sample DIR``: the sample manifest and its photos, relative paths."""
    try:
        path = write_sample_manifest(args.write_sample, args.rows, name="people.csv")
    except OSError as exc:
        print(f"avaturn onboard: error: cannot write the sample: {exc}", file=err)
        return EXIT_USAGE
    print(f"wrote {path} ({args.rows} rows) and its photos in {Path(path).parent / 'photos'}",
          file=out)
    return EXIT_OK


async def save_results(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Write ``--results`` from the journal; returns an exit code (0 or usage)."""
    try:
        count = await write_results(args.journal, args.results)
    except (JournalError, ConfigurationError, StorageError, OSError) as exc:
        print(f"avaturn onboard: error: cannot write the results: {exc}", file=err)
        return EXIT_USAGE
    if args.results != "-":
        print(f"results: {count} rows written to {args.results}", file=out)
    return EXIT_OK


@asynccontextmanager
async def journal_and_pace(
    args: argparse.Namespace,
) -> AsyncIterator[tuple[str | JournalStore, RateLimitGate | None, float | RateBudget | None]]:
    """The journal to pass to onboard(), the rate-limit gate its workers share, and
    the client's ``rate_limit``. A PostgreSQL journal is opened here (a bad DSN fails
    before any request), and its database also carries the gate, so every worker of
    the batch pauses on a 429, and the pace: ``--rate`` as one budget for every
    worker, else one pace learned from 429s for all of them (a worker left alone
    then books at the whole rate). All use one connector: one pool and one LISTEN
    connection for the worker."""
    if not is_url(args.journal):
        yield args.journal, None, args.rate
        return
    from ..postgres import (
        PostgresConnector,
        PostgresGate,
        PostgresJournal,
        PostgresLearnedPace,
        PostgresRateBudget,
    )

    connector = PostgresConnector(args.journal)  # any other URL scheme: ConfigurationError
    try:
        store = await PostgresJournal.open(connector, lease=args.lease)
        pace = (
            PostgresLearnedPace(connector)
            if args.rate is None
            else PostgresRateBudget(connector, rate=args.rate)
        )
        try:
            async with PostgresGate(connector) as gate, pace:
                yield store, gate, pace
        finally:
            with anyio.CancelScope(shield=True):
                await store.aclose()
    finally:
        with anyio.CancelScope(shield=True):
            await connector.aclose()


async def stop_on_signal(scope: anyio.CancelScope, summary: OnboardingSummary) -> None:
    """Ctrl-C or SIGTERM: cancel the run so the summary is still printed (exit 130)."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            summary.interrupted = True
            scope.cancel()
            return
