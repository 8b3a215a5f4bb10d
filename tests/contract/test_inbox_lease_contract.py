"""Lease renewal with a real worker process: a SIGKILLed worker's event is taken over.

Runs against every inbox store (a SQLite file, a PostgreSQL database).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import anyio
import pytest

import avaturn_async
from avaturn_async.webhooks import Event, InboxStatus, WebhookRouter
from tests.inbox_support import deliver, eventually, open_inbox

REPO_ROOT = Path(avaturn_async.__file__).resolve().parents[1]
LEASE = 1.0

WORKER = """\
import sys
import anyio
from avaturn_async.postgres import PostgresInbox, is_postgres_dsn
from avaturn_async.webhooks import WebhookInbox, WebhookRouter

async def main() -> None:
    db, marker, lease = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if db.startswith("postgresql://"):
        from avaturn_async.postgres import PostgresInbox
        inbox = PostgresInbox(db)
    else:
        inbox = WebhookInbox(db)
    router = WebhookRouter()

    @router.on_any
    async def hang(event) -> None:
        with open(marker, "a") as out:   # one line per dispatch, then hang mid-handler
            out.write("dispatched\\n")
        await anyio.sleep_forever()

    async with inbox.worker(router, lease=lease, poll_interval=0.05):
        await anyio.sleep_forever()

anyio.run(main)
"""


def dispatch_count(marker: Path) -> int:
    return len(marker.read_text().splitlines()) if marker.exists() else 0


@pytest.mark.slow
async def test_event_of_a_sigkilled_worker_is_redispatched_after_its_lease(
    tmp_path: Path, inbox_database: str
) -> None:
    script, marker = tmp_path / "worker.py", tmp_path / "marker"
    script.write_text(WORKER)
    async with open_inbox(inbox_database) as inbox:
        await deliver(inbox)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *sys.path])}
    process = await anyio.open_process(
        [sys.executable, str(script), inbox_database, str(marker), str(LEASE)], env=env
    )
    try:

        async def dispatched() -> bool:
            return dispatch_count(marker) == 1

        await eventually(dispatched, deadline=30)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        with anyio.fail_after(10):
            await process.wait()
        await process.aclose()
    router, calls = WebhookRouter(), list[Event]()
    router.on_any(calls.append)
    async with open_inbox(inbox_database) as inbox:
        async with inbox.worker(router, lease=LEASE, poll_interval=0.05):

            async def done() -> bool:
                return (await inbox.counts())["done"] == 1

            await eventually(done, deadline=10 * LEASE)
        (record,) = await inbox.list()
    assert (dispatch_count(marker), len(calls)) == (1, 1)
    assert (record.status, record.attempts) == (InboxStatus.DONE, 2)
