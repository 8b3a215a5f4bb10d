"""The ASGI app under a real uvicorn server and the aiohttp adapter, over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from avaturn_async.testing import make_render_ready, make_webhook_secret, sign_webhook
from avaturn_async.webhooks import Event, WebhookPipeline, WebhookRouter, WebhookVerifier
from avaturn_async.webhooks.aiohttp import make_app, make_handler, serve_webhooks
from avaturn_async.webhooks.asgi import WebhookApp
from tests.support import SwappableASGI
from tests.support import uvicorn_server as run_uvicorn

TOKEN = "tok-shared-token-01"

SECRET = make_webhook_secret()
LIMIT = 2048


@pytest.fixture(scope="module")
def uvicorn_server() -> Iterator[tuple[str, SwappableASGI]]:
    with run_uvicorn("/hooks/avaturn") as served:
        yield served


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def recording_router(fail_first: bool = False) -> tuple[WebhookRouter, list[Event]]:
    router, seen = WebhookRouter(), []

    @router.on_any
    async def record(event: Event) -> None:
        seen.append(event)
        if fail_first and len(seen) == 1:
            raise RuntimeError("transient")

    return router, seen


Server = Callable[..., Awaitable[tuple[str, list[Event]]]]


@pytest.fixture(params=["asgi", "aiohttp"])
async def serve(
    request: pytest.FixtureRequest, uvicorn_server: tuple[str, SwappableASGI]
) -> AsyncIterator[Server]:
    """Start the adapter under test; returns (url, events seen by its handlers)."""
    runners: list[web.AppRunner] = []

    async def start(
        verifier: WebhookVerifier | None = None, **options: Any
    ) -> tuple[str, list[Event]]:
        verifier = verifier or WebhookVerifier(SECRET, max_body_size=LIMIT)
        router, seen = recording_router(options.pop("fail_first", False))
        if request.param == "asgi":
            url, holder = uvicorn_server
            holder.target = WebhookApp(WebhookPipeline(verifier, router, **options))
            return url, seen
        pipeline = WebhookPipeline(verifier, router, **options)
        runner = web.AppRunner(make_app(pipeline, path="/hooks/avaturn"))
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/hooks/avaturn", seen

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_signed_delivery_is_dispatched_and_answered_204(
    serve: Server, session: aiohttp.ClientSession
) -> None:
    url, seen = await serve()
    event = make_render_ready()
    body, headers = sign_webhook(event, SECRET)
    async with session.post(url, data=body, headers=headers) as response:
        assert response.status == 204
    assert seen == [event]


async def test_bad_signature_is_401(serve: Server, session: aiohttp.ClientSession) -> None:
    url, seen = await serve()
    body, headers = sign_webhook(make_render_ready(), make_webhook_secret())
    async with session.post(url, data=body, headers=headers) as response:
        assert (response.status, (await response.json())["error"]) == (401, "no_matching_signature")
    assert seen == []


async def test_malformed_signed_payload_is_400(
    serve: Server, session: aiohttp.ClientSession
) -> None:
    url, _ = await serve()
    body, headers = sign_webhook(b"[1, 2]", SECRET)
    async with session.post(url, data=body, headers=headers) as response:
        assert response.status == 400


async def test_declared_too_large_body_is_413(
    serve: Server, session: aiohttp.ClientSession
) -> None:
    url, _ = await serve()
    body, headers = sign_webhook(b"x" * (LIMIT + 1), SECRET)
    async with session.post(url, data=body, headers=headers) as response:
        assert response.status == 413


async def test_streamed_too_large_body_is_413(
    serve: Server, session: aiohttp.ClientSession
) -> None:
    url, _ = await serve()
    _, headers = sign_webhook(b"{}", SECRET)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"x" * 1024

    async with session.post(url, data=chunks(), headers=headers) as response:
        assert response.status == 413


async def test_get_is_405_with_allow(serve: Server, session: aiohttp.ClientSession) -> None:
    url, _ = await serve()
    async with session.get(url) as response:
        assert (response.status, response.headers["Allow"]) == (405, "POST")


async def test_duplicate_delivery_is_204_and_dispatched_once(
    serve: Server, session: aiohttp.ClientSession
) -> None:
    url, seen = await serve()
    body, headers = sign_webhook(make_render_ready(), SECRET)
    statuses = []
    for _ in range(2):
        async with session.post(url, data=body, headers=headers) as response:
            statuses.append(response.status)
    assert (statuses, len(seen)) == ([204, 204], 1)


async def test_handler_failure_is_500_and_the_redelivery_is_processed(
    serve: Server, session: aiohttp.ClientSession
) -> None:
    url, seen = await serve(fail_first=True)
    body, headers = sign_webhook(make_render_ready(), SECRET)
    statuses = []
    for _ in range(2):
        async with session.post(url, data=body, headers=headers) as response:
            statuses.append(response.status)
    assert (statuses, len(seen)) == ([500, 204], 2)


async def test_shared_token_in_the_query_string(
    serve: Server, session: aiohttp.ClientSession
) -> None:
    url, seen = await serve(WebhookVerifier.shared_token(TOKEN, header=None, query_param="token"))
    body, _ = sign_webhook(make_render_ready(), SECRET)
    async with session.post(url, data=body, params={"token": "wrong"}) as response:
        assert response.status == 401
    async with session.post(url, data=body, params={"token": TOKEN}) as response:
        assert response.status == 204
    assert len(seen) == 1


async def test_aiohttp_handler_can_be_added_to_an_existing_app(
    session: aiohttp.ClientSession,
) -> None:
    router, seen = recording_router()
    app = web.Application()
    app.router.add_post("/hook", make_handler(WebhookPipeline(WebhookVerifier(SECRET), router)))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        body, headers = sign_webhook(make_render_ready(), SECRET)
        async with session.post(f"http://127.0.0.1:{port}/hook", data=body, headers=headers) as r:
            assert r.status == 204
    finally:
        await runner.cleanup()
    assert len(seen) == 1


@pytest.mark.parametrize("url_path", ["/webhooks/avaturn", "/webhooks/avaturn/"])
async def test_make_app_mounted_as_a_sub_application_answers_at_its_prefix(
    session: aiohttp.ClientSession, url_path: str
) -> None:
    router, seen = recording_router()
    app = web.Application()
    app.add_subapp("/webhooks/avaturn", make_app(WebhookPipeline(WebhookVerifier(SECRET), router)))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}{url_path}"
        body, headers = sign_webhook(make_render_ready(), SECRET)
        async with session.post(url, data=body, headers=headers) as response:
            assert response.status == 204
    finally:
        await runner.cleanup()
    assert len(seen) == 1


async def test_serve_webhooks_receives_on_a_free_loopback_port(
    session: aiohttp.ClientSession,
) -> None:
    router, seen = recording_router()
    async with serve_webhooks(WebhookPipeline(WebhookVerifier(SECRET), router)) as server:
        assert server.url == f"http://127.0.0.1:{server.port}/webhooks/avaturn"
        body, headers = sign_webhook(make_render_ready(), SECRET)
        async with session.post(server.url, data=body, headers=headers) as response:
            assert response.status == 204
    assert len(seen) == 1


async def test_serve_webhooks_stops_listening_on_exit(session: aiohttp.ClientSession) -> None:
    pipeline = WebhookPipeline(WebhookVerifier(SECRET), WebhookRouter())
    async with serve_webhooks(pipeline) as server:
        pass
    with pytest.raises(aiohttp.ClientConnectionError):
        await session.post(server.url, data=b"{}")


async def test_asgi_app_answers_the_lifespan_protocol() -> None:
    app = WebhookApp(WebhookPipeline(WebhookVerifier(SECRET), WebhookRouter()))
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_asgi_app_stops_quietly_when_the_client_disconnects() -> None:
    router, seen = recording_router()
    app = WebhookApp(WebhookPipeline(WebhookVerifier(SECRET), router))
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    await app({"type": "http", "method": "POST", "headers": []}, receive, send)
    assert (sent, seen) == ([], [])
