"""PostgresInbox behind aiohttp and ASGI receivers, its start-up errors; the PG duplicate guard."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from avaturn_async import ConfigurationError
from avaturn_async.postgres import (
    PostgresIdempotencyStore,
    PostgresInbox,
    SchemaVersionError,
    StorageUnavailableError,
)
from avaturn_async.testing import make_render_ready, make_webhook_secret, sign_webhook
from avaturn_async.webhooks import Event, WebhookPipeline, WebhookRouter, WebhookVerifier
from avaturn_async.webhooks.aiohttp import make_handler
from avaturn_async.webhooks.asgi import WebhookApp
from tests.pg_server import free_port
from tests.support import uvicorn_server

SECRET = make_webhook_secret()


@pytest.fixture(params=["asgi", "aiohttp"])
async def receiver_url(request: pytest.FixtureRequest, postgres_dsn: str) -> AsyncIterator[str]:
    """A receiver storing into a PostgresInbox on ``postgres_dsn``; its URL."""
    verifier = WebhookVerifier(SECRET)
    if request.param == "asgi":
        # uvicorn runs its own event loop: the app's inbox is opened (and used) there.
        with uvicorn_server("/hooks") as (url, holder):
            inbox = PostgresInbox(postgres_dsn)
            holder.target = WebhookApp(WebhookPipeline(verifier, WebhookRouter(), inbox=inbox))
            yield url
        return
    async with PostgresInbox(postgres_dsn) as inbox:
        app = web.Application()
        pipeline = WebhookPipeline(verifier, WebhookRouter(), inbox=inbox)
        app.router.add_post("/hooks", make_handler(pipeline))
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"
        await runner.cleanup()


async def test_receiver_stores_a_delivery_once_and_a_worker_elsewhere_dispatches_it(
    receiver_url: str, postgres_dsn: str
) -> None:
    event = make_render_ready()
    statuses = []
    async with aiohttp.ClientSession() as session:
        for _ in range(2):  # a delivery and its redelivery, signed afresh
            body, headers = sign_webhook(event, SECRET, msg_id="msg_once")
            async with session.post(receiver_url, data=body, headers=headers) as answer:
                statuses.append(answer.status)
    router, seen = WebhookRouter(), list[Event]()
    router.on_any(seen.append)
    async with PostgresInbox(postgres_dsn) as worker_side:
        while await worker_side.dispatch_due(router, limit=10):
            pass
        counts = await worker_side.counts()
    assert (statuses, seen) == ([202, 202], [event])
    assert counts == {"pending": 0, "done": 1, "dead": 0}


def test_a_path_given_as_a_dsn_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="not a PostgreSQL DSN"):
        PostgresInbox("/var/lib/webhooks.db")


async def test_an_unreachable_server_fails_at_start_without_the_password() -> None:
    inbox = PostgresInbox(f"postgresql://app:s3cret@127.0.0.1:{free_port()}/inbox")
    with pytest.raises(StorageUnavailableError) as caught:
        async with inbox:
            pass
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in repr(inbox)


async def test_a_schema_newer_than_the_code_is_refused(postgres_dsn: str) -> None:
    async with PostgresInbox(postgres_dsn):
        pass
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute("UPDATE avaturn_schema SET version = 99 WHERE component = 'inbox'")
    finally:
        await conn.close()
    with pytest.raises(SchemaVersionError):
        async with PostgresInbox(postgres_dsn):
            pass


async def test_duplicate_guard_behind_a_receiver_drops_a_redelivery(postgres_dsn: str) -> None:
    router, seen = WebhookRouter(), list[Event]()
    router.on_any(seen.append)
    event = make_render_ready()
    guards = [PostgresIdempotencyStore(postgres_dsn) for _ in range(2)]  # two replicas
    outcomes = []
    for guard in guards:
        pipeline = WebhookPipeline(WebhookVerifier(SECRET), router, store=guard)
        answer = await pipeline.handle(*sign_webhook(event, SECRET, msg_id="msg_same"))
        outcomes.append((answer.status, answer.outcome))
    for guard in guards:
        await guard.aclose()
    assert (outcomes, seen) == ([(204, "processed"), (204, "duplicate")], [event])
