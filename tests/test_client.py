"""The client's own behaviour against small real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import socket
import tracemalloc
from pathlib import Path

import anyio
import pytest
from aiohttp import web

from avaturn_async import (
    AuthenticationError,
    AvaturnClient,
    ClientClosedError,
    Clock,
    ConfigurationError,
    ConnectError,
    NewUserResponse,
    RateLimitError,
    RequestTimeoutError,
    RetryPolicy,
    ServerError,
    Timeouts,
)
from tests.support import (
    SAMPLE_JPEG,
    ScriptedServer,
    json_answer,
    scripted_server,
    text_answer,
)

KEY = "sk_live_do_not_print_me"
AVATAR = "0b1f6f36-8c1a-4c43-9a4e-2c7b1c4f9b10"
JPEG = SAMPLE_JPEG


def make_client(server: ScriptedServer, **kwargs: object) -> tuple[AvaturnClient, list[float]]:
    """A client whose retry sleeps are recorded instead of waited."""
    sleeps: list[float] = []
    now = [0.0]

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)
        now[0] += delay

    clock = Clock(now=lambda: now[0], sleep=fake_sleep, random=lambda: 1.0)
    client = AvaturnClient(KEY, base_url=server.base_url, clock=clock, **kwargs)  # type: ignore[arg-type]
    return client, sleeps


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ configuration


def test_missing_api_key_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AVATURN_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="AVATURN_API_KEY"):
        AvaturnClient()


def test_api_key_and_base_url_fall_back_to_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVATURN_API_KEY", KEY)
    monkeypatch.setenv("AVATURN_BASE_URL", "http://127.0.0.1:9/")
    assert AvaturnClient().base_url == "http://127.0.0.1:9"


def test_base_url_defaults_to_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AVATURN_BASE_URL", raising=False)
    assert AvaturnClient(KEY).base_url == "https://api.avaturn.me"


def test_repr_hides_the_api_key() -> None:
    assert KEY not in repr(AvaturnClient(KEY))


async def test_closed_client_refuses_requests() -> None:
    async with scripted_server(json_answer(200, {"id": "U"})) as server:
        client, _ = make_client(server)
        await client.aclose()
        with pytest.raises(ClientClosedError):
            await client.users.create()
        assert server.seen == []


async def test_sends_bearer_key_and_user_agent() -> None:
    async with scripted_server(json_answer(200, {"id": "U"})) as server:
        client, _ = make_client(server)
        async with client:
            await client.users.create()
    headers = server.seen[0].headers
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["User-Agent"].startswith("avaturn-async/")


async def test_borrowed_session_is_left_open() -> None:
    import aiohttp

    async with (
        scripted_server(json_answer(200, {"id": "U"})) as server,
        aiohttp.ClientSession() as session,
    ):
        async with AvaturnClient(KEY, base_url=server.base_url, session=session) as client:
            assert await client.users.create() == NewUserResponse(id="U")
        assert not session.closed


# ------------------------------------------------------------------ retries


async def test_idempotent_call_retries_server_errors_with_backoff() -> None:
    async with scripted_server(json_answer(503), json_answer(502), json_answer(200, [])) as server:
        client, sleeps = make_client(server, retry=RetryPolicy(initial_delay=0.5))
        async with client:
            assert await client.avatars.list("U") == []
    assert len(server.seen) == 3
    assert sleeps == [0.5, 1.0]


async def test_retry_after_header_sets_the_wait() -> None:
    async with scripted_server(
        json_answer(429, {"detail": "slow down"}, {"Retry-After": "3"}),
        json_answer(200, {"id": "U"}),
    ) as server:
        client, sleeps = make_client(server)
        async with client:
            await client.users.create()
    assert sleeps == [3.0]


async def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    async with scripted_server(json_answer(500, {"detail": "boom"})) as server:
        client, sleeps = make_client(server, retry=RetryPolicy(max_attempts=3))
        async with client:
            with pytest.raises(ServerError, match="boom"):
                await client.avatars.list("U")
    assert (len(server.seen), len(sleeps)) == (3, 2)


async def test_create_user_is_not_retried_after_a_500() -> None:
    async with scripted_server(json_answer(500), json_answer(200, {"id": "U"})) as server:
        client, _ = make_client(server)
        async with client:
            with pytest.raises(ServerError):
                await client.users.create()
    assert len(server.seen) == 1


async def test_create_user_is_retried_after_a_503() -> None:
    async with scripted_server(json_answer(503), json_answer(200, {"id": "U"})) as server:
        client, _ = make_client(server)
        async with client:
            assert (await client.users.create()).id == "U"
    assert len(server.seen) == 2


async def test_rate_limit_error_exposes_retry_after_when_retries_run_out() -> None:
    async with scripted_server(json_answer(429, None, {"Retry-After": "2"})) as server:
        client, _ = make_client(server, retry=RetryPolicy.off())
        async with client:
            with pytest.raises(RateLimitError) as info:
                await client.users.create()
    assert info.value.retry_after == 2.0


async def test_connect_error_is_retried_even_for_create() -> None:
    sleeps: list[float] = []

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)

    client = AvaturnClient(
        KEY,
        base_url=f"http://127.0.0.1:{free_port()}",
        retry=RetryPolicy(max_attempts=3),
        clock=Clock(sleep=fake_sleep),
    )
    async with client:
        with pytest.raises(ConnectError):
            await client.users.create()
    assert len(sleeps) == 2


async def slow(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(1)
    return web.json_response({"id": "late"})


async def test_timeout_is_a_typed_error_and_create_is_not_retried() -> None:
    async with scripted_server(slow) as server:
        client, sleeps = make_client(server, timeouts=Timeouts(request=0.2))
        async with client:
            with pytest.raises(RequestTimeoutError):
                await client.users.create()
    assert (len(server.seen), sleeps) == (1, [])


async def test_timeout_is_retried_for_idempotent_calls() -> None:
    async with scripted_server(slow, json_answer(200, [])) as server:
        client, sleeps = make_client(server, timeouts=Timeouts(request=0.2))
        async with client:
            assert await client.avatars.list("U") == []
    assert len(sleeps) == 1


async def test_caller_deadline_cancels_without_retrying() -> None:
    async with scripted_server(slow) as server:
        client, sleeps = make_client(server)
        async with client:
            with pytest.raises(TimeoutError):
                with anyio.fail_after(0.2):
                    await client.avatars.list("U")
    assert (len(server.seen), sleeps) == (1, [])


# ------------------------------------------------------------------ limits and secrets


async def test_concurrency_limit_caps_requests_in_flight_at_the_server() -> None:
    # Requests are held until three are in flight together (an event, not a delay):
    # a lower cap fails at the deadline, a higher one shows in max_in_flight.
    three_in_flight = anyio.Event()

    async def held(request: web.Request) -> web.StreamResponse:
        if server.in_flight >= 3:
            three_in_flight.set()
        with anyio.fail_after(10):
            await three_in_flight.wait()
        return web.json_response([])

    async with scripted_server(held) as server:
        client, _ = make_client(server, max_concurrency=3)
        async with client, anyio.create_task_group() as tg:
            for _ in range(12):
                tg.start_soon(client.avatars.list, "U")
    assert (len(server.seen), server.max_in_flight) == (12, 3)


async def test_api_key_never_appears_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="avaturn_async")
    async with scripted_server(json_answer(401, {"detail": "bad key"})) as server:
        client, _ = make_client(server)
        async with client:
            with pytest.raises(AuthenticationError) as info:
                await client.users.create()
    error = info.value
    assert KEY not in f"{error} {error!r} {error.body} {error.headers}"
    assert KEY not in caplog.text


async def test_non_json_error_body_still_gives_a_typed_error() -> None:
    async with scripted_server(text_answer(500, "upstream exploded")) as server:
        client, _ = make_client(server, retry=RetryPolicy.off())
        async with client:
            with pytest.raises(ServerError, match="upstream exploded"):
                await client.avatars.list("U")


# ------------------------------------------------------------------ uploads


async def drain(request: web.Request) -> web.StreamResponse:
    total = 0
    reader = await request.multipart()
    async for part in reader:
        while chunk := await part.read_chunk(1 << 16):  # type: ignore[union-attr]
            total += len(chunk)
    return web.json_response({"status": "ok", "bytes": total})


async def test_upload_streams_a_large_file_without_loading_it(tmp_path: Path) -> None:
    size = 48 * 1024 * 1024
    big = tmp_path / "big.jpg"
    with big.open("wb") as out:
        out.write(JPEG)
        out.truncate(size)
    async with scripted_server(drain, read_body=False) as server:
        client, _ = make_client(server)
        async with client:
            tracemalloc.start()
            try:
                result = await client.avatars.upload_photos(
                    f"{server.base_url}/upload?signature=s",
                    frontal=big,
                    side_1=JPEG,
                    side_2=JPEG,
                    body_type="male",
                )
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    assert result.raw["bytes"] >= size
    assert peak < size // 4


async def test_upload_sends_no_authorization_header() -> None:
    async with scripted_server(json_answer(200, {"status": "ok"})) as server:
        client, _ = make_client(server)
        async with client:
            await client.avatars.upload_photos(
                f"{server.base_url}/upload?signature=s",
                frontal=JPEG,
                side_1=JPEG,
                side_2=JPEG,
                body_type="female",
            )
    assert "Authorization" not in server.seen[0].headers


async def test_bad_photo_sends_nothing() -> None:
    async with scripted_server(
        json_answer(200, {"avatar_id": AVATAR, "upload_url": "x"})
    ) as server:
        client, _ = make_client(server)
        async with client:
            with pytest.raises(ValueError, match="side_2 photo is not a JPEG"):
                await client.avatars.create_from_photos(
                    "U", frontal=JPEG, side_1=JPEG, side_2=b"GIF89a", body_type="male"
                )
    assert server.seen == []


async def test_rate_limited_create_is_retried_past_max_attempts() -> None:
    refusals = [json_answer(429, None, {"Retry-After": "0"})] * 5
    async with scripted_server(*refusals, json_answer(200, {"id": "U"})) as server:
        client, _ = make_client(server, retry=RetryPolicy(max_attempts=2))
        async with client:
            user = await client.users.create()
    assert (user.id, len(server.seen)) == ("U", 6)


async def test_rate_limit_retries_stop_at_the_time_budget() -> None:
    async with scripted_server(json_answer(429, None, {"Retry-After": "10"})) as server:
        client, sleeps = make_client(server, retry=RetryPolicy(max_total_time=25))
        async with client:
            with pytest.raises(RateLimitError):
                await client.users.create()
    assert (sleeps, len(server.seen)) == ([10.0, 10.0], 3)
