"""``client.download()`` refuses hosts inside the network (SSRF), before connecting.

The client's base URL is never local here (``https://api.example.invalid``, never
contacted: only ``download()`` is called). URLs aimed at 10.0.0.1 and 169.254.169.254
must be refused before any packet is sent; host names are resolved by a fake resolver
(the transport's seam), so no DNS query leaves the machine either. Files that may be
downloaded are served on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from avaturn_async import (
    AiohttpTransport,
    AvaturnClient,
    ConfigurationError,
    DownloadError,
    InvalidRequestError,
    UnsafeURLError,
)
from avaturn_async._ssrf import address_kind

KEY = "sk_test_guard"
REMOTE_API = "https://api.example.invalid"
BODY = b"glTF" + bytes(60)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """A safety net: were the guard broken, a connection beyond loopback fails here, unsent."""
    attempts: list[object] = []
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else None
        if not (isinstance(host, str) and ipaddress.ip_address(host).is_loopback):
            attempts.append(address)
            raise OSError(f"test safety net: refused to connect to {address!r}")
        real_connect(sock, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield attempts
    assert attempts == [], "a connection beyond loopback was attempted"


class FakeResolver(AbstractResolver):
    """Resolves the names it is given, counts its lookups, and never touches DNS."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.lookups: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups.append(host)
        if host not in self.names:
            raise OSError(f"unknown host {host}")
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in self.names[host]
        ]

    async def close(self) -> None:
        pass


@asynccontextmanager
async def file_server() -> AsyncIterator[tuple[int, list[str]]]:
    """A file server on 127.0.0.1; ``/hop/N`` redirects to ``/hop/N-1``, ``/to?u=URL`` to URL."""
    seen: list[str] = []

    async def serve(request: web.Request) -> web.StreamResponse:
        seen.append(request.path_qs)
        if request.path.startswith("/hop/"):
            left = int(request.path.rsplit("/", 1)[1])
            raise web.HTTPFound("/a.glb" if left == 0 else f"/hop/{left - 1}")
        if request.path == "/to":
            raise web.HTTPFound(request.query["u"])
        return web.Response(body=BODY)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield int(runner.addresses[0][1]), seen
    finally:
        await runner.cleanup()


def client(
    resolver: FakeResolver | None = None,
    *,
    base_url: str = REMOTE_API,
    allowed: list[str] | None = None,
) -> AvaturnClient:
    return AvaturnClient(
        KEY,
        base_url=base_url,
        transport=AiohttpTransport(resolver=resolver or FakeResolver({})),
        allowed_download_hosts=allowed or [],
    )


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


# -- which addresses are refused (pure) -----------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.251", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "not globally routable"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("ff02::1", "multicast"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback (IPv4 inside IPv6)"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:a00:1::1", "private (IPv4 inside IPv6)"),  # 6to4 around 10.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 around 169.254.169.254
    ],
)
def test_internal_address_kinds_are_refused(address: str, kind: str) -> None:
    found = address_kind(ipaddress.ip_address(address))
    assert (found or "").startswith(kind)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_kind(ipaddress.ip_address(address)) is None


# -- literal addresses: refused before any connection ------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.1/a.glb", "http://169.254.169.254/latest/meta-data/", "https://10.0.0.1:8443/x"],
)
async def test_private_and_metadata_addresses_are_refused_before_connecting(
    url: str, tmp_path: Path
) -> None:
    resolver = FakeResolver({})
    async with client(resolver) as api:
        with pytest.raises(UnsafeURLError) as caught:
            await api.download(url, tmp_path / "a.glb")
    assert caught.value.address == caught.value.host  # the literal itself, never resolved


async def test_refusal_names_the_host_and_how_to_allow_it(tmp_path: Path) -> None:
    async with client() as api:
        with pytest.raises(UnsafeURLError) as caught:
            await api.download("http://169.254.169.254/creds?sig=secret", tmp_path / "a")
    message = str(caught.value)
    assert ("'169.254.169.254'" in message, "allowed_download_hosts" in message) == (True, True)
    assert "secret" not in message


async def test_refused_download_is_an_invalid_request_not_a_network_failure(
    tmp_path: Path,
) -> None:
    async with client() as api:
        with pytest.raises(InvalidRequestError) as caught:
            await api.download("http://10.0.0.1/a.glb", tmp_path / "a.glb")
    assert not isinstance(caught.value, OSError)


async def test_loopback_file_server_is_refused_and_never_reached(tmp_path: Path) -> None:
    async with file_server() as (port, seen), client() as api:
        with pytest.raises(UnsafeURLError):
            await api.download(f"http://127.0.0.1:{port}/a.glb", tmp_path / "a.glb")
    assert (seen, leftovers(tmp_path)) == ([], [])


async def test_ipv4_mapped_loopback_is_refused(tmp_path: Path) -> None:
    async with file_server() as (port, seen), client() as api:
        with pytest.raises(UnsafeURLError):
            await api.download(f"http://[::ffff:127.0.0.1]:{port}/a.glb", tmp_path / "a.glb")
    assert seen == []


async def test_legacy_numeric_ipv4_host_is_refused(tmp_path: Path) -> None:
    async with client() as api:
        with pytest.raises(UnsafeURLError, match="non-canonical"):
            await api.download("http://2130706433/a.glb", tmp_path / "a.glb")


# -- names: checked on their resolved addresses, at connect time ---------------------


async def test_name_resolving_to_loopback_is_refused_and_never_reached(tmp_path: Path) -> None:
    resolver = FakeResolver({"files.example.test": ["127.0.0.1"]})
    async with file_server() as (port, seen), client(resolver) as api:
        with pytest.raises(UnsafeURLError) as caught:
            await api.download(f"http://files.example.test:{port}/a.glb", tmp_path / "a.glb")
    assert (caught.value.address, resolver.lookups[0], seen) == (
        "127.0.0.1",
        "files.example.test",
        [],
    )


async def test_name_resolving_to_metadata_address_is_refused(tmp_path: Path) -> None:
    resolver = FakeResolver({"metadata.example.test": ["169.254.169.254"]})
    async with client(resolver) as api:
        with pytest.raises(UnsafeURLError, match="link-local"):
            await api.download("http://metadata.example.test/creds", tmp_path / "a")


async def test_one_internal_address_among_public_ones_refuses_the_name(tmp_path: Path) -> None:
    resolver = FakeResolver({"mixed.example.test": ["93.184.216.34", "10.0.0.1"]})
    async with client(resolver) as api:
        with pytest.raises(UnsafeURLError) as caught:
            await api.download("http://mixed.example.test/a.glb", tmp_path / "a.glb")
    assert caught.value.address == "10.0.0.1"


async def test_each_connection_resolves_again_so_a_rebound_name_is_caught(
    tmp_path: Path,
) -> None:
    resolver = FakeResolver({"files.example.test": ["127.0.0.1"]})
    async with file_server() as (port, _), client(resolver, allowed=["files.example.test"]) as api:
        await api.download(f"http://files.example.test:{port}/a.glb", tmp_path / "1")
    # A fresh client (pool) asked for the same name later sees the new answer.
    resolver.names["files.example.test"] = ["10.0.0.1"]
    async with client(resolver) as api:
        with pytest.raises(UnsafeURLError):
            await api.download("http://files.example.test/a.glb", tmp_path / "2")
    assert resolver.lookups.count("files.example.test") == 2


# -- what is allowed ---------------------------------------------------------------------


async def test_allowed_host_name_downloads_through_the_resolved_address(tmp_path: Path) -> None:
    resolver = FakeResolver({"files.example.test": ["127.0.0.1"]})
    async with file_server() as (port, _), client(resolver, allowed=["files.example.test"]) as api:
        result = await api.download(f"http://files.example.test:{port}/a.glb", tmp_path / "a")
    assert (result.size, (tmp_path / "a").read_bytes()) == (len(BODY), BODY)


async def test_allowed_wildcard_covers_subdomains(tmp_path: Path) -> None:
    resolver = FakeResolver({"cdn.files.example.test": ["127.0.0.1"]})
    async with file_server() as (port, _), client(resolver, allowed=["*.example.test"]) as api:
        result = await api.download(f"http://cdn.files.example.test:{port}/a.glb", tmp_path / "a")
    assert result.size == len(BODY)


async def test_allowed_network_covers_literal_addresses(tmp_path: Path) -> None:
    async with file_server() as (port, _), client(allowed=["127.0.0.0/8"]) as api:
        result = await api.download(f"http://127.0.0.1:{port}/a.glb", tmp_path / "a")
    assert result.size == len(BODY)


async def test_base_url_on_loopback_allows_downloads_from_it(tmp_path: Path) -> None:
    async with file_server() as (port, _), client(base_url="http://127.0.0.1:9") as api:
        result = await api.download(f"http://127.0.0.1:{port}/a.glb", tmp_path / "a")
    assert result.size == len(BODY)


async def test_base_url_name_on_loopback_allows_its_addresses(tmp_path: Path) -> None:
    resolver = FakeResolver({"emulator.test": ["127.0.0.1"]})
    async with file_server() as (port, _), client(
        resolver, base_url="http://emulator.test:8080"
    ) as api:
        result = await api.download(f"http://127.0.0.1:{port}/a.glb", tmp_path / "a")
    assert result.size == len(BODY)


async def test_base_url_on_loopback_does_not_open_the_private_network(tmp_path: Path) -> None:
    async with client(base_url="http://127.0.0.1:9") as api:
        with pytest.raises(UnsafeURLError):
            await api.download("http://169.254.169.254/creds", tmp_path / "a")


# -- redirects: every hop is checked -----------------------------------------------------


async def test_redirects_are_followed_to_the_file(tmp_path: Path) -> None:
    async with file_server() as (port, seen), client(allowed=["127.0.0.1"]) as api:
        result = await api.download(f"http://127.0.0.1:{port}/hop/2", tmp_path / "a")
    assert (result.size, seen) == (len(BODY), ["/hop/2", "/hop/1", "/hop/0", "/a.glb"])


async def test_redirect_to_a_refused_address_is_refused(tmp_path: Path) -> None:
    resolver = FakeResolver({"files.example.test": ["127.0.0.1"]})
    allowed = ["files.example.test"]
    async with file_server() as (port, seen), client(resolver, allowed=allowed) as api:
        with pytest.raises(UnsafeURLError) as caught:
            await api.download(
                f"http://files.example.test:{port}/to?u=http://169.254.169.254/creds",
                tmp_path / "a",
            )
    assert (caught.value.host, len(seen)) == ("169.254.169.254", 1)


async def test_redirect_to_loopback_under_another_name_is_refused(tmp_path: Path) -> None:
    resolver = FakeResolver({"files.example.test": ["127.0.0.1"]})
    allowed = ["files.example.test"]
    async with file_server() as (port, seen), client(resolver, allowed=allowed) as api:
        with pytest.raises(UnsafeURLError):
            await api.download(
                f"http://files.example.test:{port}/to?u=http://127.0.0.1:{port}/a.glb",
                tmp_path / "a",
            )
    assert seen == [f"/to?u=http://127.0.0.1:{port}/a.glb"]


async def test_endless_redirects_are_a_download_error(tmp_path: Path) -> None:
    async with file_server() as (port, _), client(allowed=["127.0.0.1"]) as api:
        with pytest.raises(DownloadError, match="redirects"):
            await api.download(f"http://127.0.0.1:{port}/hop/50", tmp_path / "a")
    assert leftovers(tmp_path) == []


# -- configuration -----------------------------------------------------------------------


def test_a_single_string_is_not_a_list_of_hosts() -> None:
    with pytest.raises(ConfigurationError):
        AvaturnClient(KEY, allowed_download_hosts="files.example.com")


def test_an_unreadable_allowed_host_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        AvaturnClient(KEY, allowed_download_hosts=["http://files.example.com/"])
