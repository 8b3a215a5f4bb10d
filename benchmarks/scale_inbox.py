"""The webhook inbox on PostgreSQL: receiving and dispatching at scale.

Run: ``.venv/bin/python benchmarks/scale_inbox.py [--quick] [--dsn postgresql://...]``
(about 1.5 min; ``--quick`` ~30 s). Without ``--dsn`` (or
``AVATURN_TEST_POSTGRES_DSN``) a throwaway server is started with
``tests/pg_server.py``. ``benchmarks/scale.py`` runs this as its inbox section.

1. **Receiving**: deliveries acknowledged per second with 32 concurrent
   senders (the load generator of ``benchmarks/inbox.py``), an aiohttp receiver
   process with the SQLite inbox (WAL, ``synchronous=FULL``) vs one with
   ``PostgresInbox`` (``synchronous_commit=on``): both commit every delivery
   durably before its 202, both group-commit. Paired, interleaved rounds; the
   figure is the median of the per-round ratios. Target: PostgreSQL ≥ 0.5x SQLite.
2. **Dispatching**: events dispatched per second by handlers that take 20 ms
   (``anyio.sleep``), one worker process vs three on one ``PostgresInbox`` (each
   worker with its default ``concurrency=1``). Each round stores a batch of
   events at once (the workers are already running and idle, woken by
   ``NOTIFY``) and times until none is pending (a count on the pending-rows
   index, every 10 ms). Two databases, one per side, so the sides never share
   rows; rounds alternate. Target: three ≥ 2.5x one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg

from avaturn_async.postgres import PostgresInbox
from avaturn_async.testing import make_render_ready, sign_webhook
from benchmarks.inbox import (
    CONCURRENCY,
    REPO_ROOT,
    SECRET,
    paired_ratio,
    paired_rounds,
    start_receiver,
    stop_receiver,
)
from tests.pg_server import DSN_ENV, PostgresServer

HANDLER_SECONDS = 0.020
WORKER_CONCURRENCY = 1  # the worker's default

WORKER = """\
import sys
import anyio
from avaturn_async.postgres import PostgresInbox
from avaturn_async.webhooks import WebhookRouter

async def main() -> None:
    dsn, handler_seconds, concurrency = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    router = WebhookRouter()

    @router.on_any
    async def handle(event) -> None:
        await anyio.sleep(handler_seconds)

    async with PostgresInbox(dsn) as inbox:
        async with inbox.worker(router, concurrency=concurrency, poll_interval=1.0):
            print("ready", flush=True)
            await anyio.to_thread.run_sync(sys.stdin.read)   # until the parent closes stdin

anyio.run(main)
"""


@contextmanager
def postgres(dsn: str | None) -> Iterator[str]:
    """The given server's DSN, or a throwaway server's for the duration."""
    if dsn:
        yield dsn
        return
    server = PostgresServer().start()
    try:
        yield server.dsn
    finally:
        server.stop()


async def fresh_database(server_dsn: str) -> str:
    """A new, empty database on the server; its DSN."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"{server_dsn.rsplit('/', 1)[0]}/{name}"


async def receiving(server_dsn: str, *, rounds: int, per_round: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dsn = await fresh_database(server_dsn)
        async with PostgresInbox(dsn):  # install the schema before timing
            pass
        sqlite_process, sqlite_url = await start_receiver("sqlite", str(Path(tmp) / "inbox.db"))
        pg_process, pg_url = await start_receiver("postgres", dsn)
        try:
            rates = await paired_rounds(
                {"sqlite": [sqlite_url], "postgres": [pg_url]}, rounds=rounds, per_round=per_round
            )
        finally:
            await stop_receiver(sqlite_process)
            await stop_receiver(pg_process)
    ratio = paired_ratio(rates["postgres"], rates["sqlite"])
    print(
        f"\n1. receiving: {CONCURRENCY} concurrent senders, {rounds} paired rounds of {per_round}"
    )
    print(f"   SQLite inbox (FULL)      {statistics.median(rates['sqlite']):>8,.0f} acks/s")
    print(f"   PostgresInbox            {statistics.median(rates['postgres']):>8,.0f} acks/s")
    verdict = "meets" if ratio >= 0.5 else "MISSES"
    print(f"   PostgreSQL / SQLite: {ratio:.2f}x  ({verdict} target 0.5x)")


async def start_workers(dsn: str, count: int) -> list[asyncio.subprocess.Process]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    workers = []
    for _ in range(count):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            dsn,
            str(HANDLER_SECONDS),
            str(WORKER_CONCURRENCY),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            cwd=REPO_ROOT,
        )
        assert process.stdout is not None
        if await asyncio.wait_for(process.stdout.readline(), 30) != b"ready\n":
            raise RuntimeError("worker did not start")
        workers.append(process)
    return workers


async def dispatch_rate(inbox: PostgresInbox, pending: asyncpg.Connection, events: int) -> float:
    """Store ``events`` at once; events done per second until none is pending."""
    stored = [make_render_ready() for _ in range(events)]
    deliveries = [(*sign_webhook(event, SECRET), event) for event in stored]
    started = time.perf_counter()
    await asyncio.gather(*(inbox.add(body, headers, event) for body, headers, event in deliveries))
    query = "SELECT count(*) FROM avaturn_webhook_inbox WHERE status = 'pending'"
    while await pending.fetchval(query):  # noqa: ASYNC110 (the state is in the database)
        await asyncio.sleep(0.01)
    return events / (time.perf_counter() - started)


async def dispatching(server_dsn: str, *, rounds: int, events: int) -> None:
    dsns = {"one": await fresh_database(server_dsn), "three": await fresh_database(server_dsn)}
    inboxes = {name: PostgresInbox(dsn) for name, dsn in dsns.items()}
    watchers = {name: await asyncpg.connect(dsn) for name, dsn in dsns.items()}
    workers = {name: await start_workers(dsns[name], n) for name, n in (("one", 1), ("three", 3))}
    rates: dict[str, list[float]] = {"one": [], "three": []}
    try:
        for name, inbox in inboxes.items():  # warm-up
            await dispatch_rate(inbox, watchers[name], events // 4)
        for round_no in range(rounds):
            for name in ("one", "three") if round_no % 2 == 0 else ("three", "one"):
                rates[name].append(await dispatch_rate(inboxes[name], watchers[name], events))
    finally:
        for processes in workers.values():
            for process in processes:
                await stop_receiver(process)
        for inbox in inboxes.values():
            await inbox.aclose()
        for watcher in watchers.values():
            await watcher.close()
    ratio = paired_ratio(rates["three"], rates["one"])
    print(
        f"\n2. dispatching: {HANDLER_SECONDS * 1000:.0f} ms handlers, worker concurrency "
        f"{WORKER_CONCURRENCY}, {rounds} paired rounds of {events} events"
    )
    print(f"   one worker process       {statistics.median(rates['one']):>8,.0f} events/s")
    print(f"   three worker processes   {statistics.median(rates['three']):>8,.0f} events/s")
    verdict = "meets" if ratio >= 2.5 else "MISSES"
    print(f"   three / one: {ratio:.2f}x  ({verdict} target 2.5x)")


async def run(dsn: str | None, quick: bool) -> None:
    """Both sections, against ``dsn`` or a throwaway server."""
    with postgres(dsn or os.environ.get(DSN_ENV)) as server_dsn:
        await receiving(server_dsn, rounds=5 if quick else 9, per_round=1_000 if quick else 3_000)
        await dispatching(server_dsn, rounds=3 if quick else 5, events=150 if quick else 300)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--dsn", help="a PostgreSQL server to use (its databases are added)")
    args = parser.parse_args(argv)
    asyncio.run(run(args.dsn, args.quick))


if __name__ == "__main__":
    main()
