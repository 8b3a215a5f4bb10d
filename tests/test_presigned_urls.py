"""Pre-signed upload URLs go out byte for byte: a signer may check the raw query."""

from __future__ import annotations

from aiohttp import web

from avaturn_async import AvaturnClient
from tests.support import SAMPLE_JPEG, scripted_server

JPEG = SAMPLE_JPEG
RAW = "/upload/7c5f3f5e?X-Amz-Credential=AK%2F2024%2Fus&sig=s3cr%2Ft%3D%3D"


async def test_upload_url_query_is_sent_exactly_as_received() -> None:
    raw_paths: list[str] = []

    async def upload(request: web.Request) -> web.StreamResponse:
        raw_paths.append(request.raw_path)
        return web.json_response({"status": "ok"})

    async with scripted_server(upload) as server, AvaturnClient("k") as client:
        await client.avatars.upload_photos(
            f"{server.base_url}{RAW}", frontal=JPEG, side_1=JPEG, side_2=JPEG, body_type="male"
        )
    assert raw_paths == [RAW]


async def test_upload_url_needing_encoding_is_still_encoded() -> None:
    raw_paths: list[str] = []

    async def upload(request: web.Request) -> web.StreamResponse:
        raw_paths.append(request.raw_path)
        return web.json_response({"status": "ok"})

    async with scripted_server(upload) as server, AvaturnClient("k") as client:
        await client.avatars.upload_photos(
            f"{server.base_url}/up load?a=b c",
            frontal=JPEG,
            side_1=JPEG,
            side_2=JPEG,
            body_type="male",
        )
    assert raw_paths == ["/up%20load?a=b+c"]
