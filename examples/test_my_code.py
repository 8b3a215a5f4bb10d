"""Testing your own code with the emulator and the ``avaturn`` pytest plugin.

Shows: the plugin's fixtures (``avaturn_client``, ``avaturn_emulator``,
``avaturn_webhooks``), configuring the emulator through the marker, injecting a
failure with ``fail_next``, and testing your webhook handler with signed deliveries.
The plugin comes with the SDK: no conftest and no pytest configuration are needed.

Run it (no key, no network: every test starts its own emulator on 127.0.0.1)::

    pip install avaturn-async pytest
    python -m pytest examples/test_my_code.py
"""

from __future__ import annotations

import pytest

from avaturn_async import AvaturnClient
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import AvaturnEmulator, WebhookSender, make_avatar_ready
from avaturn_async.webhooks import AvatarReady, WebhookPipeline, WebhookRouter
from avaturn_async.webhooks.aiohttp import serve_webhooks

# ---- your application code (normally imported from your package) -------------------


async def sign_up(client: AvaturnClient) -> tuple[str, str]:
    """Create an Avaturn user and an avatar from photos; return (user id, avatar id)."""
    user = await client.users.create()
    frontal, side_1, side_2 = sample_photo_paths()
    job = await client.avatars.create_from_photos(
        user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="female"
    )
    await job.wait()
    return user.id, job.avatar_id


def make_router(ready_avatars: set[str]) -> WebhookRouter:
    """Your webhook handlers: remember which avatars are ready."""
    router = WebhookRouter()

    @router.on(AvatarReady)
    async def on_ready(event: AvatarReady) -> None:
        if event.succeeded:
            ready_avatars.add(event.avatar_id)

    return router


# ---- your tests ---------------------------------------------------------------------


@pytest.mark.avaturn(processing_delay=0.01)
async def test_sign_up_creates_one_ready_avatar(
    avaturn_client: AvaturnClient, avaturn_emulator: AvaturnEmulator
) -> None:
    user_id, avatar_id = await sign_up(avaturn_client)
    assert avaturn_emulator.avatars[avatar_id].user_id == user_id


@pytest.mark.avaturn(processing_delay=0.01)
async def test_sign_up_survives_a_503_without_a_duplicate_user(
    avaturn_client: AvaturnClient, avaturn_emulator: AvaturnEmulator
) -> None:
    avaturn_emulator.fail_next("users.create", 503)  # the SDK retries it
    await sign_up(avaturn_client)
    assert len(avaturn_emulator.users) == 1


@pytest.mark.avaturn
async def test_webhook_handler_marks_the_avatar_ready(avaturn_webhooks: WebhookSender) -> None:
    ready: set[str] = set()
    event = make_avatar_ready()
    pipeline = WebhookPipeline(avaturn_webhooks.verifier(), make_router(ready))
    async with serve_webhooks(pipeline) as server:
        status = await avaturn_webhooks.deliver(server.url, event)
    assert status == 204
    assert ready == {event.avatar_id}


@pytest.mark.avaturn
async def test_webhook_with_a_bad_signature_is_refused(avaturn_webhooks: WebhookSender) -> None:
    ready: set[str] = set()
    pipeline = WebhookPipeline(avaturn_webhooks.verifier(), make_router(ready))
    async with serve_webhooks(pipeline) as server:
        status = await avaturn_webhooks.deliver(
            server.url, make_avatar_ready(), headers={"webhook-signature": "v1,AAAA"}
        )
    assert status == 401
    assert ready == set()
