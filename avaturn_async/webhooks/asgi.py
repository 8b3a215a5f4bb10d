"""Receive Avaturn webhooks in any ASGI server or framework, with no dependency.

::

    from avaturn_async.webhooks.asgi import WebhookApp

    webhook_app = WebhookApp(WebhookPipeline(verifier, router))
    # FastAPI / Starlette, at exactly this path (no 307 redirect to a trailing slash):
    app.add_route("/webhooks/avaturn", webhook_app, methods=["POST"])
    # or serve it alone:  uvicorn module:webhook_app
    # or acknowledge at once and dispatch from a durable inbox (start
    # ``inbox.worker(router)`` in your app's lifespan):
    webhook_app = WebhookApp(WebhookPipeline(verifier, router, inbox=WebhookInbox("webhooks.db")))

The app answers on every path it is routed or mounted at. Mind Starlette's
``app.mount(prefix, ...)``: it answers ``POST prefix`` with a 307 redirect to
``prefix/``, which webhook senders do not follow; ``add_route`` serves the exact
path. Header names arrive lower-cased (ASGI guarantees it); when a header is
repeated, the first value counts. The body is read as a stream; reading stops
past the verifier's ``max_body_size`` (413) or after the pipeline's
``read_timeout`` (408). A declared ``Content-Length`` over the limit is answered
413 before the body is asked for, so servers do not send ``100 Continue``.
The ASGI server must bound what happens before the app is called (slow
headers, idle connections): see ``docs/webhooks.md``. Status codes are
described in ``_pipeline``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias

from .._health import DEFAULT_READY_TIMEOUT
from ._boundary import Verifier
from ._pipeline import PipelineResponse, WebhookPipeline
from ._router import WebhookRouter

__all__ = ["ReadinessApp", "WebhookApp"]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]


class _Disconnected(Exception):
    """The client went away before the body was complete: nothing to answer."""


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return headers


def _query(scope: Scope) -> dict[str, str]:
    raw: bytes = scope.get("query_string", b"")
    if not raw:
        return {}
    from urllib.parse import parse_qsl  # on first use: ARCHITECTURE.md, cold start

    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    return dict(reversed(pairs))  # a repeated name: its first value counts


async def _read_limited(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or ``None`` as soon as it grows past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send(send: Send, answer: PipelineResponse) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers]
    if answer.status != 204:  # RFC 9110: no Content-Length on a 204
        headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    # Served alone, the app has nothing to start or stop, but it answers the
    # protocol so servers do not log it as unsupported.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class WebhookApp:
    """An ASGI 3 application that verifies, parses, dedupes and dispatches webhooks.

    Takes a :class:`WebhookPipeline`; a verifier, a router and the pipeline's
    keyword options still work for one release, deprecated (they warn). With an
    inbox, it stores each delivery there and answers 202 instead of dispatching;
    run ``inbox.worker(router)`` to dispatch.
    """

    def __init__(
        self,
        pipeline: WebhookPipeline | Verifier,
        router: WebhookRouter | None = None,
        **options: Any,
    ) -> None:
        self.pipeline: WebhookPipeline = WebhookPipeline.of(pipeline, router, **options)

    def __repr__(self) -> str:
        return f"WebhookApp({self.pipeline!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            raise ValueError(f"unsupported ASGI scope type {kind!r}")

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        pipeline = self.pipeline
        headers = _headers(scope)
        early = pipeline.check_method(scope["method"]) or pipeline.check_content_length(
            headers.get("content-length")
        )
        if early is not None:
            await _send(send, early)
            return
        body: bytes | None = b""
        import anyio

        try:
            with anyio.move_on_after(pipeline.read_deadline) as deadline:
                body = await _read_limited(receive, pipeline.max_body_size)
        except _Disconnected:
            return
        if deadline.cancelled_caught:
            answer = pipeline.timed_out()
        elif body is None:
            answer = pipeline.too_large()
        else:
            answer = await pipeline.handle(body, headers, query=_query(scope))
        await _send(send, answer)


class ReadinessApp:
    """An ASGI readiness probe for your app: ``GET`` answers 200 when the pipeline's
    inbox or idempotency store answers within ``timeout`` seconds, else 503, with a
    small JSON body (:meth:`WebhookPipeline.readiness`)::

        app.add_route("/readyz", ReadinessApp(pipeline), methods=["GET"])
    """

    def __init__(self, pipeline: WebhookPipeline, *, timeout: float = DEFAULT_READY_TIMEOUT):
        self.pipeline = pipeline
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ReadinessApp({self.pipeline!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise ValueError(f"unsupported ASGI scope type {scope['type']!r}")
        found = await self.pipeline.readiness(timeout=self.timeout)
        answer = PipelineResponse(
            status=found.status, outcome="readiness", body=found.body(), headers=_JSON_HEADERS
        )
        await _send(send, answer)


_JSON_HEADERS = (("content-type", "application/json"),)
