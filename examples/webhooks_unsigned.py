"""Receive Avaturn's webhooks as Avaturn documents them: unsigned, protected by a token in
the URL and by confirming every event with the API before a handler sees it.

Shows: a ``SharedTokenVerifier`` reading the token from the URL's query string (the
URL you register with Avaturn carries it); an ``EventConfirmer`` checking each event
against the API, so that a forged ``avatar.ready`` is answered 204 and never reaches a
handler; an ``export.ready`` handler downloading the model with ``client.download``,
which refuses a URL that points inside your network (here the cloud metadata address,
refused before any packet is sent). Without ``WEBHOOK_TOKEN`` the receiver runs on
confirmation alone (``WebhookPipeline(None, router, confirm=...)``), an explicit choice.

To stay self-contained it serves on ``WEBHOOK_PORT`` (default 8001), creates one
avatar, sends itself a forged event, exports the avatar and stops.

Run it against the local emulator, sending unsigned webhooks to a URL with the token::

    export WEBHOOK_TOKEN=$(python -c "import secrets; print(secrets.token_urlsafe(32))")
    avaturn emulator --port 8080 --unsigned-webhooks --webhook-token "$WEBHOOK_TOKEN" \\
        --webhook-url http://127.0.0.1:8001/webhooks/avaturn &
    export AVATURN_BASE_URL=http://127.0.0.1:8080 AVATURN_API_KEY=emulator-key
    python examples/webhooks_unsigned.py

Against Avaturn: register ``https://your.host/webhooks/avaturn?token=<WEBHOOK_TOKEN>``
as the webhook URL in the developer console, and list the hosts Avaturn's file URLs
come from in ``AVATURN_FILE_HOSTS`` (comma-separated, ``*.example.com`` allowed).
"""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import anyio

from avaturn_async import (
    AssetSlot,
    AssetSlots,
    AvaturnClient,
    ExternalAvatarCustomization,
    UnsafeURLError,
)
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import AvaturnEmulator, event_to_bytes, make_avatar_ready
from avaturn_async.webhooks import (
    AvatarReady,
    EventConfirmer,
    ExportReady,
    SharedTokenVerifier,
    WebhookPipeline,
    WebhookRouter,
)
from avaturn_async.webhooks.aiohttp import serve_webhooks

TOKEN = os.environ.get("WEBHOOK_TOKEN")
FILE_HOSTS = [host for host in os.environ.get("AVATURN_FILE_HOSTS", "").split(",") if host]
SHIRT = AvaturnEmulator.SAMPLE_ASSETS["clothing"]  # use an asset of your catalog


def receiver(client: AvaturnClient, router: WebhookRouter) -> WebhookPipeline:
    """The unsigned receiver: a token in the URL (when set), and confirmation."""
    confirm = EventConfirmer(client, url_hosts=FILE_HOSTS)  # file URLs: these hosts only
    if TOKEN is None:  # confirmation alone: anyone may post, only confirmed events pass
        pipeline = WebhookPipeline(None, router, confirm=confirm)
    else:
        verifier = SharedTokenVerifier(TOKEN, header=None, query_param="token")
        pipeline = WebhookPipeline(verifier, router, confirm=confirm)
    return pipeline


async def forge(url: str, user_id: str) -> int:
    """Post an ``avatar.ready`` for an avatar that does not exist, as an attacker would."""
    forged = make_avatar_ready(user_id=user_id)
    async with aiohttp.ClientSession() as session, session.post(
        url, data=event_to_bytes(forged), headers={"content-type": "application/json"}
    ) as answer:
        return answer.status


async def main() -> None:
    router = WebhookRouter()
    ready = {"avatar": anyio.Event(), "export": anyio.Event()}
    async with AvaturnClient() as client:

        @router.on(AvatarReady)
        async def avatar_ready(event: AvatarReady) -> None:
            print(f"avatar.ready (confirmed by the API): {event.avatar_id} {event.status}")
            ready["avatar"].set()

        @router.on(ExportReady)
        async def save_model(event: ExportReady) -> None:
            if event.export_url is not None:  # a URL on an allowed host (checked)
                written = await client.download(event.export_url, Path("avatar.glb"))
                print(f"export.ready: downloaded {written.size} bytes")
            ready["export"].set()

        pipeline = receiver(client, router)
        port = int(os.environ.get("WEBHOOK_PORT", "8001"))
        async with serve_webhooks(pipeline, port=port) as server:
            await run_flow(client, server.url, ready)
        assert pipeline.confirm is not None
        print(f"confirmation: {dict(pipeline.confirm.counts)}")


async def run_flow(client: AvaturnClient, url: str, ready: dict[str, anyio.Event]) -> None:
    user = await client.users.create()
    frontal, side_1, side_2 = sample_photo_paths()
    avatar = await client.avatars.create_from_photos(
        user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="female"
    )
    with anyio.fail_after(600):
        await ready["avatar"].wait()
    own_url = f"{url}?token={TOKEN}" if TOKEN else url
    print(f"forged avatar.ready: answered {await forge(own_url, user.id)}, not dispatched")
    customization = ExternalAvatarCustomization(assets=AssetSlots(clothing=AssetSlot(id=SHIRT)))
    await client.avatars.set_customization(avatar.avatar_id, customization)
    await client.exports.create(avatar.avatar_id)
    with anyio.fail_after(600):
        await ready["export"].wait()
    try:  # a URL aimed inside your network is refused before connecting
        await client.download("http://169.254.169.254/latest/meta-data/", Path("stolen"))
    except UnsafeURLError as exc:
        print(f"download refused: {exc.host} ({type(exc).__name__})")


if __name__ == "__main__":
    anyio.run(main)
