"""Every network error names the host and port it failed to reach: a forgotten
``AVATURN_BASE_URL`` must not look like an Avaturn outage."""

from __future__ import annotations

import socket
from pathlib import Path

import anyio
import pytest
from aiohttp import web

from avaturn_async import (
    AvaturnClient,
    ConnectError,
    DownloadError,
    RequestTimeoutError,
    Timeouts,
    TransportError,
)
from tests.support import scripted_server


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_refused_connection_names_host_and_port() -> None:
    port = closed_port()
    async with AvaturnClient("k", base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
        with pytest.raises(ConnectError) as raised:
            await client.with_options(max_attempts=1).users.create()
    assert f"cannot connect to 127.0.0.1:{port}" in str(raised.value)
    assert (raised.value.host, raised.value.port) == ("127.0.0.1", port)


async def test_a_name_that_does_not_resolve_is_named_with_its_port() -> None:
    base = "http://avaturn-nowhere.invalid:4321"
    async with AvaturnClient("k", base_url=base, trust_env=False) as client:
        with pytest.raises(ConnectError, match=r"avaturn-nowhere\.invalid:4321"):
            await client.with_options(max_attempts=1).users.create()


async def test_no_answer_in_time_names_host_and_port() -> None:
    released = anyio.Event()

    async def never(request: web.Request) -> web.StreamResponse:
        await released.wait()  # until the client gave up
        return web.Response(status=204)

    async with scripted_server(never) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        timeouts = Timeouts(request=0.05)
        async with AvaturnClient(
            "k", base_url=server.base_url, timeouts=timeouts, trust_env=False
        ) as client:
            with pytest.raises(RequestTimeoutError) as raised:
                await client.with_options(max_attempts=1).avatars.list("u")
        released.set()
    assert f"127.0.0.1:{port}" in str(raised.value)
    assert raised.value.port == port


async def test_a_download_that_cannot_connect_names_host_and_port(tmp_path: Path) -> None:
    port = closed_port()
    async with AvaturnClient("k", base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
        with pytest.raises(TransportError) as raised:
            await client.download(f"http://127.0.0.1:{port}/files/a.glb?sig=x", tmp_path / "a")
    assert not isinstance(raised.value, DownloadError)
    assert f"127.0.0.1:{port}" in str(raised.value)
    assert "sig=x" not in str(raised.value)
