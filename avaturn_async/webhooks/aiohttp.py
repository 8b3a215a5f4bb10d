"""Receive Avaturn webhooks in an ``aiohttp.web`` application.

::

    from avaturn_async.webhooks import WebhookPipeline, WebhookRouter, WebhookVerifier
    from avaturn_async.webhooks.aiohttp import make_app, make_expect_handler, make_handler

    pipeline = WebhookPipeline(verifier, router)      # every option lives here
    app.router.add_post(
        "/webhooks/avaturn", make_handler(pipeline), expect_handler=make_expect_handler(pipeline)
    )
    # or mount a sub-application (the expect handler is included):
    app.add_subapp("/webhooks/avaturn", make_app(pipeline))
    # or run a standalone receiver (demos, tests, small services):
    async with serve_webhooks(pipeline, port=8080) as server:
        print(server.url)
    # or acknowledge at once and dispatch from a durable inbox:
    inbox = WebhookInbox("webhooks.db")
    pipeline = WebhookPipeline(verifier, router, inbox=inbox)
    async with inbox.worker(router): ...

Each adapter takes a :class:`WebhookPipeline`. Passing the verifier, the router
and the pipeline's keyword options instead (``make_handler(verifier, router,
inbox=inbox)``) is deprecated: it still works for one release and warns.

The body is read as a stream; reading stops past the verifier's
``max_body_size`` (413) or after the pipeline's ``read_timeout`` (408), and
both close the connection. A declared ``Content-Length`` over the limit is
answered 413 from the headers, before ``100 Continue`` invites the body, by the
expect handler. Status codes are described in ``_pipeline``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import attrs
from aiohttp import HttpVersion11, web

from .._health import DEFAULT_READY_TIMEOUT
from ._boundary import Verifier
from ._pipeline import PipelineResponse, WebhookPipeline
from ._router import WebhookRouter

__all__ = [
    "WebhookServer",
    "make_app",
    "make_expect_handler",
    "make_handler",
    "make_readiness_handler",
    "serve_webhooks",
]

AiohttpHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ExpectHandler = Callable[[web.Request], Awaitable[web.StreamResponse | None]]

_CHUNK = 64 * 1024
_CLOSE = ("connection", "close")


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
    headers.pop("connection", None)
    return web.Response(status=answer.status, body=answer.body or None, headers=headers)


async def _answer(request: web.Request, answer: PipelineResponse) -> web.Response:
    """``answer`` as a response; sent at once and the connection closed if it asks.

    Closing here, rather than with ``Response.force_close()``, stops aiohttp
    from lingering up to 10 s to read and discard an unread body.
    """
    response = _to_response(answer)
    if ("connection", "close") in answer.headers:
        response.force_close()
        await response.prepare(request)
        await response.write_eof()
        if request.transport is not None:
            request.transport.close()
    return response


def _early(pipeline: WebhookPipeline, request: web.Request) -> PipelineResponse | None:
    """The answer that the method and the headers alone decide, if any."""
    return pipeline.check_method(request.method) or pipeline.check_content_length(
        request.headers.get("content-length")
    )


def make_handler(
    pipeline: WebhookPipeline | Verifier, router: WebhookRouter | None = None, **options: Any
) -> AiohttpHandler:
    """An aiohttp request handler that verifies, parses, dedupes and dispatches.

    Takes a :class:`WebhookPipeline` (a verifier, a router and the pipeline's
    keyword options are deprecated). With an inbox, it stores each delivery there
    and answers 202 instead of dispatching; run ``inbox.worker(router)`` to
    dispatch. Register it for all methods (``add_route("*", ...)``) to have
    non-POST requests answered 405 by the pipeline, or with ``add_post``; pass
    ``expect_handler=make_expect_handler(pipeline)`` to refuse oversized bodies
    before ``100 Continue``.
    """
    pipeline = WebhookPipeline.of(pipeline, router, **options)

    async def handle_webhook(request: web.Request) -> web.Response:
        early = _early(pipeline, request)
        if early is not None:
            return await _answer(request, early)
        body: bytes | None = b""
        with anyio.move_on_after(pipeline.read_deadline) as scope:
            body = await _read_limited(request, pipeline.max_body_size)
        if scope.cancelled_caught:
            return await _answer(request, pipeline.timed_out())
        if body is None:
            return await _answer(request, pipeline.too_large())
        answer = await pipeline.handle(body, request.headers, query=request.query)
        return _to_response(answer)

    return handle_webhook


def make_expect_handler(
    pipeline: WebhookPipeline | Verifier, router: WebhookRouter | None = None, **options: Any
) -> ExpectHandler:
    """An aiohttp ``expect_handler`` that refuses before inviting the body.

    For ``Expect: 100-continue``, a non-POST method or a ``Content-Length``
    that is malformed or over the limit is answered at once (405, 400, 413)
    and the connection closed; otherwise ``100 Continue`` is sent, as aiohttp's
    default does.
    """
    pipeline = WebhookPipeline.of(pipeline, router, **options)

    async def expect_webhook(request: web.Request) -> web.StreamResponse | None:
        early = _early(pipeline, request)
        if early is not None:
            return await _answer(request, attrs.evolve(early, headers=(*early.headers, _CLOSE)))
        expect = request.headers.get("expect", "")
        if request.version == HttpVersion11:
            if expect.lower() != "100-continue":
                raise web.HTTPExpectationFailed(text=f"Unknown Expect: {expect}")
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0
        return None

    return expect_webhook


def make_readiness_handler(
    pipeline: WebhookPipeline, *, timeout: float = DEFAULT_READY_TIMEOUT
) -> AiohttpHandler:
    """A readiness probe for your app (``app.router.add_get("/readyz", ...)``): 200 when
    the pipeline's inbox or idempotency store answers within ``timeout`` seconds, 503
    otherwise, with a small JSON body (:meth:`WebhookPipeline.readiness`)."""

    async def readyz(request: web.Request) -> web.Response:
        found = await pipeline.readiness(timeout=timeout)
        return web.Response(status=found.status, body=found.body(), content_type="application/json")

    return readyz


def make_app(
    pipeline: WebhookPipeline | Verifier,
    router: WebhookRouter | None = None,
    *,
    path: str | None = None,
    **options: Any,
) -> web.Application:
    """A small ``web.Application`` answering webhooks at ``path``.

    With the default ``path=None`` it answers at its root: at ``/`` when served
    alone, and at the prefix both with and without a trailing slash when
    mounted with ``app.add_subapp(prefix, ...)``. Takes a :class:`WebhookPipeline`.
    """
    pipeline = WebhookPipeline.of(pipeline, router, **options)
    app = web.Application()
    handler = make_handler(pipeline)
    expect_handler = make_expect_handler(pipeline)
    # "" is the bare sub-application prefix; "/" the root or the prefix plus slash.
    for route in ("", "/") if path is None else (path,):
        app.router.add_route("*", route, handler, expect_handler=expect_handler)
    return app


@attrs.frozen(kw_only=True)
class WebhookServer:
    """A running receiver started by :func:`serve_webhooks`."""

    host: str
    port: int
    """The bound port (the real one when ``port=0`` asked for any free port)."""
    url: str
    """Where to send webhooks, e.g. ``http://127.0.0.1:41234/webhooks/avaturn``."""


def serve_webhooks(
    pipeline: WebhookPipeline | Verifier,
    router: WebhookRouter | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    path: str = "/webhooks/avaturn",
    **options: Any,
) -> AbstractAsyncContextManager[WebhookServer]:
    """Serve webhooks at ``path`` on ``host:port`` until the ``async with`` block exits.

    ``port=0`` (the default) picks a free port; read it from the
    :class:`WebhookServer` entered. Binds to loopback unless told otherwise. Takes a
    :class:`WebhookPipeline`.
    """
    app = make_app(WebhookPipeline.of(pipeline, router, **options), path=path)
    return _serve(app, host, port, path)


@asynccontextmanager
async def _serve(
    app: web.Application, host: str, port: int, path: str
) -> AsyncIterator[WebhookServer]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_port = int(runner.addresses[0][1])
        url_host = f"[{host}]" if ":" in host else host
        yield WebhookServer(host=host, port=bound_port, url=f"http://{url_host}:{bound_port}{path}")
    finally:
        await runner.cleanup()
