"""A FastAPI service that takes Avaturn webhooks into a durable inbox and resolves jobs.

Shows: ``WebhookApp`` served at the exact path ``/webhooks/avaturn`` (no redirect to a
trailing slash), the SQLite ``WebhookInbox`` (each verified delivery is committed,
then answered 202), the inbox worker started in FastAPI's lifespan, and an
``EventHub`` fed by the router so that ``job.wait()`` returns when the webhook comes.

To keep the example self-contained it starts the service with uvicorn on
``WEBHOOK_PORT`` (default 8001), creates one avatar, waits for its ``avatar.ready``
webhook and stops. In your service, run ``uvicorn fastapi_webhooks:app`` instead.
Needs ``pip install fastapi uvicorn``.

Run it against the local emulator, which signs webhooks with its default secret::

    avaturn emulator --port 8080 --webhook-url http://127.0.0.1:8001/webhooks/avaturn &
    export AVATURN_BASE_URL=http://127.0.0.1:8080 AVATURN_API_KEY=emulator-key
    export AVATURN_WEBHOOK_SECRET=whsec_YXZhdHVybi1lbXVsYXRvci13ZWJob29rLXNlY3JldCE=
    python examples/fastapi_webhooks.py

Against Avaturn: set the webhook URL (your public address) and read its signing
secret in the Avaturn developer console. Deliveries are stored in
``WEBHOOK_INBOX`` (default ``webhooks.db``); inspect it with ``avaturn inbox --db``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import uvicorn
from fastapi import FastAPI
from starlette.routing import Route

from avaturn_async import AvaturnClient, EventHub
from avaturn_async.samples import sample_photo_paths
from avaturn_async.webhooks import (
    AvatarReady,
    WebhookInbox,
    WebhookPipeline,
    WebhookRouter,
    WebhookVerifier,
)
from avaturn_async.webhooks.asgi import WebhookApp

verifier = WebhookVerifier(os.environ["AVATURN_WEBHOOK_SECRET"])
router = WebhookRouter()
hub = EventHub()
hub.attach(router)  # jobs waiting in this process see every dispatched event
inbox = WebhookInbox(os.environ.get("WEBHOOK_INBOX", "webhooks.db"))
pipeline = WebhookPipeline(verifier, router, inbox=inbox)  # every receiver option lives here


@router.on(AvatarReady)
async def avatar_ready(event: AvatarReady) -> None:
    # Your own work goes here (it must be idempotent: delivery is at least once).
    print(f"webhook: avatar {event.avatar_id} {event.status}")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with inbox.worker(router, poll_interval=0.2):  # dispatches stored deliveries
        yield


app = FastAPI(lifespan=lifespan)
# A route, not app.mount(): a mount answers POST /webhooks/avaturn with a 307 redirect
# to /webhooks/avaturn/, which a sender that does not follow redirects never passes.
# (Route() rather than app.add_route(), whose signature type checkers read as
# request-handler only.)
app.router.routes.append(Route("/webhooks/avaturn", WebhookApp(pipeline), methods=["POST"]))


async def main() -> None:
    port = int(os.environ.get("WEBHOOK_PORT", "8001"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
            await anyio.sleep(0.05)
        async with AvaturnClient(event_hub=hub) as client:
            user = await client.users.create()
            frontal, side_1, side_2 = sample_photo_paths()
            job = await client.avatars.create_from_photos(
                user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="female"
            )
            with anyio.fail_after(600):
                ready = await job.wait()  # resolved by the webhook, through the inbox
            print(f"job resolved: avatar {ready.avatar_id} {ready.status}")
        server.should_exit = True


if __name__ == "__main__":
    anyio.run(main)
