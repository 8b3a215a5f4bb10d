"""An aiohttp.web service that takes Avaturn webhooks into a durable inbox and resolves jobs.

Shows: the receiver added to an aiohttp.web application (``make_app`` of a
``WebhookPipeline`` holding a ``WebhookInbox``: each verified delivery is committed to
SQLite, then answered 202), ``inbox.worker(router)`` dispatching stored deliveries,
and an ``EventHub`` fed by the router so that ``job.wait()`` returns when the webhook
comes. A receiver alone: ``async with serve_webhooks(pipeline, port=8080):``.

To keep the example self-contained it serves on ``WEBHOOK_PORT`` (default 8001),
creates one avatar, waits for its ``avatar.ready`` webhook and stops. In your service,
``web.run_app(app)`` serves the application and the worker runs in its
``cleanup_ctx``.

Run it against the local emulator, which signs webhooks with its default secret::

    avaturn emulator --port 8080 --webhook-url http://127.0.0.1:8001/webhooks/avaturn &
    export AVATURN_BASE_URL=http://127.0.0.1:8080 AVATURN_API_KEY=emulator-key
    export AVATURN_WEBHOOK_SECRET=whsec_YXZhdHVybi1lbXVsYXRvci13ZWJob29rLXNlY3JldCE=
    python examples/aiohttp_webhooks.py

Against Avaturn: set the webhook URL (your public address) and read its signing
secret in the Avaturn developer console. Deliveries are stored in
``WEBHOOK_INBOX`` (default ``webhooks.db``); inspect it with ``avaturn inbox --db``.
"""

from __future__ import annotations

import os

import anyio
from aiohttp import web

from avaturn_async import AvaturnClient, EventHub
from avaturn_async.samples import sample_photo_paths
from avaturn_async.webhooks import (
    AvatarReady,
    WebhookInbox,
    WebhookPipeline,
    WebhookRouter,
    WebhookVerifier,
)
from avaturn_async.webhooks.aiohttp import make_app

verifier = WebhookVerifier(os.environ["AVATURN_WEBHOOK_SECRET"])
router = WebhookRouter()
hub = EventHub()
hub.attach(router)  # jobs waiting in this process see every dispatched event


@router.on(AvatarReady)
async def avatar_ready(event: AvatarReady) -> None:
    # Your own work goes here (it must be idempotent: delivery is at least once).
    print(f"webhook: avatar {event.avatar_id} {event.status}")


async def main() -> None:
    inbox = WebhookInbox(os.environ.get("WEBHOOK_INBOX", "webhooks.db"))
    pipeline = WebhookPipeline(verifier, router, inbox=inbox)  # every receiver option lives here
    app = web.Application()
    app.add_subapp("/webhooks/avaturn", make_app(pipeline))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", int(os.environ.get("WEBHOOK_PORT", "8001"))).start()
        async with inbox.worker(router, poll_interval=0.2), AvaturnClient(event_hub=hub) as client:
            user = await client.users.create()
            frontal, side_1, side_2 = sample_photo_paths()
            job = await client.avatars.create_from_photos(
                user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="male"
            )
            with anyio.fail_after(600):
                ready = await job.wait()  # resolved by the webhook, through the inbox
            print(f"job resolved: avatar {ready.avatar_id} {ready.status}")
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    anyio.run(main)
