"""A process that uses all five PostgreSQL backends through one connector, hard.

Run as ``python tests/pg_budget_worker.py DSN APPLICATION_NAME SECONDS [separate]``: for
SECONDS it keeps every backend busy at once (webhook deliveries stored and
dispatched by a worker, duplicate-guard marks, hub events published and
awaited, rate-limit pauses shared, journal rows registered, claimed and
advanced), so that its pool is used to the full. It prints ``ready`` once
started and ``done N`` (operations made) at the end. With ``separate``, each
backend is given the DSN instead and opens a connector of its own (for
comparison). The connection tests and ``benchmarks/connections.py`` count its
connections in ``pg_stat_activity`` by APPLICATION_NAME.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
import uuid
from typing import Any

import anyio

from avaturn_async._events import event_to_dict
from avaturn_async.batch import RowEntry, RowState
from avaturn_async.postgres import (
    PostgresConnector,
    PostgresEventHub,
    PostgresGate,
    PostgresIdempotencyStore,
    PostgresInbox,
    PostgresJournal,
)
from avaturn_async.webhooks import AvatarReady, Delivery, WebhookRouter

TASKS = 8
"""Concurrent tasks per backend: more than the pool holds, so the pool is the limit."""


class Load:
    def __init__(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds
        self.operations = 0
        self.tag = uuid.uuid4().hex[:8]
        self.numbers = itertools.count()

    def going(self) -> bool:
        return time.monotonic() < self.until

    async def inbox(self, inbox: PostgresInbox) -> None:
        while self.going():
            n = next(self.numbers)
            body = json.dumps(event_to_dict(AvatarReady(avatar_id=f"a{n}", status="ready")))
            await inbox.store.insert(Delivery(
                dedupe_key=f"id:{self.tag}-{n}", webhook_id=f"{self.tag}-{n}",
                webhook_timestamp=None, event_type="avatar.ready", body=body.encode(),
                received_at=time.time(),
            ))
            self.operations += 1

    async def guard(self, guard: PostgresIdempotencyStore) -> None:
        while self.going():
            await guard.seen_or_mark(f"{self.tag}-{next(self.numbers)}")
            self.operations += 1

    async def hub(self, hub: PostgresEventHub) -> None:
        while self.going():
            avatar_id = f"{self.tag}-{next(self.numbers)}"
            await hub.publish(AvatarReady(avatar_id=avatar_id, status="ready"))
            with anyio.fail_after(30):
                await hub.wait(("avatar", avatar_id))
            self.operations += 1

    async def gate(self, gate: PostgresGate) -> None:
        while self.going():
            gate.close_for(0.01)
            await anyio.sleep(0.05)
            self.operations += 1

    async def journal(self, journal: PostgresJournal) -> None:
        while self.going():
            key = f"{self.tag}-{next(self.numbers)}"
            await journal.register([RowEntry(line=next(self.numbers), key=key)])
            if await journal.claim([key], export=False, retry_failed=False):
                await journal.advance(key, RowState.USER_REQUESTED)
                await journal.release(key)
            self.operations += 1


async def main(dsn: str, application_name: str, seconds: float, mode: str = "shared") -> None:
    connector = PostgresConnector(dsn, application_name=application_name)  # opens on first use
    # "separate": every backend is given the DSN and opens a connector of its own.
    target: Any = connector if mode == "shared" else f"{dsn}?application_name={application_name}"
    try:
        load = await exercise(target, application_name, seconds)
    finally:
        await connector.aclose()
    print(f"done {load.operations}", flush=True)


async def exercise(target: Any, application_name: str, seconds: float) -> Load:
    inbox = PostgresInbox(target)
    guard = PostgresIdempotencyStore(target)
    hub = PostgresEventHub(target)
    gate = PostgresGate(target, scope=application_name)
    journal = await PostgresJournal.open(target)
    await journal.begin_run(application_name)
    load = Load(seconds)
    async with inbox, hub, gate:
        print("ready", flush=True)
        async with inbox.worker(WebhookRouter(), concurrency=TASKS, poll_interval=0.1):
            async with anyio.create_task_group() as group:
                for _ in range(TASKS):
                    group.start_soon(load.inbox, inbox)
                    group.start_soon(load.guard, guard)
                    group.start_soon(load.hub, hub)
                    group.start_soon(load.gate, gate)
                    group.start_soon(load.journal, journal)
    await journal.end_run("finished")
    await journal.aclose()
    await guard.aclose()
    return load


if __name__ == "__main__":
    dsn, name, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    anyio.run(main, dsn, name, seconds, sys.argv[4] if len(sys.argv) > 4 else "shared")
