"""A small recording HTTP proxy on 127.0.0.1, for the client's proxy tests.

It speaks what an HTTP proxy speaks to aiohttp: absolute-form requests
(``GET http://host:port/path``) for ``http://`` targets, and ``CONNECT host:port``
tunnels for ``https://`` ones. Every request is recorded (method, target, the
``Proxy-Authorization`` it carried). ``hosts`` maps names to the address the proxy
really connects to, so a test can use a name that does not resolve locally
(``avaturn.test``): only a request that went through the proxy can reach it.
With ``credentials``, a request without them is answered 407.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import yarl


@attrs.define
class ProxiedRequest:
    method: str
    target: str
    """``http://host:port/path`` for a forwarded request, ``host:port`` for a tunnel."""
    authorization: str | None


@attrs.define
class RecordingProxy:
    url: str
    seen: list[ProxiedRequest] = attrs.field(factory=list)

    @property
    def targets(self) -> list[str]:
        return [request.target for request in self.seen]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(1 << 16):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _split_head(head: bytes) -> tuple[str, str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return method, target, headers


@asynccontextmanager
async def recording_proxy(
    *, hosts: dict[str, str] | None = None, credentials: tuple[str, str] | None = None
) -> AsyncIterator[RecordingProxy]:
    """Serve a proxy on 127.0.0.1 (port 0, read back) until the block ends."""
    names = hosts or {}
    expected = None
    if credentials is not None:
        pair = f"{credentials[0]}:{credentials[1]}".encode()
        expected = "Basic " + base64.b64encode(pair).decode()
    state = RecordingProxy(url="")
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        method, target, headers = _split_head(head)
        authorization = next((v for n, v in headers if n.lower() == "proxy-authorization"), None)
        state.seen.append(ProxiedRequest(method, target, authorization))
        if expected is not None and authorization != expected:
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n")
            writer.write(b"Connection: close\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            first = b"HTTP/1.1 200 Connection established\r\n\r\n"
        else:
            url = yarl.URL(target)
            host, port = url.host or "", str(url.port)
            kept = [(n, v) for n, v in headers if not n.lower().startswith("proxy-")]
            kept = [(n, v) for n, v in kept if n.lower() != "connection"]
            lines = [f"{method} {url.raw_path_qs} HTTP/1.1", *(f"{n}: {v}" for n, v in kept)]
            first = ("\r\n".join([*lines, "Connection: close"]) + "\r\n\r\n").encode("latin-1")
        try:
            up_reader, up_writer = await asyncio.open_connection(names.get(host, host), int(port))
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        if method == "CONNECT":
            writer.write(first)
        else:
            up_writer.write(first)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    def spawn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(handle(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(spawn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def with_credentials(url: str, user: str, password: str) -> str:
    """``url`` with ``user:password@`` in it."""
    return str(yarl.URL(url).with_user(user).with_password(password))
