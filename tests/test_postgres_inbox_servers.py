"""PostgresInbox behind each receiver: aiohttp's make_handler and the ASGI app under uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from avaturn_async.postgres import PostgresInbox
from avaturn_async.testing import make_render_ready, make_webhook_secret, sign_webhook
from avaturn_async.webhooks import Event, WebhookRouter, WebhookVerifier
from avaturn_async.webhooks.aiohttp import make_handler
from avaturn_async.webhooks.asgi import WebhookApp
from tests.support import uvicorn_server

SECRET = make_webhook_secret()


@pytest.fixture(params=["asgi", "aiohttp"])
async def receiver_url(request: pytest.FixtureRequest, postgres_dsn: str) -> AsyncIterator[str]:
    """A receiver storing into a PostgresInbox on ``postgres_dsn``; its URL."""
    verifier = WebhookVerifier(SECRET)
    if request.param == "asgi":
        # uvicorn runs its own event loop: the app's inbox is opened (and used) there.
        with uvicorn_server("/hooks") as (url, holder):
            holder.target = WebhookApp(verifier, WebhookRouter(), inbox=PostgresInbox(postgres_dsn))
            yield url
        return
    async with PostgresInbox(postgres_dsn) as inbox:
        app = web.Application()
        app.router.add_post("/hooks", make_handler(verifier, WebhookRouter(), inbox=inbox))
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
