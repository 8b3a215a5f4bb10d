"""The emulator delivers webhooks as a real sender does: unsigned if asked, to a URL
carrying a token, and never following a redirect (a 3xx is a failed delivery)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from aiohttp import web
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from avaturn_async import AvaturnClient
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import AvaturnEmulator
from avaturn_async.webhooks import (
    AvatarReady,
    Event,
    EventConfirmer,
    SharedTokenVerifier,
    WebhookPipeline,
    WebhookRouter,
)
from avaturn_async.webhooks.aiohttp import serve_webhooks
from avaturn_async.webhooks.asgi import WebhookApp
from tests.support import uvicorn_in_loop

TOKEN = "emulator-query-token-0123456789"


@asynccontextmanager
async def recorder(redirect: bool = False) -> AsyncIterator[tuple[str, list[web.Request]]]:
    """A receiver on 127.0.0.1 recording each request to ``/hook``; with ``redirect``,
    ``/hook`` answers 307 to ``/hook/`` (recorded there) as a Starlette mount does."""
    seen: list[web.Request] = []

    async def record(request: web.Request) -> web.StreamResponse:
        await request.read()
        seen.append(request)
        if redirect and request.path == "/hook":
            raise web.HTTPTemporaryRedirect("/hook/")
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook", seen
    finally:
        await runner.cleanup()


async def make_avatar(emu: AvaturnEmulator) -> str:
    """Create an avatar from photos on the emulator; its id (its webhook follows)."""
    async with AvaturnClient(emu.api_key, base_url=emu.base_url) as client:
        user = await client.users.create()
        frontal, side_1, side_2 = sample_photo_paths()
        job = await client.avatars.create_from_photos(
            user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="male"
        )
        return job.avatar_id


async def settle(emu: AvaturnEmulator) -> None:
    with anyio.fail_after(10):
        await emu.wait_idle()


async def test_unsigned_deliveries_carry_no_signature_headers() -> None:
    async with recorder() as (url, seen), AvaturnEmulator(
        processing_delay=0.01, webhook_url=url, sign_webhooks=False
    ) as emu:
        await make_avatar(emu)
        await settle(emu)
    [request] = seen
    assert [name for name in request.headers if name.lower().startswith("webhook-")] == []


async def test_signed_deliveries_stay_the_default() -> None:
    async with recorder() as (url, seen), AvaturnEmulator(
        processing_delay=0.01, webhook_url=url
    ) as emu:
        await make_avatar(emu)
        await settle(emu)
    assert "webhook-signature" in seen[0].headers


async def test_a_token_in_the_webhook_url_reaches_the_receiver() -> None:
    async with recorder() as (url, seen), AvaturnEmulator(
        processing_delay=0.01, webhook_url=f"{url}?token={TOKEN}", sign_webhooks=False
    ) as emu:
        await make_avatar(emu)
        await settle(emu)
    assert seen[0].query["token"] == TOKEN


async def test_a_redirect_is_a_failed_delivery_and_is_not_followed() -> None:
    async with recorder(redirect=True) as (url, seen), AvaturnEmulator(
        processing_delay=0.01, webhook_url=url, webhook_max_attempts=3, webhook_retry_delay=0.01
    ) as emu:
        await make_avatar(emu)
        await settle(emu)
        deliveries = emu.webhook_deliveries
    assert [(d.status, d.ok) for d in deliveries] == [(307, False)] * 3
    assert {request.path for request in seen} == {"/hook"}


async def test_a_starlette_mount_loses_every_webhook_a_route_receives_them() -> None:
    outcomes = {}
    for name, wrap in {"mount": Mount, "route": Route}.items():
        router, seen = WebhookRouter(), list[Event]()
        router.on_any(seen.append)
        verifier = SharedTokenVerifier(TOKEN, header=None, query_param="token")
        receiver = WebhookApp(WebhookPipeline(verifier, router))
        app = Starlette(routes=[wrap("/hooks/avaturn", receiver)])
        async with uvicorn_in_loop(app) as url, AvaturnEmulator(
            processing_delay=0.01,
            webhook_url=f"{url}?token={TOKEN}",
            sign_webhooks=False,
            webhook_max_attempts=2,
            webhook_retry_delay=0.01,
        ) as emu:
            await make_avatar(emu)
            await settle(emu)
            outcomes[name] = ([d.status for d in emu.webhook_deliveries], len(seen))
    assert outcomes == {"mount": ([307, 307], 0), "route": ([204], 1)}


@pytest.mark.parametrize("kind", ["aiohttp", "asgi"])
async def test_unsigned_events_with_a_url_token_are_confirmed_end_to_end(kind: str) -> None:
    async with AvaturnEmulator(processing_delay=0.01, sign_webhooks=False) as emu, AvaturnClient(
        emu.api_key, base_url=emu.base_url
    ) as client:
        router, seen = WebhookRouter(), list[AvatarReady]()
        router.on(AvatarReady)(seen.append)
        verifier = SharedTokenVerifier(TOKEN, header=None, query_param="token")
        confirm = EventConfirmer(client, url_hosts=())
        pipeline = WebhookPipeline(verifier, router, confirm=confirm)
        async with serving(kind, pipeline) as url:
            emu.webhook_url = f"{url}?token={TOKEN}"
            avatar_id = await make_avatar(emu)
            await settle(emu)
    assert ([event.avatar_id for event in seen], dict(confirm.counts)) == (
        [avatar_id],
        {"confirmed": 1, "contradicted": 0},
    )


@asynccontextmanager
async def serving(kind: str, pipeline: WebhookPipeline) -> AsyncIterator[str]:
    if kind == "asgi":
        async with uvicorn_in_loop(WebhookApp(pipeline)) as url:
            yield url
        return
    async with serve_webhooks(pipeline) as server:
        yield server.url

