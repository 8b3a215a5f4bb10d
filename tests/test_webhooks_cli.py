"""``avaturn webhooks send|verify`` and the emulator command's unsigned, token-carrying webhooks.

``send`` posts to real receivers (the ASGI app under uvicorn, in a thread, since the
command runs its own event loop); ``verify`` reads captured deliveries from files
and standard input.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web
from anyio.streams.buffered import BufferedByteReceiveStream

from avaturn_async import AvaturnClient
from avaturn_async._cli import main
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import make_avatar_ready, make_webhook_secret, sign_webhook
from avaturn_async.webhooks import (
    AvatarReady,
    Event,
    ExportReady,
    RenderReady,
    SharedTokenVerifier,
    WebhookPipeline,
    WebhookRouter,
    WebhookVerifier,
)
from avaturn_async.webhooks.asgi import WebhookApp
from tests.support import SwappableASGI, uvicorn_server

SECRET = make_webhook_secret()
TOKEN = "cli-token-0123456789abcdef"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, SwappableASGI]]:
    with uvicorn_server("/hooks/avaturn") as server:
        yield server


@pytest.fixture(autouse=True)
def no_secret_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AVATURN_WEBHOOK_SECRET", raising=False)


def receiver(served: tuple[str, SwappableASGI], verifier: Any) -> tuple[str, list[Event]]:
    url, holder = served
    router, seen = WebhookRouter(), list[Event]()
    router.on_any(seen.append)
    holder.target = WebhookApp(WebhookPipeline(verifier, router))
    return url, seen


def send(*args: str) -> int:
    return main(["webhooks", "send", *args])


# -- send ------------------------------------------------------------------------------


def test_send_signed_avatar_ready_is_received_and_exits_0(
    served: tuple[str, SwappableASGI], capsys: pytest.CaptureFixture[str]
) -> None:
    url, seen = receiver(served, WebhookVerifier(SECRET))
    code = send("avatar.ready", "--to", url, "--secret", SECRET, "--avatar-id", "av-1")
    assert (code, [type(e) for e in seen]) == (0, [AvatarReady])
    assert getattr(seen[0], "avatar_id", None) == "av-1"
    assert "-> 204" in capsys.readouterr().out


def test_send_reads_the_secret_from_the_environment(
    served: tuple[str, SwappableASGI], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = receiver(served, WebhookVerifier(SECRET))
    monkeypatch.setenv("AVATURN_WEBHOOK_SECRET", SECRET)
    assert (send("render.ready", "--to", url, "--render-id", "r-9"), len(seen)) == (0, 1)
    assert isinstance(seen[0], RenderReady)
    assert getattr(seen[0], "id", None) == "r-9"


def test_send_with_the_wrong_secret_prints_the_refusal_and_exits_1(
    served: tuple[str, SwappableASGI], capsys: pytest.CaptureFixture[str]
) -> None:
    url, seen = receiver(served, WebhookVerifier(SECRET))
    code = send("avatar.ready", "--to", url, "--secret", make_webhook_secret())
    out = capsys.readouterr().out
    assert (code, seen, "-> 401" in out, "no_matching_signature" in out) == (1, [], True, True)


def test_send_unsigned_with_a_token_reaches_a_token_receiver(
    served: tuple[str, SwappableASGI], capsys: pytest.CaptureFixture[str]
) -> None:
    url, seen = receiver(served, SharedTokenVerifier(TOKEN))
    file_url = "https://f.example/a.glb"
    code = send("export.ready", "--to", url, "--token", TOKEN, "--file-url", file_url)
    assert (code, [type(e) for e in seen]) == (0, [ExportReady])
    assert getattr(seen[0], "export_url", None) == "https://f.example/a.glb"
    assert "webhook-signature" not in capsys.readouterr().out


def test_send_never_prints_the_token_of_the_url(
    served: tuple[str, SwappableASGI], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = receiver(served, SharedTokenVerifier(TOKEN, header=None, query_param="token"))
    assert send("avatar.ready", "--to", f"{url}?token={TOKEN}", "--unsigned") == 0
    assert TOKEN not in capsys.readouterr().out


def test_send_without_a_secret_or_unsigned_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert send("avatar.ready", "--to", "http://127.0.0.1:9/x") == 2
    assert "--unsigned" in capsys.readouterr().err


@asynccontextmanager
async def redirecting() -> AsyncIterator[str]:
    async def moved(request: web.Request) -> web.StreamResponse:
        raise web.HTTPTemporaryRedirect("/hooks/avaturn/")

    app = web.Application()
    app.router.add_post("/hooks/avaturn", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hooks/avaturn"
    finally:
        await runner.cleanup()


async def test_send_to_a_redirect_exits_1_and_says_senders_do_not_follow() -> None:
    out = io.StringIO()
    from avaturn_async._cli import _parser
    from avaturn_async._cli._webhooks import run_webhooks_command

    async with redirecting() as url:
        args = _parser().parse_args(["webhooks", "send", "avatar.ready", "--to", url, "--unsigned"])
        code = await run_webhooks_command(args, out)
    assert (code, "-> 307" in out.getvalue(), "do not follow redirects" in out.getvalue()) == (
        1,
        True,
        True,
    )


def test_send_to_nobody_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        code = send("avatar.ready", "--to", f"http://127.0.0.1:{port}/x", "--unsigned")
    assert (code, "no answer" in capsys.readouterr().out) == (1, True)


# -- verify ----------------------------------------------------------------------------


def capture(tmp_path: Path, **options: Any) -> tuple[Path, list[str]]:
    """A signed delivery written to a file, and its headers as ``-H`` arguments."""
    body, headers = sign_webhook(make_avatar_ready(avatar_id="av-7"), SECRET, **options)
    path = tmp_path / "body.json"
    path.write_bytes(body)
    return path, [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]


def verify(*args: str) -> int:
    return main(["webhooks", "verify", *args])


def test_verify_prints_the_typed_event_of_a_signed_delivery(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, headers = capture(tmp_path)
    assert verify(str(path), *headers, "--secret", SECRET) == 0
    out = capsys.readouterr().out
    assert ("verified" in out, "AvatarReady(" in out, "av-7" in out) == (True, True, True)


def test_verify_refuses_a_tampered_body_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, headers = capture(tmp_path)
    path.write_bytes(path.read_bytes().replace(b"av-7", b"av-8"))
    assert verify(str(path), *headers, "--secret", SECRET) == 1
    assert "refused (no_matching_signature)" in capsys.readouterr().out


def test_verify_refuses_an_old_capture_unless_the_tolerance_allows_it(tmp_path: Path) -> None:
    path, headers = capture(tmp_path, timestamp=1_000_000_000)
    strict = verify(str(path), *headers, "--secret", SECRET)
    lenient = verify(str(path), *headers, "--secret", SECRET, "--tolerance", "1e10")
    assert (strict, lenient) == (1, 0)


def test_verify_reads_the_body_from_standard_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, headers = capture(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    monkeypatch.setenv("AVATURN_WEBHOOK_SECRET", SECRET)
    assert verify(*headers) == 0


def test_verify_checks_a_token_from_the_captured_url(tmp_path: Path) -> None:
    path = tmp_path / "body.json"
    path.write_bytes(json.dumps({"event": "avatar.ready", "avatar_id": "a"}).encode())
    url = f"https://hooks.example/avaturn?token={TOKEN}"
    good = verify(str(path), "--token", TOKEN, "--token-query", "token", "--url", url)
    bad = verify(str(path), "--token", TOKEN, "--token-query", "token", "--url", "https://h/x")
    assert (good, bad) == (0, 1)


def test_verify_unsigned_only_parses_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "body.json"
    path.write_bytes(b'{"event":"avatar.ready","avatar_id":"a"}')
    assert verify(str(path), "--unsigned") == 0
    assert "NOT authenticated" in capsys.readouterr().out


def test_verify_of_a_malformed_body_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "body.json"
    path.write_bytes(b'{"event": 3}')
    assert verify(str(path), "--unsigned") == 1


def test_verify_with_nothing_to_verify_with_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, headers = capture(tmp_path)
    assert verify(str(path), *headers) == 2
    assert "--secret" in capsys.readouterr().err


# -- avaturn emulator --unsigned-webhooks --webhook-token ------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_emulator_command_sends_unsigned_webhooks_with_the_token_in_the_url() -> None:
    seen: list[web.Request] = []

    async def record(request: web.Request) -> web.StreamResponse:
        await request.read()
        seen.append(request)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", record)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    hook = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    port = free_port()
    command = [
        sys.executable, "-m", "avaturn_async", "emulator", "--port", str(port),
        "--processing-delay", "0.01", "--webhook-url", hook,
        "--unsigned-webhooks", "--webhook-token", TOKEN,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        async with await anyio.open_process(command, env=env) as process:
            assert process.stdout is not None
            lines = BufferedByteReceiveStream(process.stdout)
            with anyio.fail_after(20):
                banner = [(await lines.receive_until(b"\n", 4096)).decode() for _ in range(3)]
                await emulate_one_avatar(port)
                while not seen:  # noqa: ASYNC110 (the emulator is another process)
                    await anyio.sleep(0.02)
            process.send_signal(signal.SIGINT)
            with anyio.fail_after(10):
                await process.wait()
    finally:
        await runner.cleanup()
    assert ("unsigned" in banner[2], TOKEN in "".join(banner)) == (True, False)
    assert (seen[0].query["token"], "webhook-signature" in seen[0].headers) == (TOKEN, False)


async def emulate_one_avatar(port: int) -> None:
    async with AvaturnClient("emulator-key", base_url=f"http://127.0.0.1:{port}") as client:
        user = await client.users.create()
        frontal, side_1, side_2 = sample_photo_paths()
        await client.avatars.create_from_photos(
            user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="male"
        )
