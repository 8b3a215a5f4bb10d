"""Receivers under hostile senders: Expect: 100-continue with a huge body, slow trickles.

Raw sockets on 127.0.0.1, so that the test sees exactly what the server writes
first, with no client library answering ``100 Continue`` on its behalf.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import urlsplit

import anyio
import pytest
from anyio.abc import SocketStream

from avaturn_async.testing import make_render_ready, make_webhook_secret, sign_webhook
from avaturn_async.webhooks import WebhookPipeline, WebhookRouter, WebhookVerifier
from avaturn_async.webhooks.aiohttp import serve_webhooks
from avaturn_async.webhooks.asgi import WebhookApp
from tests.support import SwappableASGI
from tests.support import uvicorn_server as run_uvicorn

SECRET = make_webhook_secret()
LIMIT = 4096
PATH = "/webhooks/avaturn"
Served = Callable[[WebhookPipeline], AbstractAsyncContextManager[tuple[str, int]]]


@pytest.fixture(scope="module")
def uvicorn_server() -> Iterator[tuple[str, SwappableASGI]]:
    with run_uvicorn(PATH) as served:
        yield served


@pytest.fixture(params=["aiohttp", "asgi"])
def served(request: pytest.FixtureRequest, uvicorn_server: tuple[str, SwappableASGI]) -> Served:
    """Serve a pipeline with the adapter under test; yields (host, port)."""

    @asynccontextmanager
    async def serve(pipeline: WebhookPipeline) -> AsyncIterator[tuple[str, int]]:
        if request.param == "asgi":
            url, holder = uvicorn_server
            holder.target = WebhookApp(pipeline)
            parts = urlsplit(url)
            yield str(parts.hostname), int(parts.port or 0)
            return
        async with serve_webhooks(pipeline, path=PATH) as server:
            yield server.host, server.port

    return serve


def pipeline(**options: object) -> WebhookPipeline:
    verifier = WebhookVerifier(SECRET, max_body_size=LIMIT)
    return WebhookPipeline(verifier, WebhookRouter(), **options)  # type: ignore[arg-type]


def request_head(headers: dict[str, str]) -> bytes:
    lines = [f"POST {PATH} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_status_line(stream: SocketStream) -> str:
    """The first line the server writes."""
    received = b""
    while b"\r\n" not in received:
        received += await stream.receive()
    return received.split(b"\r\n", 1)[0].decode()


async def read_until_closed(stream: SocketStream) -> bytes:
    received = b""
    try:
        while True:
            received += await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
        return received


async def test_expect_continue_with_an_oversized_length_is_answered_413_first(
    served: Served,
) -> None:
    head = request_head({"Content-Length": str(10 * 1024 * 1024), "Expect": "100-continue"})
    async with served(pipeline()) as (host, port):
        async with await anyio.connect_tcp(host, port) as stream:
            await stream.send(head)
            with anyio.fail_after(10):
                status = await read_status_line(stream)
    assert status.startswith("HTTP/1.1 413"), status


async def test_expect_continue_with_an_acceptable_body_is_invited_and_processed(
    served: Served,
) -> None:
    body, headers = sign_webhook(make_render_ready(), SECRET)
    head = request_head({**headers, "Content-Length": str(len(body)), "Expect": "100-continue"})
    async with served(pipeline()) as (host, port):
        async with await anyio.connect_tcp(host, port) as stream:
            await stream.send(head)
            with anyio.fail_after(10):
                invited = await read_status_line(stream)
                await stream.send(body)
                answer = await read_status_line(stream)
    assert invited.startswith("HTTP/1.1 100"), invited
    assert answer.startswith("HTTP/1.1 204"), answer


async def test_a_sender_trickling_its_body_gets_408_and_a_closed_connection(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    body, headers = sign_webhook(make_render_ready(), SECRET)
    head = request_head({**headers, "Content-Length": str(len(body))})

    async def trickle(stream: SocketStream) -> None:
        try:
            for byte in body:
                await stream.send(bytes([byte]))
                await anyio.sleep(0.05)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return

    async with served(pipeline(read_timeout=0.3)) as (host, port):
        async with await anyio.connect_tcp(host, port) as stream:
            await stream.send(head)
            async with anyio.create_task_group() as group:
                group.start_soon(trickle, stream)
                with anyio.fail_after(10):
                    answer = await read_until_closed(stream)
                group.cancel_scope.cancel()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:40]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_read_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="read_timeout"):
        pipeline(read_timeout=0)
