"""Small real HTTP servers on 127.0.0.1 for client tests."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import attrs
import uvicorn
from aiohttp import web

from avaturn_async.samples import sample_photo_paths

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.define
class Seen:
    """What a test server saw of one request."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@attrs.define
class ScriptedServer:
    """Answers each request with the next scripted handler (the last one repeats)."""

    base_url: str
    seen: list[Seen]
    in_flight: int = 0
    max_in_flight: int = 0


@asynccontextmanager
async def scripted_server(
    *handlers: Handler, read_body: bool = True
) -> AsyncIterator[ScriptedServer]:
    """Serve ``handlers`` in order on 127.0.0.1, port 0 (the port is read back)."""
    state = ScriptedServer(base_url="", seen=[])
    script = list(handlers)

    async def dispatch(request: web.Request) -> web.StreamResponse:
        body = await request.read() if read_body else b""
        state.seen.append(
            Seen(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=dict(request.headers),
                body=body,
            )
        )
        handler = script.pop(0) if len(script) > 1 else script[0]
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            return await handler(request)
        finally:
            state.in_flight -= 1

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", dispatch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.base_url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


def json_answer(status: int, body: object = None, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=status, headers=headers)

    return handler


def text_answer(status: int, text: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, text=text)

    return handler


class SwappableASGI:
    """An ASGI app delegating to ``target``, so one uvicorn server serves many tests."""

    def __init__(self) -> None:
        self.target: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.target(scope, receive, send)


@contextmanager
def uvicorn_server(path: str) -> Iterator[tuple[str, SwappableASGI]]:
    """A real uvicorn server on 127.0.0.1, port 0, in a thread: (URL ending in ``path``, app)."""
    holder = SwappableASGI()
    config = uvicorn.Config(holder, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}{path}", holder
    finally:
        server.should_exit = True
        thread.join(timeout=10)


SAMPLE_JPEG: bytes = sample_photo_paths()[0].read_bytes()
"""A real, plain JPEG (a JFIF header and nothing to strip): sent byte for byte."""


@asynccontextmanager
async def uvicorn_in_loop(app: Any, path: str = "/hooks/avaturn") -> AsyncIterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 (port 0) in *this* event loop; yields its URL.

    For apps whose handlers use objects bound to the test's loop (a client's
    connections); :func:`uvicorn_server` runs its own loop in a thread.
    """
    import asyncio

    import anyio

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    # A plain task, not a task group: the fixture that starts it may be torn down
    # from another task.
    task = asyncio.ensure_future(server.serve())
    try:
        with anyio.fail_after(10):
            while not server.started:  # noqa: ASYNC110 (uvicorn sets a plain flag)
                await anyio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        server.should_exit = True
        await task
