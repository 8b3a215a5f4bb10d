"""``client.download``: streaming a pre-signed file URL to disk, against small aiohttp.web apps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from avaturn_async import (
    AvaturnClient,
    DownloadedFile,
    DownloadError,
    DownloadTooLargeError,
    IncompleteDownloadError,
    InvalidRequestError,
)

KEY = "sk_live_do_not_send_me"
BODY = bytes(range(256)) * 64  # 16 KiB
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def file_server(handler: Handler) -> AsyncIterator[tuple[str, list[web.Request]]]:
    """Serve ``handler`` for every path on 127.0.0.1 (port 0); yields (base URL, requests seen)."""
    seen: list[web.Request] = []

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


async def whole_file(request: web.Request) -> web.StreamResponse:
    return web.Response(body=BODY, content_type="model/gltf-binary")


async def cut_after_half(request: web.Request) -> web.StreamResponse:
    """Declares the whole length, sends half, and drops the connection."""
    response = web.StreamResponse(headers={"Content-Length": str(len(BODY))})
    await response.prepare(request)
    await response.write(BODY[: len(BODY) // 2])
    assert request.transport is not None
    request.transport.close()
    return response


async def chunked_then_cut(request: web.Request) -> web.StreamResponse:
    """A chunked body (no length declared) whose connection drops mid-way."""
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(BODY[:4096])
    assert request.transport is not None
    request.transport.close()
    return response


async def chunked_whole(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for start in range(0, len(BODY), 4096):
        await response.write(BODY[start : start + 4096])
    await response.write_eof()
    return response


async def expired(request: web.Request) -> web.StreamResponse:
    return web.Response(status=403, text="<Error>Request has expired</Error>")


def local_client() -> AvaturnClient:
    """A client for Avaturn's public API whose downloads may reach the file server on 127.0.0.1."""
    return AvaturnClient(KEY, allowed_download_hosts=["127.0.0.1"])


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_download_writes_the_whole_file_and_says_where(tmp_path: Path) -> None:
    async with file_server(whole_file) as (base, _), local_client() as client:
        result = await client.download(f"{base}/a.glb?sig=x", tmp_path / "a.glb")
    assert (result, (tmp_path / "a.glb").read_bytes()) == (
        DownloadedFile(path=tmp_path / "a.glb", size=len(BODY)),
        BODY,
    )


async def test_download_leaves_no_temporary_file_beside_the_result(tmp_path: Path) -> None:
    async with file_server(whole_file) as (base, _), local_client() as client:
        await client.download(f"{base}/a.glb", tmp_path / "a.glb")
    assert leftovers(tmp_path) == ["a.glb"]


async def test_download_does_not_send_the_api_key(tmp_path: Path) -> None:
    async with file_server(whole_file) as (base, seen), local_client() as client:
        await client.download(f"{base}/a.glb", tmp_path / "a.glb")
    assert "Authorization" not in seen[0].headers


async def test_download_sends_a_presigned_query_byte_for_byte(tmp_path: Path) -> None:
    raw = "/exports/a.glb?X-Amz-Credential=AK%2F2024%2Fus&sig=s3cr%2Ft%3D%3D&e=a%20b"
    async with file_server(whole_file) as (base, seen), local_client() as client:
        await client.download(f"{base}{raw}", tmp_path / "a.glb")
    assert seen[0].raw_path == raw


async def test_download_cut_short_of_its_content_length_is_incomplete(tmp_path: Path) -> None:
    async with file_server(cut_after_half) as (base, _), local_client() as client:
        with pytest.raises(IncompleteDownloadError):
            await client.download(f"{base}/a.glb", tmp_path / "a.glb")


async def test_incomplete_download_leaves_nothing_behind(tmp_path: Path) -> None:
    async with file_server(cut_after_half) as (base, _), local_client() as client:
        with pytest.raises(IncompleteDownloadError):
            await client.download(f"{base}/a.glb", tmp_path / "a.glb")
    assert leftovers(tmp_path) == []


async def test_connection_lost_mid_chunked_body_is_incomplete(tmp_path: Path) -> None:
    async with file_server(chunked_then_cut) as (base, _), local_client() as client:
        with pytest.raises(IncompleteDownloadError):
            await client.download(f"{base}/a.glb", tmp_path / "a.glb")
    assert leftovers(tmp_path) == []


async def test_incomplete_download_keeps_an_existing_file_untouched(tmp_path: Path) -> None:
    (tmp_path / "a.glb").write_bytes(b"the previous, complete file")
    async with file_server(cut_after_half) as (base, _), local_client() as client:
        with pytest.raises(IncompleteDownloadError):
            await client.download(f"{base}/a.glb", tmp_path / "a.glb")
    assert (tmp_path / "a.glb").read_bytes() == b"the previous, complete file"


async def test_declared_length_over_the_cap_is_refused_before_reading(tmp_path: Path) -> None:
    async with file_server(whole_file) as (base, _), local_client() as client:
        with pytest.raises(DownloadTooLargeError) as caught:
            await client.download(f"{base}/a.glb", tmp_path / "a.glb", max_bytes=1000)
    assert (caught.value.max_bytes, caught.value.received) == (1000, 0)


async def test_undeclared_body_over_the_cap_stops_and_leaves_nothing(tmp_path: Path) -> None:
    async with file_server(chunked_whole) as (base, _), local_client() as client:
        with pytest.raises(DownloadTooLargeError):
            await client.download(f"{base}/a.glb", tmp_path / "a.glb", max_bytes=5000)
    assert leftovers(tmp_path) == []


async def test_body_exactly_at_the_cap_is_accepted(tmp_path: Path) -> None:
    async with file_server(chunked_whole) as (base, _), local_client() as client:
        result = await client.download(f"{base}/a.glb", tmp_path / "a.glb", max_bytes=len(BODY))
    assert result.size == len(BODY)


async def test_refused_download_is_a_download_error_with_the_status(tmp_path: Path) -> None:
    async with file_server(expired) as (base, _), local_client() as client:
        with pytest.raises(DownloadError) as caught:
            await client.download(f"{base}/a.glb?sig=secret", tmp_path / "a.glb")
    assert (caught.value.status, "secret" in str(caught.value)) == (403, False)


async def test_download_of_a_relative_url_is_an_invalid_request(tmp_path: Path) -> None:
    async with AvaturnClient(KEY, base_url="http://127.0.0.1:9") as client:
        with pytest.raises(InvalidRequestError):
            await client.download("/a.glb", tmp_path / "a.glb")
