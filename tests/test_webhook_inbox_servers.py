"""Receivers with an inbox, over loopback: ASGI under uvicorn, aiohttp, and a SIGKILL."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import anyio
import pytest
from aiohttp import web
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

import avaturn_async
from avaturn_async.testing import make_render_ready, make_webhook_secret, sign_webhook
from avaturn_async.webhooks import (
    Event,
    WebhookInbox,
    WebhookPipeline,
    WebhookRouter,
    WebhookVerifier,
)
from avaturn_async.webhooks.aiohttp import make_app
from avaturn_async.webhooks.asgi import WebhookApp
from tests.support import SwappableASGI
from tests.support import uvicorn_server as run_uvicorn

SECRET = make_webhook_secret()
REPO_ROOT = Path(avaturn_async.__file__).resolve().parents[1]

RECEIVER = """\
import os, sys
import anyio
from avaturn_async.webhooks import WebhookInbox, WebhookPipeline, WebhookRouter, WebhookVerifier
from avaturn_async.webhooks.aiohttp import serve_webhooks

async def main() -> None:
    inbox = WebhookInbox(sys.argv[1])   # no worker: events are only stored
    verifier = WebhookVerifier(os.environ["AVATURN_WEBHOOK_SECRET"])
    async with serve_webhooks(WebhookPipeline(verifier, WebhookRouter(), inbox=inbox)) as server:
        print(server.url, flush=True)
        await anyio.sleep_forever()

anyio.run(main)
"""


@pytest.fixture(scope="module")
def uvicorn_server() -> Iterator[tuple[str, SwappableASGI]]:
    with run_uvicorn("/hooks/avaturn") as served:
        yield served


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


Serve = Callable[[WebhookInbox, WebhookRouter], Awaitable[str]]


@pytest.fixture(params=["asgi", "aiohttp"])
async def serve(
    request: pytest.FixtureRequest, uvicorn_server: tuple[str, SwappableASGI]
) -> AsyncIterator[Serve]:
    """Start the receiver under test, storing into the inbox; returns its URL."""
    runners: list[web.AppRunner] = []

    async def start(inbox: WebhookInbox, router: WebhookRouter) -> str:
        verifier = WebhookVerifier(SECRET)
        if request.param == "asgi":
            url, holder = uvicorn_server
            holder.target = WebhookApp(WebhookPipeline(verifier, router, inbox=inbox))
            return url
        pipeline = WebhookPipeline(verifier, router, inbox=inbox)
        runner = web.AppRunner(make_app(pipeline, path="/hooks/avaturn"))
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{runner.addresses[0][1]}/hooks/avaturn"

    yield start
    for runner in runners:
        await runner.cleanup()


def recording_router() -> tuple[WebhookRouter, list[Event]]:
    router, seen = WebhookRouter(), list[Event]()
    router.on_any(seen.append)
    return router, seen


async def test_receiver_stores_into_the_inbox_and_answers_202_before_dispatch(
    serve: Serve, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    router, seen = recording_router()
    with WebhookInbox(tmp_path / "inbox.db") as inbox:
        url = await serve(inbox, router)
        event = make_render_ready()
        body, headers = sign_webhook(event, SECRET)
        async with session.post(url, data=body, headers=headers) as response:
            assert (response.status, seen) == (202, [])
        assert await inbox.counts() == {"pending": 1, "done": 0, "dead": 0}
        await inbox.dispatch_due(router)
    assert seen == [event]


async def test_receiver_with_inbox_still_rejects_bad_signatures(
    serve: Serve, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    with WebhookInbox(tmp_path / "inbox.db") as inbox:
        url = await serve(inbox, WebhookRouter())
        body, headers = sign_webhook(make_render_ready(), make_webhook_secret())
        async with session.post(url, data=body, headers=headers) as response:
            assert response.status == 401
        assert await inbox.counts() == {"pending": 0, "done": 0, "dead": 0}


async def _start_receiver(script: Path, db: Path) -> tuple[Process, str]:
    """Run the receiver script in a child process; returns it and the URL it printed."""
    env = {
        **os.environ,
        "AVATURN_WEBHOOK_SECRET": SECRET,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    process = await anyio.open_process([sys.executable, str(script), str(db)], env=env)
    assert process.stdout is not None
    with anyio.fail_after(15):
        line = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 200)
    assert line.startswith(b"http://127.0.0.1:"), f"receiver did not start: {line!r}"
    return process, line.decode().strip()


async def test_acknowledged_events_survive_sigkill_and_are_dispatched_once_after_restart(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    script, db = tmp_path / "receiver.py", tmp_path / "inbox.db"
    script.write_text(RECEIVER)
    process, url = await _start_receiver(script, db)
    events = [make_render_ready() for _ in range(5)]
    deliveries = [sign_webhook(event, SECRET) for event in events]
    deliveries.append(deliveries[0])  # a redelivery: acknowledged, stored once
    try:
        for body, headers in deliveries:
            async with session.post(url, data=body, headers=headers) as response:
                assert response.status == 202
    finally:
        os.kill(process.pid, signal.SIGKILL)
        with anyio.fail_after(10):
            await process.wait()
        await process.aclose()
    assert process.returncode == -signal.SIGKILL
    router, seen = recording_router()
    with WebhookInbox(db) as inbox:  # the restart: a fresh process opening the same file
        while await inbox.dispatch_due(router, limit=10):
            pass
        counts = await inbox.counts()
    assert (len(seen), set(seen)) == (len(events), set(events))  # each exactly once
    assert counts == {"pending": 0, "done": 5, "dead": 0}
