"""PostgresInbox under the faults a review found: a claim's answer lost after its
commit, connection slots exhausted while outcomes are recorded, a delivery
PostgreSQL cannot store. Against a real server (through a proxy where the fault
is on the wire)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import anyio
import asyncpg
import pytest
from aiohttp import web

from avaturn_async._events import event_to_dict
from avaturn_async.postgres import (
    PostgresConnector,
    PostgresIdempotencyStore,
    PostgresInbox,
    PostgresInboxStore,
)
from avaturn_async.testing import make_render_ready, make_webhook_secret, sign_webhook
from avaturn_async.webhooks import (
    Delivery,
    Event,
    UnstorableDeliveryError,
    WebhookPipeline,
    WebhookRouter,
    WebhookVerifier,
)
from avaturn_async.webhooks.aiohttp import make_handler
from tests.inbox_support import eventually
from tests.pg_proxy import PgProxy
from tests.pg_server import PostgresServer

SECRET = make_webhook_secret()


def delivery(n: int, *, event_type: str = "render.ready") -> Delivery:
    return Delivery(
        dedupe_key=f"id:msg_{n}",
        webhook_id=f"msg_{n}",
        webhook_timestamp=None,
        event_type=event_type,
        body=json.dumps(event_to_dict(make_render_ready())).encode(),
        received_at=time.time(),
    )


@pytest.fixture
async def proxy(postgres_dsn: str) -> AsyncIterator[PgProxy]:
    proxy = await PgProxy(postgres_dsn).start()
    yield proxy
    await proxy.aclose()


async def rows(dsn: str) -> dict[int, tuple[str | None, int]]:
    """id -> (claim token, attempts) of every inbox row."""
    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetch("SELECT id, claim_token, attempts FROM avaturn_webhook_inbox")
    finally:
        await conn.close()
    return {row["id"]: (row["claim_token"], row["attempts"]) for row in found}


# -- a claim whose answer is lost -------------------------------------------------------


async def test_a_claim_whose_answer_is_lost_returns_the_rows_it_took_counted_once(
    postgres_dsn: str, proxy: PgProxy
) -> None:
    store = PostgresInboxStore(proxy.dsn())
    try:
        ids = [await store.insert(delivery(n)) for n in range(3)]
        proxy.lose_answer_to(b"WITH due AS")  # the claim's statement, once
        claims = await store.claim(
            now=time.time() + 1, lease=30, limit=2, max_attempts=8, token="tok-1"
        )
    finally:
        await store.aclose()
    assert proxy.answers_lost == 1
    assert [(c.id, c.attempts) for c in claims] == [(ids[0], 1), (ids[1], 1)]
    assert await rows(postgres_dsn) == {
        ids[0]: ("tok-1", 1),
        ids[1]: ("tok-1", 1),
        ids[2]: (None, 0),
    }


async def test_a_lost_expiry_step_does_not_lose_the_claim_it_follows(
    postgres_dsn: str, proxy: PgProxy
) -> None:
    store = PostgresInboxStore(proxy.dsn())
    try:
        ids = [await store.insert(delivery(n)) for n in range(2)]
        proxy.lose_answer_to(b"attempts >= $3")  # the dead-lettering of expired claims
        claims = await store.claim(
            now=time.time() + 1, lease=30, limit=5, max_attempts=8, token="tok-2"
        )
    finally:
        await store.aclose()
    assert proxy.answers_lost == 1
    assert [c.id for c in claims] == ids
    assert await rows(postgres_dsn) == {ids[0]: ("tok-2", 1), ids[1]: ("tok-2", 1)}


# -- saturated connection slots ---------------------------------------------------------


@pytest.fixture
def small_server() -> Iterator[PostgresServer]:
    """A server of 20 connection slots, which a test can fill."""
    # No server is a failure, not a skip: PostgreSQL is on every machine of ours.
    server = PostgresServer(max_connections=20).start()
    try:
        yield server
    finally:
        server.stop()


async def fill_slots(dsn: str) -> list[asyncpg.Connection]:
    """Open connections until the server refuses one; they hold every free slot."""
    held: list[asyncpg.Connection] = []
    while True:
        try:
            held.append(await asyncpg.connect(dsn))
        except asyncpg.TooManyConnectionsError:
            return held


async def close_all(connections: list[asyncpg.Connection]) -> None:
    for conn in connections:
        await conn.close()


async def test_an_operation_waits_for_a_pooled_connection_when_the_server_is_full(
    small_server: PostgresServer,
) -> None:
    async with PostgresConnector(small_server.dsn, pool_size=3) as connector:
        held = connector.acquire()
        await held.__aenter__()  # the pool's one live connection, in use
        fillers = await fill_slots(small_server.dsn)
        answers: list[int] = []
        try:
            async with anyio.create_task_group() as group:

                async def query() -> None:
                    answers.append(
                        await connector.run("a query", lambda conn: conn.fetchval("SELECT 7"))
                    )

                group.start_soon(query)
                await anyio.sleep(0.3)  # the query is waiting, not failing
                assert answers == []
                await held.__aexit__(None, None, None)
        finally:
            await close_all(fillers)
    assert answers == [7]
    assert connector.outage.failures == 0  # no operation failed for want of a slot


@pytest.mark.slow
async def test_outcomes_recorded_while_slots_are_exhausted_do_not_dispatch_twice(
    small_server: PostgresServer,
) -> None:
    dsn, name = small_server.dsn, "avaturn-saturation"
    started, finish, runs = anyio.Event(), anyio.Event(), list[str]()
    router = WebhookRouter()

    @router.on_any
    async def handle(event: Event) -> None:
        runs.append(event.event)
        started.set()
        await finish.wait()

    admin = await asyncpg.connect(dsn)
    async with PostgresConnector(dsn, application_name=name) as connector:
        inbox = PostgresInbox(connector)
        await inbox.postgres_store.insert(delivery(1))
        async with inbox.worker(router, lease=12, poll_interval=0.2):
            with anyio.fail_after(10):
                await started.wait()
            # The worker's connections die and every slot is taken by others: its
            # "done" cannot get a connection for longer than the old 5 s budget.
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = $1", name,
            )
            fillers = await fill_slots(dsn)
            finish.set()
            await anyio.sleep(7)
            await close_all(fillers)

            async def done() -> bool:
                return (await inbox.counts())["done"] == 1

            await eventually(done, deadline=20)
    await admin.close()
    assert connector.outage.failures > 0  # "done" did meet a full server
    assert runs == ["render.ready"]


# -- a delivery PostgreSQL cannot store -------------------------------------------------


async def test_a_delivery_postgres_cannot_store_fails_alone_and_its_group_commits(
    postgres_dsn: str,
) -> None:
    store = PostgresInboxStore(postgres_dsn)
    await store.open()
    outcomes: dict[int, int | Exception | None] = {}

    async def insert(n: int, item: Delivery) -> None:
        try:
            outcomes[n] = await store.insert(item)
        except UnstorableDeliveryError as exc:
            outcomes[n] = exc

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(insert, 0, delivery(0))  # leads a batch of its own
            for n in range(1, 6):  # wait together: one group, the poison among them
                item = delivery(n, event_type="render.ready\x00" if n == 3 else "render.ready")
                group.start_soon(insert, n, item)
        counts, batches = await store.counts(), store.batches
    finally:
        await store.aclose()
    assert isinstance(outcomes.pop(3), UnstorableDeliveryError)
    assert all(isinstance(found, int) for found in outcomes.values())
    assert (counts["pending"], batches) == (5, 2)


async def test_a_value_refused_by_postgres_alone_is_found_and_refused_alone(
    postgres_dsn: str,
) -> None:
    store = PostgresInboxStore(postgres_dsn)
    good = delivery(1)
    out_of_range = Delivery(  # bigint overflows: refused, though no NUL is in sight
        dedupe_key="id:big", webhook_id="big", webhook_timestamp=2**63,
        event_type="render.ready", body=b"{}", received_at=time.time(),
    )
    try:
        results = await store._insert_batch([good, out_of_range])
        counts = await store.counts()
    finally:
        await store.aclose()
    assert isinstance(results[0], int)
    assert isinstance(results[1], UnstorableDeliveryError)
    assert counts["pending"] == 1


async def test_a_receiver_answers_422_to_a_delivery_postgres_cannot_store(
    postgres_dsn: str,
) -> None:
    poison = event_to_dict(make_render_ready())
    poison["event"] = "render.ready\x00"
    statuses = []
    async with PostgresInbox(postgres_dsn) as inbox:
        app = web.Application()
        app.router.add_post("/hooks", make_handler(
            WebhookPipeline(WebhookVerifier(SECRET), WebhookRouter(), inbox=inbox)
        ))
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"
        try:
            async with aiohttp.ClientSession() as session:
                payloads: list[bytes | Event] = [json.dumps(poison).encode(), make_render_ready()]
                for n, payload in enumerate(payloads):
                    body, headers = sign_webhook(payload, SECRET, msg_id=f"msg_{n}")
                    async with session.post(url, data=body, headers=headers) as answer:
                        statuses.append((answer.status, (await answer.json())["error"]
                                         if answer.status >= 400 else None))
        finally:
            await runner.cleanup()
        counts = await inbox.counts()
    assert statuses == [(422, "unstorable"), (202, None)]
    assert counts["pending"] == 1


async def test_the_duplicate_guard_guards_a_key_holding_a_nul_like_any_other(
    postgres_dsn: str,
) -> None:
    guard = PostgresIdempotencyStore(postgres_dsn)
    try:
        first = await guard.seen_or_mark("id:msg\x00a")
        again = await guard.seen_or_mark("id:msg\x00a")
        other = await guard.seen_or_mark("id:msg\x00b")
    finally:
        await guard.aclose()
    assert (first, again, other) == (False, True, False)
