"""Adapters take one configured WebhookPipeline; the keyword call forms keep working,
deprecated, for one release."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from avaturn_async import ConfigurationError
from avaturn_async.testing import make_render_ready, make_webhook_secret, sign_webhook
from avaturn_async.webhooks import (
    Event,
    SharedTokenVerifier,
    VerificationFailure,
    WebhookInbox,
    WebhookPipeline,
    WebhookRouter,
    WebhookVerificationError,
    WebhookVerifier,
)
from avaturn_async.webhooks.aiohttp import (
    make_app,
    make_expect_handler,
    make_handler,
    serve_webhooks,
)
from avaturn_async.webhooks.asgi import WebhookApp

SECRET = make_webhook_secret()
TOKEN = "a-shared-token-long-enough"


def recording() -> tuple[WebhookRouter, list[Event]]:
    router, seen = WebhookRouter(), []

    @router.on_any
    async def record(event: Event) -> None:
        seen.append(event)

    return router, seen


async def test_serve_webhooks_takes_one_configured_pipeline() -> None:
    router, seen = recording()
    pipeline = WebhookPipeline(WebhookVerifier(SECRET), router)
    body, headers = sign_webhook(make_render_ready(), SECRET)
    async with serve_webhooks(pipeline) as server, aiohttp.ClientSession() as session:
        async with session.post(server.url, data=body, headers=headers) as response:
            assert response.status == 204
    assert len(seen) == 1


async def test_make_handler_takes_one_configured_pipeline() -> None:
    router, seen = recording()
    app = web.Application()
    app.router.add_post("/hook", make_handler(WebhookPipeline(WebhookVerifier(SECRET), router)))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        body, headers = sign_webhook(make_render_ready(), SECRET)
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=body, headers=headers) as response:
                assert response.status == 204
    finally:
        await runner.cleanup()
    assert len(seen) == 1


def test_webhook_app_keeps_the_pipeline_it_is_given() -> None:
    pipeline = WebhookPipeline(WebhookVerifier(SECRET), WebhookRouter())
    assert WebhookApp(pipeline).pipeline is pipeline


ADAPTERS = [WebhookApp, make_handler, make_expect_handler, make_app, serve_webhooks]


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda adapter: adapter.__name__)
def test_the_deprecated_verifier_and_router_form_warns_at_the_callers_line(
    adapter: object,
) -> None:
    with pytest.warns(DeprecationWarning, match="WebhookPipeline") as warned:
        adapter(WebhookVerifier(SECRET), WebhookRouter())  # type: ignore[operator]
    assert [warning.filename for warning in warned] == [__file__]


def test_the_deprecated_keyword_form_still_builds_a_pipeline_with_those_options() -> None:
    with pytest.deprecated_call():
        app = WebhookApp(WebhookVerifier(SECRET), WebhookRouter(), fail_on_handler_error=False)
    assert app.pipeline.fail_on_handler_error is False


def test_the_deprecated_inbox_keyword_still_reaches_the_pipeline(tmp_path: Path) -> None:
    inbox = WebhookInbox(tmp_path / "inbox.db")
    with pytest.deprecated_call():
        app = WebhookApp(WebhookVerifier(SECRET), WebhookRouter(), inbox=inbox)
    assert app.pipeline.inbox is inbox


async def test_the_deprecated_serve_webhooks_form_still_serves() -> None:
    router, seen = recording()
    body, headers = sign_webhook(make_render_ready(), SECRET)
    with pytest.deprecated_call():
        serving = serve_webhooks(WebhookVerifier(SECRET), router)
    async with serving as server, aiohttp.ClientSession() as session:
        async with session.post(server.url, data=body, headers=headers) as response:
            assert response.status == 204
    assert len(seen) == 1


@pytest.mark.parametrize(
    "adapter", [WebhookApp, make_handler, make_app], ids=["asgi", "handler", "app"]
)
def test_a_pipeline_with_more_arguments_is_refused(adapter: object) -> None:
    pipeline = WebhookPipeline(WebhookVerifier(SECRET), WebhookRouter())
    with pytest.raises(ConfigurationError, match="WebhookPipeline alone"):
        adapter(pipeline, dedupe=False)  # type: ignore[operator]


def test_a_verifier_without_a_router_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="needs a router"), pytest.deprecated_call():
        WebhookApp(WebhookVerifier(SECRET))


def test_shared_token_factory_builds_a_shared_token_verifier() -> None:
    verifier = WebhookVerifier.shared_token(TOKEN, query_param="token")
    assert isinstance(verifier, SharedTokenVerifier)
    assert verifier.mode == "shared_token"
    assert WebhookVerifier(SECRET).mode == "standard_webhooks"


def test_shared_token_verifier_ignores_signatures() -> None:
    body, headers = sign_webhook(make_render_ready(), SECRET)
    with pytest.raises(WebhookVerificationError) as info:
        SharedTokenVerifier(TOKEN).verify(body, headers)
    assert info.value.reason == VerificationFailure.MISSING_TOKEN


def test_shared_token_verifier_parses_with_its_token() -> None:
    body, _ = sign_webhook(make_render_ready(), SECRET)
    event = SharedTokenVerifier(TOKEN).verify_and_parse(body, {"x-avaturn-token": TOKEN})
    assert event.event == "render.ready"


def test_shared_token_verifier_repr_hides_the_token() -> None:
    assert TOKEN not in repr(SharedTokenVerifier(TOKEN))
