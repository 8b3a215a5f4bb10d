"""``avaturn inbox``: list the events of a webhook inbox, replay dead ones, purge done ones.

::

    avaturn inbox --db webhooks.db|postgresql://... [--status pending|done|dead]
        [--limit N] [--replay-dead | --replay ID [ID ...]] [--purge-older-than DAYS]
        [--json]
    avaturn inbox --db ... --metrics-port P [--metrics-host HOST]   (a standing exporter)

Exit codes: 0 success, 1 some ``--replay`` ids were not dead (or the database
failed), 2 bad usage or no inbox at ``--db``. Event bodies are never printed:
they may hold pre-signed download URLs; a DSN's password is never printed.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TextIO

import attrs

from .._errors import ConfigurationError, StorageError
from .._exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from .._redact import looks_like_url, redact_location
from ..webhooks import InboxError, InboxRecord, InboxStatus, WebhookInbox
from ._argtypes import port_number, positive_int

__all__ = ["add_inbox_parser", "format_records", "run_inbox_command"]


_EPILOG = """\
Lists the newest events first (all statuses unless --status). Replays and the
purge happen before the listing, which shows their effect. Safe to run while
receivers and workers use the same file or database. --db takes a SQLite file
or a postgresql:// DSN (a PostgresInbox; needs the postgres extra).

With --metrics-port, serves the inbox's gauges (deliveries by status, the age of
the oldest pending one) in the Prometheus format on /metrics, with /healthz and
/readyz, until stopped (SIGTERM or Ctrl-C); needs the otel extra.

exit codes: 0 ok, 1 some --replay ids were not dead, 2 usage error or no inbox at --db
"""


def add_inbox_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "inbox",
        help="list a webhook inbox's pending, done and dead events; replay dead ones",
        description="Inspect a WebhookInbox database and replay dead-lettered events.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--db", required=True, metavar="PATH|DSN", help="the inbox SQLite file or postgresql:// DSN"
    )
    parser.add_argument("--status", choices=[status.value for status in InboxStatus])
    parser.add_argument("--limit", type=positive_int, default=50, help="default 50")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    replay = parser.add_mutually_exclusive_group()
    replay.add_argument("--replay-dead", action="store_true", help="replay every dead event")
    replay.add_argument(
        "--replay", type=int, nargs="+", metavar="ID", default=[], help="replay these dead events"
    )
    serve = "serve the inbox's metrics on /metrics (and /healthz, /readyz) until stopped"
    parser.add_argument("--metrics-port", type=port_number, metavar="P", help=serve)
    parser.add_argument("--metrics-host", default="0.0.0.0", metavar="HOST", help="default 0.0.0.0")
    purge = (
        "delete done events finished more than DAYS days ago (keep it above the "
        "sender's retry window: a purged event's redelivery is new)"
    )
    parser.add_argument("--purge-older-than", type=_days, metavar="DAYS", help=purge)


def _days(text: str) -> timedelta:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a number of days") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return timedelta(days=value)


def _open(db: str) -> WebhookInbox:
    """The inbox at ``db`` (a path or a DSN), refusing to create one. Anything with
    ``://`` is a URL: a scheme other than PostgreSQL's is a ``ConfigurationError``."""
    if looks_like_url(db):
        from ..postgres import PostgresInbox

        return PostgresInbox(db, create=False)
    return WebhookInbox(db, create=False)


async def run_inbox_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    if args.metrics_port is not None:
        from ._inbox_exporter import run_exporter

        return await run_exporter(args, _open, out)
    try:
        inbox = _open(args.db)
        await inbox.__aenter__()
    except (InboxError, ConfigurationError, StorageError) as exc:
        print(f"avaturn inbox: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = await _act(inbox, args)
    except (sqlite3.Error, StorageError) as exc:
        print(f"avaturn inbox: database error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await inbox.aclose()
    if args.json:
        _print_json(out, report)
    else:
        _print_text(out, redact_location(args.db), report)  # a DSN without its password
    return EXIT_FAILED if report.refused else EXIT_OK


@attrs.frozen(kw_only=True)
class _Report:
    """What one ``avaturn inbox`` run did and found."""

    counts: dict[str, int]
    records: Sequence[InboxRecord]
    replayed: Sequence[int]
    refused: Sequence[int]
    """``--replay`` ids that were not dead."""
    purged: int | None
    """Done events purged, or ``None`` without ``--purge-older-than``."""


async def _act(inbox: WebhookInbox, args: argparse.Namespace) -> _Report:
    """Replay and purge as ``args`` ask, then list (so the listing shows their effect)."""
    replayed, refused = await _replay(inbox, args)
    purged = None
    if args.purge_older_than is not None:
        purged = await inbox.purge(older_than=args.purge_older_than)
    counts = await inbox.counts()
    records = await inbox.list(status=args.status, limit=args.limit)
    return _Report(
        counts=counts, records=records, replayed=replayed, refused=refused, purged=purged
    )


async def _replay(
    inbox: WebhookInbox, args: argparse.Namespace
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(replayed ids, requested ids that were not dead)."""
    if args.replay_dead:
        return await inbox.replay(all_dead=True), ()
    if not args.replay:
        return (), ()
    replayed = await inbox.replay(args.replay)
    refused = tuple(i for i in dict.fromkeys(args.replay) if i not in replayed)
    return replayed, refused


def _print_json(out: TextIO, report: _Report) -> None:
    document = {
        "counts": report.counts,
        "events": [record.to_dict() for record in report.records],
        "replayed": list(report.replayed),
        "not_replayed": list(report.refused),
        "purged": report.purged,
    }
    json.dump(document, out, indent=2)
    out.write("\n")


def _print_text(out: TextIO, db: str, report: _Report) -> None:
    counts = report.counts
    summary = ", ".join(f"{counts[status.value]} {status.value}" for status in InboxStatus)
    print(f"{db}: {summary}", file=out)
    if report.purged is not None:
        print(f"purged {report.purged} done event(s)", file=out)
    if report.replayed:
        print(f"replayed {len(report.replayed)}: {' '.join(map(str, report.replayed))}", file=out)
    if report.refused:
        print(f"not dead, not replayed: {' '.join(map(str, report.refused))}", file=out)
    out.write(format_records(report.records))


def format_records(records: Sequence[InboxRecord]) -> str:
    """A plain-text table of ``records`` (empty when there are none)."""
    if not records:
        return ""
    rows = [("ID", "STATUS", "ATTEMPTS", "EVENT", "RECEIVED (UTC)", "WEBHOOK-ID", "LAST ERROR")]
    for record in records:
        rows.append(
            (
                str(record.id),
                record.status.value,
                str(record.attempts),
                record.event_type,
                record.received_at.strftime("%Y-%m-%d %H:%M:%S"),
                record.webhook_id or "-",
                record.last_error or "",
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        # The last column (the error) is not padded: it can be long.
        lines.append("  ".join([*padded, row[-1]]).rstrip() + "\n")
    return "".join(lines)
