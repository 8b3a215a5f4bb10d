"""``avaturn onboard``: the command line of batch onboarding.

::

    avaturn onboard people.csv --journal onboard.db [--concurrency N] [--rate N]
        [--export-dir DIR] [--webhook-port P] [--emulator] [--results FILE]
    avaturn onboard people.csv --dry-run            # check offline, send nothing
    avaturn onboard --status --journal onboard.db [--json]
    avaturn onboard --journal onboard.db --results people-results.csv
    avaturn onboard people.csv --journal postgresql://... [--lease S] [--metrics-port P]

Counts use one vocabulary (``batch._summary``). Exit codes: 0 every row ready, 1
some failed, were invalid, or the run stopped (API unreachable, ``--max-new-users``),
2 bad usage (``--status``: no journal), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

import anyio

from .._adaptive import RateLimitGate
from .._client import AvaturnClient
from .._errors import AuthenticationError, ConfigurationError, StorageError
from ..batch import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    FailureRecord,
    Journal,
    JournalError,
    JournalStatus,
    Manifest,
    ManifestError,
    OnboardingAbortedError,
    OnboardingSummary,
    OnboardSettings,
    count_rows,
    onboard,
)
from ..postgres import DEFAULT_LEASE, is_url
from . import _onboard_tools as tools
from ._argtypes import checked, port_number, positive_float, positive_int
from ._dry_run import listed, run_dry_run
from ._environment import emulated_client, remote_client
from ._onboard_metrics import add_metrics_arguments, onboard_metrics
from ._progress import progress_reporter

__all__ = [
    "add_onboard_parser",
    "emulator_state_file",
    "format_counts",
    "format_status",
    "journal_counts",
    "run_onboard_command",
    "status_counts",
]

_EPILOG = """\
manifest: CSV with the header key,frontal,side_1,side_2,body_type[,telephoto] and any
columns of your own, kept for --results (or JSON Lines with those names); photo paths
are relative to the manifest's folder. A bad row is invalid (line and reason); the rest go on.
The journal records every step; rerun the same command after a crash or Ctrl-C
and it resumes: no row gets a second Avaturn user or avatar.

environment: AVATURN_API_KEY, AVATURN_BASE_URL, AVATURN_WEBHOOK_SECRET (--webhook-port)

counts: ready (avatar ready), already done (by an earlier run: nothing sent),
failed (reason in the journal; a rerun retries), invalid (bad input or duplicate
key: nothing sent); --status and --results add in progress.

exit codes: 0 all rows ready, 1 some rows failed or invalid, 2 usage error (manifest or
journal unreadable, missing configuration, API key refused), 130 interrupted;
with --status: 0 every row ready and none failed, 1 otherwise, 2 no journal
"""


_lease = checked(float, lambda v: 1.0 <= v <= 3600.0, "must be between 1 and 3600 seconds",
                 name="seconds")


def add_onboard_parser(commands: Any) -> None:
    """Add the ``onboard`` subcommand to an ``add_subparsers()`` object."""
    parser = commands.add_parser(
        "onboard",
        help="onboard many people from a CSV/JSONL manifest, resumably",
        description="Create one Avaturn user and one ready avatar per manifest row.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("manifest", nargs="?", help="CSV or JSONL manifest (not needed with --status)")
    add("--journal", metavar="FILE|DSN",
        help="SQLite journal file (created if missing), or postgresql://... to share "
        "the batch with other workers on any machine")
    add("--lease", type=_lease, default=DEFAULT_LEASE, metavar="SECONDS",
        help=f"PostgreSQL journal: a worker's hold on a row lasts this long unless "
        f"renewed (every third of it); a killed worker's rows are taken over after "
        f"it (default {DEFAULT_LEASE:g})")
    add("--status", action="store_true", help="report the journal and exit")
    add("--json", action="store_true", help="with --status: one JSON document")
    add("--concurrency", type=positive_int, default=8, metavar="N",
        help="rows creating and uploading at once (default 8)")
    add("--max-in-flight", type=positive_int, metavar="N",
        help="rows in progress at once, waiting included (default 8 x concurrency)")
    add("--export-dir", metavar="DIR", help="also export each avatar's model (.glb) here")
    add("--webhook-port", type=port_number, metavar="P",
        help="receive Avaturn's webhooks on this port (secret: AVATURN_WEBHOOK_SECRET)")
    add("--webhook-host", default="0.0.0.0", metavar="HOST",
        help="address the webhook receiver binds (default 0.0.0.0)")
    add("--emulator", action="store_true",
        help="run against an embedded emulator (no API key, no network); its state "
             "is kept beside the journal (FILE.emulator.db) so reruns resume")
    add("--retry-failed", action="store_true",
        help="give rows whose avatar failed processing a new avatar")
    add("--poll-interval", type=positive_float, metavar="SECONDS",
        help="first wait between status polls (default 1 s, 15 s with webhooks)")
    add("--ready-timeout", type=positive_float, default=1800.0, metavar="SECONDS",
        help="give up waiting for one avatar after this long (default 1800)")
    add("--progress", choices=("auto", "rich", "plain", "none"), default="auto",
        help="progress display (auto: a bar on a terminal, lines otherwise)")
    tools.add_tool_options(add)
    add_metrics_arguments(add, port_number)


def _error(err: TextIO, message: str) -> int:
    print(f"avaturn onboard: error: {message}", file=err)
    return EXIT_USAGE


# ---------------------------------------------------------------- --status


def status_counts(journal: Journal, *, limit: int = 20) -> dict[str, Any]:
    """What ``--status`` reports of a SQLite journal (:func:`journal_counts`)."""
    return journal_counts(str(journal.path), journal.status(), journal.failures(limit))


def journal_counts(
    label: str, status: JournalStatus, failures: list[FailureRecord]
) -> dict[str, Any]:
    """What ``--status`` reports of any journal, from its status and first failures, as
    JSON-ready data in the words of a run's summary. Every row is counted once:
    ``rows`` = ``ready`` + ``in_progress`` + ``failed`` + ``invalid`` (bad input, or a
    keyless or duplicate line of the last run), as in the results file."""
    outcomes, rejected = status.outcomes, status.rejected_last_run
    shown = [
        {"line": f.line, "key": f.key, "error_kind": f.shown_kind, "error": f.reason,
         "state": f.outcome}
        for f in failures
    ]
    return {
        "journal": label,
        "rows": status.rows + rejected,
        "ready": outcomes.get("ready", 0),
        "in_progress": outcomes.get("in_progress", 0),
        "failed": outcomes.get("failed", 0),
        "invalid": outcomes.get("invalid", 0) + rejected,
        "possible_orphans": status.possible_orphans,
        "in_progress_by_step": dict(status.in_progress_by_step),
        "runs": status.runs,
        "last_run": status.last_run_outcome,
        "running_pid": status.running_pid,
        "live_runs": status.live_runs,
        "failed_rows": [row for row in shown if row["state"] == "failed"],
        "invalid_rows": [row for row in shown if row["state"] == "invalid"],
        "clean": outcomes.get("ready", 0) == status.rows and rejected == 0,
    }


def format_status(journal: Journal, *, limit: int = 20) -> tuple[str, bool]:
    """The report of ``--status``, and whether every row is ready and none failed."""
    return format_counts(status_counts(journal, limit=limit))


def format_counts(counts: dict[str, Any]) -> tuple[str, bool]:
    """The ``--status`` text of :func:`journal_counts`, and whether it is clean."""
    lines = [
        f"Journal {counts['journal']}: {counts['rows']} rows, {counts['runs']} run(s) "
        f"(last run: {counts['last_run'] or 'running or killed'})",
        f"  ready {counts['ready']}, in progress {counts['in_progress']}, "
        f"failed {counts['failed']}, invalid {counts['invalid']}; "
        f"possible orphan users {counts['possible_orphans']}",
    ]
    if counts["in_progress_by_step"]:
        steps = ", ".join(f"{step} {n}" for step, n in counts["in_progress_by_step"].items())
        lines.append(f"  in progress, by step: {steps}")
    if counts["running_pid"] is not None:
        lines.append(f"  a run is in progress (pid {counts['running_pid']})")
    if counts["live_runs"]:
        lines.append(f"  runs in progress (any machine): {counts['live_runs']}")
    lines += listed("failed rows", counts["failed_rows"])
    lines += listed("invalid rows", counts["invalid_rows"])
    return "\n".join(lines), bool(counts["clean"])


async def _read_counts(journal: str) -> dict[str, Any] | None:
    """``--status``'s counts of ``journal`` (a DSN or a file), ``None`` if no file is there."""
    if is_url(journal):
        from ..postgres import PostgresJournal

        store = await PostgresJournal.open(journal, create=False)  # reads, never writes
        try:
            return journal_counts(store.label, await store.status(), await store.failures())
        finally:
            await store.aclose()
    path = Path(journal)

    def read() -> dict[str, Any] | None:
        if not path.is_file():
            return None  # opening would create an empty journal
        with Journal(path) as opened:
            return status_counts(opened)

    return await anyio.to_thread.run_sync(read)


async def _report_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        counts = await _read_counts(args.journal)
    except (ConfigurationError, StorageError, JournalError) as exc:
        return _error(err, str(exc))
    if counts is None:
        return _error(err, f"no journal at {Path(args.journal)}")
    text, clean = format_counts(counts)
    print(json.dumps(counts, indent=2) if args.json else text, file=out)
    return EXIT_OK if clean else EXIT_FAILED


# ---------------------------------------------------------------- a run


def emulator_state_file(journal: str) -> Path:
    """Where ``--emulator`` keeps the embedded emulator's state: beside the journal,
    so a rerun finds the users and avatars the journal names."""
    if "://" in journal:
        raise ConfigurationError("--emulator keeps its state beside a journal file, not a URL")
    return Path(f"{journal}.emulator.db")


@asynccontextmanager
async def _client_for(
    args: argparse.Namespace, out: TextIO, gate: RateLimitGate | None, rate: Any
) -> AsyncIterator[AvaturnClient]:
    limit = max(16, 2 * args.concurrency)
    if args.emulator:
        async with emulated_client(
            webhook_port=args.webhook_port or 0,
            max_concurrency=limit,
            state_file=emulator_state_file(args.journal),
            gate=gate,
            rate_limit=rate,
        ) as (client, emulator, webhook_url):
            print(f"embedded emulator at {emulator.base_url}; webhooks to {webhook_url}", file=out)
            yield client
        return
    async with remote_client(
        webhook_port=args.webhook_port,
        webhook_host=args.webhook_host,
        webhook_secret=os.environ.get("AVATURN_WEBHOOK_SECRET"),
        max_concurrency=limit,
        gate=gate,
        rate_limit=rate,
    ) as (client, webhook_url):
        if webhook_url is not None:
            print(f"receiving webhooks on {webhook_url}", file=out)
        yield client


async def _onboard(args: argparse.Namespace, out: TextIO, summary: OnboardingSummary) -> None:
    with Manifest(args.manifest) as manifest:  # raises ManifestError before anything starts
        total = await anyio.to_thread.run_sync(count_rows, manifest.path)
        summary.total = total
        async with (
            tools.journal_and_pace(args) as (journal, gate, rate),
            onboard_metrics(args, journal, out),
            _client_for(args, out, gate, rate) as client,
        ):
            with progress_reporter(out, total, args.progress) as progress:
                settings = OnboardSettings(
                    concurrency=args.concurrency,
                    max_in_flight=args.max_in_flight,
                    export=args.export_dir is not None,
                    export_dir=args.export_dir,
                    retry_failed=args.retry_failed,
                    poll_interval=args.poll_interval,
                    ready_timeout=args.ready_timeout,
                    source=str(manifest.path),
                    max_new_users=args.max_new_users,
                )
                await onboard(
                    client, manifest, journal=journal, settings=settings, progress=progress,
                    summary=summary,
                )


async def run_onboard_command(
    args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run ``avaturn onboard`` with parsed ``args``; returns the exit code. ``out`` and
    ``err`` default to the current ``sys.stdout`` and ``sys.stderr``."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        tools.check_tool_options(args)
    except ConfigurationError as exc:
        return _error(err, str(exc))
    if args.write_sample:
        return tools.write_sample(args, out, err)
    if args.dry_run:
        if not args.manifest:
            return _error(err, "--dry-run checks a manifest: give its path")
        return await run_dry_run(args, out, err)
    if not args.journal:
        return _error(err, "--journal FILE|DSN is needed (a SQLite file, or postgresql://...)")
    if args.status:
        return await _report_status(args, out, err)
    if not args.manifest:
        if args.results:
            return await tools.save_results(args, out, err)
        return _error(err, "a manifest is needed (or --status, or --results)")
    # With the results on stdout, the run's own report goes to stderr.
    report = err if args.results == "-" else out
    code = await _run(args, report, err)
    if args.results and code != EXIT_USAGE:
        saved = await tools.save_results(args, report, err)
        code = code if saved == EXIT_OK else saved
    return code


async def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """One run of the manifest; its exit code."""
    summary = OnboardingSummary()
    failure: Exception | None = None
    async with anyio.create_task_group() as group:
        if sys.platform != "win32":
            group.start_soon(tools.stop_on_signal, group.cancel_scope, summary)
        try:
            await _onboard(args, out, summary)
        except Exception as exc:  # caught here so the task group does not wrap it
            failure = exc
        finally:
            group.cancel_scope.cancel()
    if isinstance(failure, OnboardingAbortedError):
        print(summary.format(), file=out)
        print(f"avaturn onboard: {failure}", file=err)
        return EXIT_FAILED
    if isinstance(failure, BrokenPipeError):
        raise failure  # the reader of our output left: the CLI exits quietly
    if isinstance(failure, AuthenticationError):
        return _error(err, f"the API refused the key: {failure}")
    if isinstance(
        failure, (ManifestError, JournalError, ConfigurationError, StorageError, OSError)
    ):
        return _error(err, str(failure))
    if failure is not None:
        raise failure
    print(summary.format(), file=out)
    return summary.exit_code
