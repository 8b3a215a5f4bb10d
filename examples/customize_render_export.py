"""Customize an avatar, render a picture of it and export the 3D model, downloading both.

Shows: ``set_customization`` with an asset id, ``renders.create`` and
``exports.create`` jobs resolved by webhooks through an ``EventHub``, and
``client.download`` fetching the temporary file URLs at once (written under a
temporary name and renamed only when whole). A render can only be awaited through
webhooks (no endpoint reports it), so this script runs a small aiohttp receiver on
``WEBHOOK_PORT`` (default 8001).

Run it against the local emulator, which signs webhooks with its default secret::

    avaturn emulator --port 8080 --webhook-url http://127.0.0.1:8001/webhooks/avaturn &
    export AVATURN_BASE_URL=http://127.0.0.1:8080 AVATURN_API_KEY=emulator-key
    export AVATURN_WEBHOOK_SECRET=whsec_YXZhdHVybi1lbXVsYXRvci13ZWJob29rLXNlY3JldCE=
    python examples/customize_render_export.py avatar-files/

Against Avaturn: set the webhook URL (reachable from the internet) and read its
signing secret in the Avaturn developer console, pick an asset id from your Avaturn
asset catalog (``AVATURN_ASSET_ID``), and pass three photos after the folder.
Without ``AVATURN_ASSET_ID`` the emulator's sample T-shirt is used.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio

from avaturn_async import (
    AssetSlot,
    AssetSlots,
    AvaturnClient,
    EventHub,
    ExternalAvatarCustomization,
)
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import AvaturnEmulator
from avaturn_async.webhooks import WebhookPipeline, WebhookRouter, WebhookVerifier
from avaturn_async.webhooks.aiohttp import serve_webhooks

ASSET_ID = os.environ.get("AVATURN_ASSET_ID", AvaturnEmulator.SAMPLE_ASSETS["clothing"])


async def main(folder: Path, photos: list[str]) -> None:
    frontal, side_1, side_2 = photos or [str(path) for path in sample_photo_paths()]
    verifier = WebhookVerifier(os.environ["AVATURN_WEBHOOK_SECRET"])
    router = WebhookRouter()
    hub = EventHub()
    hub.attach(router)  # every verified event reaches the job waiting for it
    port = int(os.environ.get("WEBHOOK_PORT", "8001"))
    pipeline = WebhookPipeline(verifier, router)
    async with serve_webhooks(pipeline, port=port), AvaturnClient(event_hub=hub) as client:
        user = await client.users.create()
        avatar = await client.avatars.create_from_photos(
            user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="male"
        )
        with anyio.fail_after(600):
            await avatar.wait()
            await client.avatars.set_customization(
                avatar.avatar_id,
                ExternalAvatarCustomization(assets=AssetSlots(clothing=AssetSlot(id=ASSET_ID))),
            )
            render = await client.renders.create(
                avatar.avatar_id, scene="common/preview", format="png"
            )
            rendered = await render.wait()
            export = await client.exports.create(avatar.avatar_id)
            exported = await export.wait()
        # The URLs are pre-signed and expire: download them now.
        files = ((rendered.render_url, "preview.png"), (exported.export_url, "avatar.glb"))
        for url, name in files:
            assert url is not None  # set on success; a failure raised in wait()
            written = await client.download(url, folder / name)  # whole, or an error
            print(f"{name}: {written.size} bytes in {written.path}")


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "avatar-files")
    out.mkdir(parents=True, exist_ok=True)
    anyio.run(main, out, sys.argv[2:])
