"""Receive Avaturn webhooks in an ``aiohttp.web`` application.

::

    from avaturn_async.webhooks import WebhookRouter, WebhookVerifier
    from avaturn_async.webhooks.aiohttp import make_app, make_handler

    app.router.add_post("/webhooks/avaturn", make_handler(verifier, router))
    # or mount a sub-application:
    app.add_subapp("/webhooks/avaturn", make_app(verifier, router))
    # or run a standalone receiver (demos, tests, small services):
    async with serve_webhooks(verifier, router, port=8080) as server:
        print(server.url)
    # or acknowledge at once and dispatch from a durable inbox:
    inbox = WebhookInbox("webhooks.db")
    app.router.add_post("/webhooks/avaturn", make_handler(verifier, router, inbox=inbox))
    async with inbox.worker(router): ...

The body is read as a stream and reading stops past the verifier's
``max_body_size``; status codes are described in ``_pipeline``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import attrs
from aiohttp import web

from ._dedupe import IdempotencyStore
from ._inbox import WebhookInbox
from ._pipeline import PipelineResponse, WebhookPipeline
from ._router import WebhookRouter
from ._verifier import WebhookVerifier

__all__ = ["WebhookServer", "make_app", "make_handler", "serve_webhooks"]

AiohttpHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CHUNK = 64 * 1024


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or ``None`` as soon as it grows past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def _to_response(answer: PipelineResponse) -> web.Response:
    headers = dict(answer.headers)
    return web.Response(status=answer.status, body=answer.body or None, headers=headers)


def make_handler(
    verifier: WebhookVerifier,
    router: WebhookRouter,
    *,
    store: IdempotencyStore | None = None,
    dedupe: bool = True,
    fail_on_handler_error: bool = True,
    inbox: WebhookInbox | None = None,
) -> AiohttpHandler:
    """An aiohttp request handler that verifies, parses, dedupes and dispatches.

    With ``inbox``, it stores each delivery there and answers 202 instead of
    dispatching; run ``inbox.worker(router)`` to dispatch.
    Register it for all methods (``add_route("*", ...)``) to have non-POST
    requests answered 405 by the pipeline, or with ``add_post``.
    """
    pipeline = WebhookPipeline(
        verifier,
        router,
        store=store,
        dedupe=dedupe,
        fail_on_handler_error=fail_on_handler_error,
        inbox=inbox,
    )

    async def handle_webhook(request: web.Request) -> web.Response:
        early = pipeline.check_method(request.method) or pipeline.check_content_length(
            request.headers.get("content-length")
        )
        if early is not None:
            return _to_response(early)
        body = await _read_limited(request, pipeline.max_body_size)
        if body is None:
            return _to_response(pipeline.too_large())
        answer = await pipeline.handle(body, request.headers, query=request.query)
        return _to_response(answer)

    return handle_webhook


def make_app(
    verifier: WebhookVerifier,
    router: WebhookRouter,
    *,
    path: str | None = None,
    store: IdempotencyStore | None = None,
    dedupe: bool = True,
    fail_on_handler_error: bool = True,
    inbox: WebhookInbox | None = None,
) -> web.Application:
    """A small ``web.Application`` answering webhooks at ``path``.

    With the default ``path=None`` it answers at its root: at ``/`` when served
    alone, and at the prefix both with and without a trailing slash when
    mounted with ``app.add_subapp(prefix, ...)``.
    """
    app = web.Application()
    handler = make_handler(
        verifier,
        router,
        store=store,
        dedupe=dedupe,
        fail_on_handler_error=fail_on_handler_error,
        inbox=inbox,
    )
    # "" is the bare sub-application prefix; "/" the root or the prefix plus slash.
    for route in ("", "/") if path is None else (path,):
        app.router.add_route("*", route, handler)
    return app


@attrs.frozen(kw_only=True)
class WebhookServer:
    """A running receiver started by :func:`serve_webhooks`."""

    host: str
    port: int
    """The bound port (the real one when ``port=0`` asked for any free port)."""
    url: str
    """Where to send webhooks, e.g. ``http://127.0.0.1:41234/webhooks/avaturn``."""


@asynccontextmanager
async def serve_webhooks(
    verifier: WebhookVerifier,
    router: WebhookRouter,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    path: str = "/webhooks/avaturn",
    store: IdempotencyStore | None = None,
    dedupe: bool = True,
    fail_on_handler_error: bool = True,
    inbox: WebhookInbox | None = None,
) -> AsyncIterator[WebhookServer]:
    """Serve webhooks at ``path`` on ``host:port`` until the block exits.

    ``port=0`` (the default) picks a free port; read it from the yielded
    :class:`WebhookServer`. Binds to loopback unless told otherwise.
    """
    app = make_app(
        verifier,
        router,
        path=path,
        store=store,
        dedupe=dedupe,
        fail_on_handler_error=fail_on_handler_error,
        inbox=inbox,
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_port = int(runner.addresses[0][1])
        url_host = f"[{host}]" if ":" in host else host
        yield WebhookServer(host=host, port=bound_port, url=f"http://{url_host}:{bound_port}{path}")
    finally:
        await runner.cleanup()
