"""Confirming unsigned webhook events against the API, over real HTTP.

Every test posts to a real receiver on 127.0.0.1, the aiohttp adapter and the ASGI
app under uvicorn (parametrized; uvicorn runs in the test's event loop, where the
client's connections live), and confirms against the emulator through a real
client. Forged events name avatars that do not exist, are not the user's, or are
not ready; genuine ones come from the emulator's own state.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest

from avaturn_async import AvaturnClient, ConfigurationError, RetryPolicy
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import (
    AvaturnEmulator,
    event_to_bytes,
    make_avatar_ready,
    make_export_ready,
    make_render_ready,
    random_user_id,
)
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

TOKEN = "query-token-0123456789abcdef"
FILES_HOST = "files.avaturn.example"


@pytest.fixture
async def emu() -> AsyncIterator[AvaturnEmulator]:
    async with AvaturnEmulator(processing_delay=0.01, sign_webhooks=False) as emulator:
        yield emulator


@pytest.fixture
async def api(emu: AvaturnEmulator) -> AsyncIterator[AvaturnClient]:
    async with AvaturnClient(emu.api_key, base_url=emu.base_url) as client:
        yield client


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


Serve = Callable[..., Awaitable[tuple[str, list[Event]]]]


@pytest.fixture(params=["aiohttp", "asgi"])
async def serve(request: pytest.FixtureRequest) -> AsyncIterator[Serve]:
    """Start a receiver of ``WebhookPipeline(verifier, router, **options)``: (url, seen)."""
    async with AsyncExitStack() as stack:

        async def start(verifier: Any = None, **options: Any) -> tuple[str, list[Event]]:
            router, seen = WebhookRouter(), list[Event]()
            router.on_any(seen.append)
            pipeline = WebhookPipeline(verifier, router, **options)
            if request.param == "asgi":
                return await stack.enter_async_context(uvicorn_in_loop(WebhookApp(pipeline))), seen
            server = await stack.enter_async_context(serve_webhooks(pipeline))
            return server.url, seen

        yield start


async def post(session: aiohttp.ClientSession, url: str, event: Event | bytes) -> int:
    body = event if isinstance(event, bytes) else event_to_bytes(event)
    headers = {"content-type": "application/json"}
    async with session.post(url, data=body, headers=headers, allow_redirects=False) as answer:
        await answer.read()
        return answer.status


async def ready_avatar(client: AvaturnClient) -> AvatarReady:
    """A real avatar, processed: the event Avaturn would send for it."""
    user = await client.users.create()
    frontal, side_1, side_2 = sample_photo_paths()
    job = await client.avatars.create_from_photos(
        user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="female"
    )
    ready = await job.wait(poll_interval=0.01)
    return make_avatar_ready(avatar_id=ready.avatar_id, user_id=user.id)


def confirmer(client: AvaturnClient) -> EventConfirmer:
    return EventConfirmer(client, url_hosts=[FILES_HOST])


# -- avatar.ready -------------------------------------------------------------------


async def test_genuine_unsigned_avatar_ready_is_dispatched(
    serve: Serve, session: aiohttp.ClientSession, api: AvaturnClient
) -> None:
    url, seen = await serve(confirm=confirmer(api))
    event = await ready_avatar(api)
    assert (await post(session, url, event), seen) == (204, [event])


async def test_forged_event_for_a_missing_avatar_is_acknowledged_not_dispatched(
    serve: Serve, session: aiohttp.ClientSession, api: AvaturnClient
) -> None:
    check = confirmer(api)
    url, seen = await serve(confirm=check)
    user = await api.users.create()
    forged = make_avatar_ready(user_id=user.id)
    assert (await post(session, url, forged), seen) == (204, [])
    assert dict(check.counts) == {"confirmed": 0, "contradicted": 1}


async def test_forged_event_for_an_unknown_user_is_acknowledged_not_dispatched(
    serve: Serve, session: aiohttp.ClientSession, api: AvaturnClient
) -> None:
    url, seen = await serve(confirm=confirmer(api))
    forged = make_avatar_ready(user_id=random_user_id())
    assert (await post(session, url, forged), seen) == (204, [])


async def test_forged_event_for_an_avatar_not_ready_is_not_dispatched(
    serve: Serve, session: aiohttp.ClientSession, api: AvaturnClient
) -> None:
    url, seen = await serve(confirm=confirmer(api))
    user = await api.users.create()
    pending = await api.avatars.create(user.id)  # no photos: pending
    forged = make_avatar_ready(avatar_id=pending.avatar_id, user_id=user.id)
    assert (await post(session, url, forged), seen) == (204, [])


async def test_forged_event_naming_another_users_avatar_is_not_dispatched(
    serve: Serve, session: aiohttp.ClientSession, api: AvaturnClient
) -> None:
    url, seen = await serve(confirm=confirmer(api))
    genuine = await ready_avatar(api)
    other = await api.users.create()
    forged = make_avatar_ready(avatar_id=genuine.avatar_id, user_id=other.id)
    assert (await post(session, url, forged), seen) == (204, [])


async def test_forged_failure_of_a_ready_avatar_is_not_dispatched(
    serve: Serve, session: aiohttp.ClientSession, api: AvaturnClient
) -> None:
    url, seen = await serve(confirm=confirmer(api))
    genuine = await ready_avatar(api)
    forged = make_avatar_ready(
        avatar_id=genuine.avatar_id, user_id=genuine.user_id, status="failed"
    )
    assert (await post(session, url, forged), seen) == (204, [])


async def test_contradiction_is_logged_at_warning_naming_the_avatar(
    api: AvaturnClient, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = WebhookPipeline(None, WebhookRouter(), confirm=confirmer(api))
    forged = make_avatar_ready(user_id=random_user_id())
    with caplog.at_level(logging.WARNING, logger="avaturn_async.webhooks"):
        answer = await pipeline.handle(event_to_bytes(forged), {})
    assert answer.outcome == "contradicted"
    assert [r.levelno for r in caplog.records if forged.avatar_id in r.getMessage()] == [
        logging.WARNING
    ]


async def test_event_without_user_id_cannot_be_confirmed(
    api: AvaturnClient,
) -> None:
    seen: list[Event] = []
    router = WebhookRouter()
    router.on_any(seen.append)
    pipeline = WebhookPipeline(None, router, confirm=confirmer(api))
    answer = await pipeline.handle(b'{"event":"avatar.ready","avatar_id":"a1"}', {})
    assert (answer.status, answer.outcome, seen) == (204, "contradicted", [])


async def test_unknown_event_type_cannot_be_confirmed(api: AvaturnClient) -> None:
    pipeline = WebhookPipeline(None, WebhookRouter(), confirm=confirmer(api))
    answer = await pipeline.handle(b'{"event":"avatar.deleted","avatar_id":"a1"}', {})
    assert answer.outcome == "contradicted"


# -- export.ready and render.ready: the URL is checked ---------------------------------


async def test_export_on_an_allowed_https_host_is_dispatched(
    serve: Serve, session: aiohttp.ClientSession, api: AvaturnClient
) -> None:
    url, seen = await serve(confirm=confirmer(api))
    avatar = await ready_avatar(api)
    event = make_export_ready(
        avatar_id=avatar.avatar_id,
        user_id=avatar.user_id,
        export_url=f"https://{FILES_HOST}/exports/a.glb?sig=s",
    )
    assert (await post(session, url, event), seen) == (204, [event])


@pytest.mark.parametrize(
    "file_url",
    [
        f"http://{FILES_HOST}/a.glb",  # not https
        "https://evil.example/a.glb",  # not an allowed host
        "https://169.254.169.254/latest/meta-data/",
        f"https://user:pw@{FILES_HOST}/a.glb",  # credentials
        None,  # ready without a URL
    ],
)
async def test_export_with_a_refused_url_is_not_dispatched(
    file_url: str | None, serve: Serve, session: aiohttp.ClientSession, api: AvaturnClient
) -> None:
    url, seen = await serve(confirm=confirmer(api))
    avatar = await ready_avatar(api)
    event = make_export_ready(
        avatar_id=avatar.avatar_id, user_id=avatar.user_id, export_url=file_url
    )
    assert (await post(session, url, event), seen) == (204, [])


async def test_render_on_the_clients_own_base_url_is_dispatched(
    serve: Serve, session: aiohttp.ClientSession, api: AvaturnClient, emu: AvaturnEmulator
) -> None:
    url, seen = await serve(confirm=EventConfirmer(api, url_hosts=()))
    avatar = await ready_avatar(api)
    event = make_render_ready(
        avatar_id=avatar.avatar_id,
        user_id=avatar.user_id,
        render_url=f"{emu.base_url}/files/renders/r.jpg",
    )
    assert (await post(session, url, event), seen) == (204, [event])


async def test_render_for_an_avatar_of_another_user_is_not_dispatched(
    serve: Serve, session: aiohttp.ClientSession, api: AvaturnClient
) -> None:
    url, seen = await serve(confirm=confirmer(api))
    avatar = await ready_avatar(api)
    event = make_render_ready(
        avatar_id=avatar.avatar_id,
        user_id=random_user_id(),
        render_url=f"https://{FILES_HOST}/r.jpg",
    )
    assert (await post(session, url, event), seen) == (204, [])


# -- when the API cannot be asked ------------------------------------------------------


async def test_unreachable_api_is_a_503_so_the_sender_retries(
    serve: Serve, session: aiohttp.ClientSession, api: AvaturnClient, emu: AvaturnEmulator
) -> None:
    once = api.with_options(retry=RetryPolicy.off())
    url, seen = await serve(confirm=confirmer(once))
    event = await ready_avatar(api)
    emu.fail_next("avatars.list", 503)
    assert (await post(session, url, event), seen) == (503, [])


async def test_redelivery_after_an_unreachable_api_is_dispatched(
    serve: Serve, session: aiohttp.ClientSession, api: AvaturnClient, emu: AvaturnEmulator
) -> None:
    once = api.with_options(retry=RetryPolicy.off())
    url, seen = await serve(confirm=confirmer(once))
    event = await ready_avatar(api)
    emu.fail_next("avatars.list", 503)
    first = await post(session, url, event)
    again = await post(session, url, event)
    assert (first, again, seen) == (503, 204, [event])


# -- once per delivery, and the duplicate guard ----------------------------------------


async def test_a_redelivered_event_is_confirmed_once(
    serve: Serve, session: aiohttp.ClientSession, api: AvaturnClient, emu: AvaturnEmulator
) -> None:
    url, seen = await serve(confirm=confirmer(api))
    event = await ready_avatar(api)
    before = emu.stats.requests["avatars.list"]
    answers = [await post(session, url, event) for _ in range(3)]
    assert (answers, len(seen), emu.stats.requests["avatars.list"] - before) == (
        [204, 204, 204],
        1,
        1,
    )


async def test_without_a_verifier_a_forged_webhook_id_cannot_shadow_a_genuine_event(
    api: AvaturnClient,
) -> None:
    seen: list[Event] = []
    router = WebhookRouter()
    router.on_any(seen.append)
    pipeline = WebhookPipeline(None, router, confirm=confirmer(api))
    genuine = await ready_avatar(api)
    forged = make_avatar_ready(user_id=genuine.user_id)
    same_id = {"webhook-id": "msg_1"}
    await pipeline.handle(event_to_bytes(forged), same_id)
    answer = await pipeline.handle(event_to_bytes(genuine), same_id)
    assert (answer.outcome, seen) == ("processed", [genuine])


# -- a token in the URL, and confirmation ----------------------------------------------


async def test_token_in_the_query_string_is_checked_before_the_api_is_asked(
    serve: Serve, session: aiohttp.ClientSession, api: AvaturnClient, emu: AvaturnEmulator
) -> None:
    verifier = SharedTokenVerifier(TOKEN, header=None, query_param="token")
    url, seen = await serve(verifier, confirm=confirmer(api))
    event = await ready_avatar(api)
    before = emu.stats.requests["avatars.list"]
    without = await post(session, url, event)
    with_token = await post(session, f"{url}?token={TOKEN}", event)
    assert (without, with_token, seen) == (401, 204, [event])
    assert emu.stats.requests["avatars.list"] - before == 1


# -- configuration ---------------------------------------------------------------------


def test_pipeline_with_neither_verifier_nor_confirmation_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="confirm"):
        WebhookPipeline(None, WebhookRouter())


def test_url_hosts_must_be_host_names(api: AvaturnClient) -> None:
    with pytest.raises(ConfigurationError):
        EventConfirmer(api, url_hosts=["https://files.example.com/"])
