"""A custom transport written against the public names only."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from avaturn_async import AvaturnClient, Request, Response, ScanStatus, Timeouts, Transport

USER = "TGTLFCCRG67V6ERUMDTK3JNI5AYGF6XF"
AVATAR = "0b1f6f36-8c1a-4c43-9a4e-2c7b1c4f9b10"


class RecordingTransport:
    """Answers every request with one canned JSON body and records what it was asked."""

    def __init__(self, answer: object) -> None:
        self.body = json.dumps(answer).encode()
        self.seen: list[tuple[str, str, str | None]] = []

    async def send(
        self, request: Request, *, url: str, headers: Mapping[str, str], timeouts: Timeouts
    ) -> Response:
        self.seen.append((request.method, url, headers.get("authorization")))
        return Response(status=200, headers={"X-Request-Id": "req-1"}, body=self.body)

    async def download(
        self,
        url: str,
        destination: Path,
        *,
        headers: Mapping[str, str],
        timeouts: Timeouts,
        max_bytes: int | None = None,
    ) -> int:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


def test_recording_transport_satisfies_the_protocol() -> None:
    assert isinstance(RecordingTransport([]), Transport)


async def test_custom_transport_gets_the_whole_url_and_the_bearer_key() -> None:
    transport = RecordingTransport([])
    async with AvaturnClient("key-1", base_url="http://api.test", transport=transport) as client:
        await client.avatars.list(USER, include_not_ready=True)
    assert transport.seen == [
        (
            "GET",
            f"http://api.test/api/v1/users/{USER}/avatars?include_not_ready=true",
            "Bearer key-1",
        )
    ]


async def test_custom_transport_answer_is_read_into_typed_models() -> None:
    transport = RecordingTransport([{"id": AVATAR, "status": "ready"}])
    async with AvaturnClient("key-1", base_url="http://api.test", transport=transport) as client:
        avatars = await client.avatars.list(USER)
    assert [(a.id, a.status) for a in avatars] == [(AVATAR, ScanStatus.READY)]
