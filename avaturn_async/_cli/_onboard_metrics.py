"""``avaturn onboard ... --metrics-port P``: the run's metrics and probes while it lasts.

``/readyz`` asks the run's journal database: a trivial query on the PostgreSQL
journal's pool, or a read of the SQLite journal file (in a worker thread).
"""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import anyio.to_thread

from ..batch import JournalStore
from ._metrics_server import install_prometheus, serving_metrics

__all__ = ["add_metrics_arguments", "onboard_metrics"]


def add_metrics_arguments(add: Any, port_type: Any) -> None:
    """``--metrics-port`` and ``--metrics-host`` for ``avaturn onboard``."""
    add("--metrics-port", type=port_type, metavar="P",
        help="serve metrics on /metrics (and /healthz, /readyz) while the run lasts "
        "(0 picks a free port; needs the otel extra)")  # fmt: skip
    add("--metrics-host", default="0.0.0.0", metavar="HOST",
        help="address the metrics server binds (default 0.0.0.0)")  # fmt: skip


def _read_sqlite(path: Path) -> None:
    """One trivial read of the journal file, without creating it (a new journal is
    created by the run a moment later: nothing to read yet is no fault). SQLite's own
    busy timeout bounds it, as a worker thread cannot be cancelled."""
    if not path.exists():
        return
    read_only = f"{path.absolute().as_uri()}?mode=ro"
    with closing(sqlite3.connect(read_only, uri=True, timeout=1.0)) as connection:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()


def _journal_check(journal: str | JournalStore) -> Any:
    if not isinstance(journal, str):
        ping = getattr(getattr(journal, "connector", None), "ping", None)
        return ping if ping is not None else journal.status  # another store: any answer will do
    return partial(anyio.to_thread.run_sync, _read_sqlite, Path(journal))


@asynccontextmanager
async def onboard_metrics(
    args: argparse.Namespace, journal: str | JournalStore, out: TextIO
) -> AsyncIterator[None]:
    """Serve the metrics for the block when ``--metrics-port`` is given."""
    if args.metrics_port is None:
        yield
        return
    install_prometheus("avaturn-onboard")
    checks = {"journal": _journal_check(journal)}
    async with serving_metrics(args.metrics_host, args.metrics_port, checks) as url:
        print(f"metrics on {url}/metrics (also /healthz, /readyz)", file=out)
        out.flush()
        yield
