"""Ordered dispatch: events per second with each avatar's events in order, vs unordered.

Run: ``.venv/bin/python benchmarks/ordering.py [--quick] [--dsn postgresql://...]
[--backend sqlite|postgres|both]`` (about 1.5 min; ``--quick`` ~40 s). Without
``--dsn`` (or ``AVATURN_TEST_POSTGRES_DSN``) a throwaway PostgreSQL server is
started with ``tests/pg_server.py``.

For each backend (a SQLite file, a PostgreSQL database), two inboxes, each with
three worker processes (``concurrency=4`` each, so 12 handlers at once) whose
handlers take 20 ms (``anyio.sleep``). PostgreSQL workers are woken by
``NOTIFY`` and poll every second (the default); SQLite workers in another
process than the receiver learn of new deliveries only by polling, so they poll
every 0.1 s (``--sqlite-poll``): with the default 1 s, each round would mostly
time how long the workers take to notice it (both sides alike).

* **ordered**: deliveries stored with the default ``order_by`` (the avatar id):
  each avatar's events run one at a time, in the order stored;
* **unordered**: ``order_by=None``: every due event may run at once.

Each round stores 50 avatars x 6 events in six waves (every avatar once per
wave, in a shuffled order; the workers already running and idle) and times
until none is pending (a count every 10 ms). Rounds alternate the sides (order
reversed every round); the figure is the median of the per-round ratios
ordered / unordered. Target: ordered at least 0.8x unordered.

Then, for information, what events held back behind one avatar cost every other
claim: one store per backend (no workers) holds one avatar's first event and N
events behind it, and 200 other avatars' events; the time of one claim and its
``complete``, averaged over 50, with that first event waiting for a retry (the
events behind it are then not due before it, and out of the claims' way) or
running (each claim walks past them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avaturn_async.postgres import PostgresInbox
from avaturn_async.testing import make_render_ready, sign_webhook
from avaturn_async.webhooks import (
    Delivery,
    InboxStore,
    SQLiteInboxStore,
    WebhookInbox,
    by_avatar,
)
from benchmarks.inbox import REPO_ROOT, SECRET, paired_ratio, stop_receiver
from benchmarks.scale_inbox import fresh_database, postgres
from tests.pg_server import DSN_ENV

AVATARS = 50
PER_AVATAR = 6
WORKERS = 3
WORKER_CONCURRENCY = 4
HANDLER_SECONDS = 0.020
TARGET = 0.8
POSTGRES_POLL = 1.0  # the worker's default: NOTIFY wakes it

WORKER = """\
import sys
import anyio
from avaturn_async.webhooks import WebhookInbox, WebhookRouter

async def main() -> None:
    db, handler_seconds, concurrency = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    poll_interval = float(sys.argv[4])
    if db.startswith("postgresql://"):
        from avaturn_async.postgres import PostgresInbox
        inbox = PostgresInbox(db)
    else:
        inbox = WebhookInbox(db)
    router = WebhookRouter()

    @router.on_any
    async def handle(event) -> None:
        await anyio.sleep(handler_seconds)

    async with inbox, inbox.worker(router, concurrency=concurrency, poll_interval=poll_interval):
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)   # until the parent closes stdin

anyio.run(main)
"""


async def start_workers(database: str, poll_interval: float) -> list[asyncio.subprocess.Process]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    workers = []
    for _ in range(WORKERS):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            database,
            str(HANDLER_SECONDS),
            str(WORKER_CONCURRENCY),
            str(poll_interval),
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


def open_inbox(database: str, *, ordered: bool) -> WebhookInbox:
    """The receiving side's inbox: ordered by avatar, or not ordered at all."""
    order_by = by_avatar if ordered else None
    if database.startswith("postgresql://"):
        return PostgresInbox(database, order_by=order_by)
    return WebhookInbox(database, order_by=order_by)


async def dispatch_rate(inbox: WebhookInbox, round_no: int) -> float:
    """Store 50 avatars x 6 events in waves; events done per second until none is pending."""
    waves = []
    for n in range(PER_AVATAR):
        avatars = list(range(AVATARS))
        random.shuffle(avatars)
        events = [
            make_render_ready(avatar_id=f"r{round_no}-a{a}", render_id=f"r{round_no}-a{a}-{n}")
            for a in avatars
        ]
        waves.append([(*sign_webhook(event, SECRET), event) for event in events])
    started = time.perf_counter()
    for wave in waves:
        await asyncio.gather(*(inbox.add(body, headers, event) for body, headers, event in wave))
    while (await inbox.counts())["pending"]:  # noqa: ASYNC110 (the state is in the database)
        await asyncio.sleep(0.01)
    return AVATARS * PER_AVATAR / (time.perf_counter() - started)


async def compare(
    databases: dict[str, str], *, rounds: int, poll_interval: float
) -> dict[str, list[float]]:
    """Events/s of each side per round (``ordered``, ``unordered``), interleaved."""
    inboxes = {side: open_inbox(db, ordered=side == "ordered") for side, db in databases.items()}
    for inbox in inboxes.values():
        await inbox.counts()  # install the schema before the workers race for it
    workers = {side: await start_workers(db, poll_interval) for side, db in databases.items()}
    rates: dict[str, list[float]] = {side: [] for side in databases}
    try:
        for inbox in inboxes.values():  # warm-up
            await dispatch_rate(inbox, -1)
        sides = list(databases)
        for round_no in range(rounds):
            for side in sides if round_no % 2 == 0 else sides[::-1]:
                rates[side].append(await dispatch_rate(inboxes[side], round_no))
    finally:
        for processes in workers.values():
            for process in processes:
                await stop_receiver(process)
        for inbox in inboxes.values():
            await inbox.aclose()
    return rates


def held_delivery(name: str, key: str, at: float) -> Delivery:
    body = b'{"event":"render.ready"}'
    return Delivery(
        dedupe_key=name,
        webhook_id=None,
        webhook_timestamp=None,
        event_type="render.ready",
        body=body,
        received_at=at,
        ordering_key=key,
    )


async def claim_cost(store: InboxStore, held_back: int, first_is: str) -> float:
    """Milliseconds per claim and complete with ``held_back`` events behind one avatar."""
    await store.insert(held_delivery("first", "stuck", 1.0))
    for start in range(0, held_back, 500):
        batch = range(start, min(start + 500, held_back))
        await asyncio.gather(*(store.insert(held_delivery(f"s{n}", "stuck", 2.0)) for n in batch))
    (first,) = await store.claim(now=3, lease=3600, limit=1, max_attempts=8, token="first")
    if first_is == "waiting for a retry":
        await store.fail(first, now=3, error="boom", retry_at=1e9)
    others = range(200)
    await asyncio.gather(*(store.insert(held_delivery(f"o{n}", f"a{n}", 4.0)) for n in others))
    started = time.perf_counter()
    for n in range(50):
        (claimed,) = await store.claim(now=5, lease=30, limit=1, max_attempts=8, token=f"t{n}")
        await store.complete(claimed, now=5)
    return (time.perf_counter() - started) / 50 * 1000


async def head_of_line(backend: str, server_dsn: str | None, sizes: Sequence[int]) -> None:
    print(f"\n{backend}: ms per claim and complete, N events held back behind one avatar")
    for first_is in ("waiting for a retry", "running"):
        costs = []
        for held_back in sizes:
            if server_dsn is None:
                with tempfile.TemporaryDirectory() as tmp:
                    sqlite = SQLiteInboxStore(Path(tmp) / "inbox.db")
                    costs.append(await claim_cost(sqlite, held_back, first_is))
                    sqlite.close()
            else:
                pg = PostgresInbox(await fresh_database(server_dsn)).postgres_store
                costs.append(await claim_cost(pg, held_back, first_is))
                await pg.aclose()
        cells = "  ".join(f"N={n:,}: {cost:6.2f}" for n, cost in zip(sizes, costs, strict=True))
        print(f"   first event {first_is:<20} {cells}")


def report(backend: str, rates: dict[str, list[float]], poll_interval: float) -> float:
    ratio = paired_ratio(rates["ordered"], rates["unordered"])
    rounds = len(rates["ordered"])
    print(f"\n{backend}: {rounds} paired rounds, workers polling every {poll_interval:g} s")
    print(f"   ordered by avatar   {statistics.median(rates['ordered']):>8,.0f} events/s")
    print(f"   unordered           {statistics.median(rates['unordered']):>8,.0f} events/s")
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"   ordered / unordered: {ratio:.2f}x  ({verdict} target {TARGET}x)")
    return ratio


async def run(backends: Sequence[str], dsn: str | None, rounds: int, sqlite_poll: float) -> None:
    sizes = (0, 1_000) if rounds < 9 else (0, 1_000, 10_000)
    ceiling = WORKERS * WORKER_CONCURRENCY / HANDLER_SECONDS
    print(
        f"{WORKERS} worker processes x concurrency {WORKER_CONCURRENCY}, "
        f"{HANDLER_SECONDS * 1000:.0f} ms handlers (at most {ceiling:,.0f} events/s); "
        f"{AVATARS} avatars x {PER_AVATAR} events per round"
    )
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as tmp:
            files = {side: str(Path(tmp) / f"{side}.db") for side in ("ordered", "unordered")}
            rates = await compare(files, rounds=rounds, poll_interval=sqlite_poll)
            report("SQLite", rates, sqlite_poll)
        await head_of_line("SQLite", None, sizes)
    if "postgres" in backends:
        with postgres(dsn or os.environ.get(DSN_ENV)) as server_dsn:
            databases = {
                side: await fresh_database(server_dsn) for side in ("ordered", "unordered")
            }
            rates = await compare(databases, rounds=rounds, poll_interval=POSTGRES_POLL)
            report("PostgreSQL", rates, POSTGRES_POLL)
            await head_of_line("PostgreSQL", server_dsn, sizes)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--dsn", help="a PostgreSQL server to use (its databases are added)")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--sqlite-poll", type=float, default=0.1, help="SQLite workers' poll_interval (0.1)"
    )
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    asyncio.run(run(backends, args.dsn, 5 if args.quick else 9, args.sqlite_poll))


if __name__ == "__main__":
    main()
