"""Proxies: explicit ``proxy=``, the environment (``trust_env``), and both for API calls,
uploads and downloads, through a recording proxy on 127.0.0.1.

Names under ``.test`` do not resolve here; the proxy maps them to 127.0.0.1, so a
call to ``avaturn.test`` that succeeds went through the proxy.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from avaturn_async import AiohttpTransport, AvaturnClient, ConnectError, UnsafeURLError
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import AvaturnEmulator
from tests.client_support import exported_url
from tests.proxy_support import RecordingProxy, recording_proxy, with_credentials
from tests.support import json_answer, scripted_server

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
HOSTS = {"avaturn.test": "127.0.0.1", "files.avaturn.test": "127.0.0.1"}
AVATAR = "4b1f6c1e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy variable leaks in from the machine running the tests."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
async def emu() -> AsyncIterator[AvaturnEmulator]:
    async with AvaturnEmulator(
        processing_delay=0.01, export_delay=0.01, require_customization=False
    ) as emulator:
        yield emulator


@pytest.fixture
async def proxy() -> AsyncIterator[RecordingProxy]:
    async with recording_proxy(hosts=HOSTS) as running:
        yield running


def via_name(emu: AvaturnEmulator) -> str:
    """The emulator's base URL under a name only the proxy can resolve."""
    return f"http://avaturn.test:{emu.port}"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_an_explicit_proxy_carries_api_calls(
    emu: AvaturnEmulator, proxy: RecordingProxy
) -> None:
    async with AvaturnClient(emu.api_key, base_url=via_name(emu), proxy=proxy.url) as client:
        user = await client.users.create()
    assert user.id in emu.users
    assert proxy.targets == [f"http://avaturn.test:{emu.port}/api/v1/users/new"]


async def test_proxy_credentials_go_to_the_proxy_as_basic_auth(emu: AvaturnEmulator) -> None:
    async with recording_proxy(hosts=HOSTS, credentials=("agent", "pa:ss")) as proxy:
        url = with_credentials(proxy.url, "agent", "pa:ss")
        async with AvaturnClient(emu.api_key, base_url=via_name(emu), proxy=url) as client:
            await client.users.create()
    assert [request.authorization for request in proxy.seen] == ["Basic YWdlbnQ6cGE6c3M="]


def test_proxy_credentials_stay_out_of_the_transports_repr() -> None:
    transport = AiohttpTransport(proxy="http://agent:hunter2@proxy.internal:3128")
    assert "hunter2" not in repr(transport)
    assert "proxy.internal:3128" in repr(transport)


async def test_a_proxy_that_cannot_be_reached_is_named_without_its_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = closed_port()
    proxy = f"http://agent:hunter2@127.0.0.1:{port}"
    caplog.set_level(logging.DEBUG, logger="avaturn_async")
    async with AvaturnClient("k", base_url="http://avaturn.test:1", proxy=proxy) as client:
        with pytest.raises(ConnectError) as raised:
            await client.with_options(max_attempts=1).users.create()
    assert f"proxy 127.0.0.1:{port}" in str(raised.value)
    assert "hunter2" not in f"{raised.value!s} {raised.value!r} {caplog.text}"


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
async def test_the_environment_chooses_the_proxy(
    emu: AvaturnEmulator, proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, proxy.url)
    async with AvaturnClient(emu.api_key, base_url=via_name(emu)) as client:
        await client.users.create()
    assert proxy.targets == [f"http://avaturn.test:{emu.port}/api/v1/users/new"]


async def test_no_proxy_sends_the_host_direct(
    emu: AvaturnEmulator, proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "example.com,.avaturn.test,avaturn.test")
    async with AvaturnClient(emu.api_key, base_url=via_name(emu)) as client:
        with pytest.raises(ConnectError, match=f"avaturn.test:{emu.port}"):
            await client.with_options(max_attempts=1).users.create()
    assert proxy.seen == []


async def test_trust_env_false_ignores_the_environment(
    emu: AvaturnEmulator, proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with AvaturnClient(emu.api_key, base_url=via_name(emu), trust_env=False) as client:
        with pytest.raises(ConnectError):
            await client.with_options(max_attempts=1).users.create()
    assert proxy.seen == []


async def test_loopback_never_goes_through_an_environment_proxy(
    emu: AvaturnEmulator, proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALL_PROXY", proxy.url)
    async with AvaturnClient(emu.api_key, base_url=emu.base_url) as client:
        await client.users.create()
    assert proxy.seen == []


async def test_an_explicit_proxy_wins_over_the_environment(
    emu: AvaturnEmulator, proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with recording_proxy(hosts=HOSTS) as other:
        monkeypatch.setenv("HTTP_PROXY", other.url)
        async with AvaturnClient(emu.api_key, base_url=via_name(emu), proxy=proxy.url) as client:
            await client.users.create()
    assert (len(proxy.seen), other.seen) == (1, [])


async def test_photo_uploads_go_through_the_proxy(
    emu: AvaturnEmulator, proxy: RecordingProxy
) -> None:
    frontal, side_1, side_2 = sample_photo_paths()
    async with AvaturnClient(emu.api_key, base_url=emu.base_url, proxy=proxy.url) as client:
        user = await client.users.create()
        await client.avatars.create_from_photos(
            user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="male"
        )
    assert [t.split("?")[0].rsplit("/", 2)[1] for t in proxy.targets] == [
        "users",
        "avatars",
        "upload",
    ]


async def test_downloads_go_through_the_proxy(
    emu: AvaturnEmulator, proxy: RecordingProxy, tmp_path: Path
) -> None:
    async with AvaturnClient(emu.api_key, base_url=emu.base_url, proxy=proxy.url) as client:
        url = await exported_url(client)
        saved = await client.download(url, tmp_path / "avatar.glb")
    assert (saved.size, proxy.targets[-1]) == (emu.export_size, url)


async def test_through_a_proxy_a_download_host_is_checked_before_the_proxy_sees_it(
    emu: AvaturnEmulator, proxy: RecordingProxy, tmp_path: Path
) -> None:
    async with AvaturnClient(emu.api_key, base_url=emu.base_url) as direct:
        url = await exported_url(direct)
    inside = url.replace("127.0.0.1", "localhost")  # resolves to loopback: refused
    async with AvaturnClient(emu.api_key, base_url=via_name(emu), proxy=proxy.url) as client:
        with pytest.raises(UnsafeURLError, match="loopback"):
            await client.download(inside, tmp_path / "avatar.glb")
    assert proxy.seen == []


async def test_through_a_proxy_a_host_unresolvable_here_is_refused_unless_allowed(
    emu: AvaturnEmulator, proxy: RecordingProxy, tmp_path: Path
) -> None:
    async with AvaturnClient(emu.api_key, base_url=emu.base_url) as direct:
        url = await exported_url(direct)
    remote = url.replace("127.0.0.1", "files.avaturn.test")
    async with AvaturnClient(emu.api_key, base_url=via_name(emu), proxy=proxy.url) as client:
        with pytest.raises(UnsafeURLError, match="cannot be resolved here"):
            await client.download(remote, tmp_path / "refused.glb")
    allowed = ["files.avaturn.test"]
    async with AvaturnClient(
        emu.api_key, base_url=via_name(emu), proxy=proxy.url, allowed_download_hosts=allowed
    ) as client:
        saved = await client.download(remote, tmp_path / "avatar.glb")
    assert (saved.size, proxy.targets) == (emu.export_size, [remote])


async def test_an_environment_proxy_carries_photo_uploads(
    proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def create(request: web.Request) -> web.StreamResponse:
        port = request.url.port
        upload = f"http://avaturn.test:{port}/upload/a1?signature=s"
        return web.json_response({"avatar_id": AVATAR, "upload_url": upload})

    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    frontal, side_1, side_2 = sample_photo_paths()
    async with scripted_server(create, json_answer(200, {"status": "ok"})) as server:
        base = server.base_url.replace("127.0.0.1", "avaturn.test")
        async with AvaturnClient("k", base_url=base) as client:
            await client.avatars.create_from_photos(
                "u1", frontal=frontal, side_1=side_1, side_2=side_2, body_type="male"
            )
    assert [t.split("?")[0].rsplit("/", 2)[1] for t in proxy.targets] == ["avatars", "upload"]


async def test_an_environment_proxy_carries_downloads(
    emu: AvaturnEmulator, proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async with AvaturnClient(emu.api_key, base_url=emu.base_url) as direct:
        url = (await exported_url(direct)).replace("127.0.0.1", "files.avaturn.test")
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    allowed = ["files.avaturn.test"]
    async with AvaturnClient(
        emu.api_key, base_url=emu.base_url, allowed_download_hosts=allowed
    ) as client:
        saved = await client.download(url, tmp_path / "avatar.glb")
    assert (saved.size, proxy.targets) == (emu.export_size, [url])
