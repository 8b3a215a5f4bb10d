"""``ssl=``: the emulator behind TLS with a test CA (trustme), for every connection
the client makes: API calls, uploads, downloads, and through a proxy's tunnel."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from avaturn_async import AvaturnClient, CertificateError, ConnectError, RetryInfo
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import AvaturnEmulator
from tests.proxy_support import recording_proxy, with_credentials


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(autouse=True)
def no_environment_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def server_context(ca: trustme.CA, *, client_certificates: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    if client_certificates:
        ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
async def emu(ca: trustme.CA) -> AsyncIterator[AvaturnEmulator]:
    async with AvaturnEmulator(
        ssl=server_context(ca),
        processing_delay=0.01,
        export_delay=0.01,
        require_customization=False,
    ) as emulator:
        yield emulator


async def test_the_emulator_serves_https_with_the_test_ca(emu: AvaturnEmulator) -> None:
    assert emu.base_url.startswith("https://127.0.0.1:")


async def test_a_client_trusting_the_ca_calls_the_api(emu: AvaturnEmulator, ca: trustme.CA) -> None:
    async with AvaturnClient(emu.api_key, base_url=emu.base_url, ssl=trusting(ca)) as client:
        user = await client.users.create()
    assert user.id in emu.users


async def test_a_refused_certificate_is_a_typed_connect_error_naming_the_host(
    emu: AvaturnEmulator,
) -> None:
    retries: list[RetryInfo] = []
    async with AvaturnClient(emu.api_key, base_url=emu.base_url, on_retry=retries.append) as client:
        with pytest.raises(CertificateError) as raised:
            await client.users.create()
    error = raised.value
    assert isinstance(error, ConnectError)
    assert f"certificate of 127.0.0.1:{emu.port} was refused" in str(error)
    assert (error.host, error.port, error.reason != "") == ("127.0.0.1", emu.port, True)
    assert retries == []  # the next attempt would meet the same certificate


async def test_uploads_and_downloads_use_the_same_context(
    emu: AvaturnEmulator, ca: trustme.CA, tmp_path: Path
) -> None:
    frontal, side_1, side_2 = sample_photo_paths()
    async with AvaturnClient(emu.api_key, base_url=emu.base_url, ssl=trusting(ca)) as client:
        user = await client.users.create()
        job = await client.avatars.create_from_photos(
            user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="female"
        )
        await job.wait(poll_interval=0.01)
        ready = await (await client.exports.create(job.avatar_id)).wait(poll_interval=0.01)
        assert ready.export_url is not None
        assert ready.export_url.startswith("https://")
        saved = await client.download(ready.export_url, tmp_path / "avatar.glb")
    assert saved.size == emu.export_size


async def test_a_client_certificate_in_the_context_is_presented(ca: trustme.CA) -> None:
    context = trusting(ca)
    ca.issue_cert("client.avaturn.test").configure_cert(context)
    async with AvaturnEmulator(ssl=server_context(ca, client_certificates=True)) as emulator:
        async with AvaturnClient(
            emulator.api_key, base_url=emulator.base_url, ssl=context
        ) as client:
            user = await client.users.create()
    assert user.id in emulator.users


async def test_https_goes_through_the_proxy_in_a_tunnel(
    emu: AvaturnEmulator, ca: trustme.CA
) -> None:
    async with recording_proxy(credentials=("agent", "s3cret")) as proxy:
        url = with_credentials(proxy.url, "agent", "s3cret")
        async with AvaturnClient(
            emu.api_key, base_url=emu.base_url, ssl=trusting(ca), proxy=url
        ) as client:
            await client.users.create()
    assert [(r.method, r.target) for r in proxy.seen] == [("CONNECT", f"127.0.0.1:{emu.port}")]


async def test_a_tunnel_the_proxy_refuses_is_a_connect_error_naming_the_proxy(
    emu: AvaturnEmulator, ca: trustme.CA
) -> None:
    async with recording_proxy(credentials=("agent", "s3cret")) as proxy:
        wrong = with_credentials(proxy.url, "agent", "wrong-password")
        async with AvaturnClient(
            emu.api_key, base_url=emu.base_url, ssl=trusting(ca), proxy=wrong
        ) as client:
            with pytest.raises(ConnectError) as raised:
                await client.with_options(max_attempts=1).users.create()
    message = str(raised.value)
    assert f"proxy {proxy.url.removeprefix('http://')} refused" in message
    assert "407" in message
    assert "wrong-password" not in message
