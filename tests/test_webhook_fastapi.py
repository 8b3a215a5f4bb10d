"""The FastAPI / Starlette recipe serves the exact path to a sender that never follows redirects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from avaturn_async.testing import make_render_ready, make_webhook_secret, sign_webhook
from avaturn_async.webhooks import Event, WebhookPipeline, WebhookRouter, WebhookVerifier
from avaturn_async.webhooks.asgi import WebhookApp
from tests.support import SwappableASGI
from tests.support import uvicorn_server as run_uvicorn

SECRET = make_webhook_secret()
PATH = "/webhooks/avaturn"


@pytest.fixture(scope="module")
def uvicorn_server() -> Iterator[tuple[str, SwappableASGI]]:
    with run_uvicorn(PATH) as served:
        yield served


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def webhook_app() -> tuple[WebhookApp, list[Event]]:
    router, seen = WebhookRouter(), []

    @router.on_any
    async def record(event: Event) -> None:
        seen.append(event)

    return WebhookApp(WebhookPipeline(WebhookVerifier(SECRET), router)), seen


async def post_without_following(session: aiohttp.ClientSession, url: str) -> int:
    body, headers = sign_webhook(make_render_ready(), SECRET)
    async with session.post(url, data=body, headers=headers, allow_redirects=False) as response:
        return response.status


async def test_fastapi_add_route_serves_the_exact_path(
    uvicorn_server: tuple[str, SwappableASGI], session: aiohttp.ClientSession
) -> None:
    url, holder = uvicorn_server
    hooks, seen = webhook_app()
    app = FastAPI()
    # Starlette types add_route's endpoint as a request handler only, though its Route
    # serves any ASGI app as one (the form docs/webhooks.md shows).
    app.add_route(PATH, hooks, methods=["POST"])  # type: ignore[arg-type]
    holder.target = app
    assert await post_without_following(session, url) == 204
    assert len(seen) == 1


async def test_starlette_route_serves_the_exact_path(
    uvicorn_server: tuple[str, SwappableASGI], session: aiohttp.ClientSession
) -> None:
    url, holder = uvicorn_server
    hooks, seen = webhook_app()
    holder.target = Starlette(routes=[Route(PATH, hooks, methods=["POST"])])
    assert await post_without_following(session, url) == 204
    assert len(seen) == 1


async def test_a_mount_redirects_which_is_why_the_recipe_uses_a_route(
    uvicorn_server: tuple[str, SwappableASGI], session: aiohttp.ClientSession
) -> None:
    url, holder = uvicorn_server
    hooks, seen = webhook_app()
    holder.target = Starlette(routes=[Mount(PATH, hooks)])
    assert await post_without_following(session, url) == 307
    assert seen == []
