"""PostgresInbox under real faults: receivers SIGKILLed mid-burst, the server restarted.

Senders behave as Avaturn's does: a delivery that is not answered 2xx (refused,
reset, 503) is sent again, possibly to another replica, with the same
``webhook-id``. "Acknowledged" means answered 2xx.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from pathlib import Path

import aiohttp
import anyio
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

import avaturn_async
from avaturn_async.postgres import PostgresInbox
from avaturn_async.testing import make_render_ready, make_webhook_secret, sign_webhook
from avaturn_async.webhooks import (
    Event,
    RenderReady,
    WebhookPipeline,
    WebhookRouter,
    WebhookVerifier,
)
from avaturn_async.webhooks.aiohttp import serve_webhooks
from tests.inbox_support import eventually
from tests.pg_server import PostgresServer

SECRET = make_webhook_secret()
REPO_ROOT = Path(avaturn_async.__file__).resolve().parents[1]
LEASE = 1.0

REPLICA = """\
import os, sys
import anyio
from avaturn_async.postgres import PostgresInbox
from avaturn_async.webhooks import WebhookPipeline, WebhookRouter, WebhookVerifier
from avaturn_async.webhooks.aiohttp import serve_webhooks

async def main() -> None:
    dsn, log, lease = sys.argv[1], sys.argv[2], float(sys.argv[3])
    router = WebhookRouter()
    out = open(log, "a", buffering=1)

    @router.on_any
    async def record(event) -> None:
        out.write(event.id + "\\n")   # one line per dispatch, flushed
        await anyio.sleep(0.005)

    verifier = WebhookVerifier(os.environ["AVATURN_WEBHOOK_SECRET"])
    async with PostgresInbox(dsn) as inbox:
        async with inbox.worker(router, lease=lease, poll_interval=0.2):
            pipeline = WebhookPipeline(verifier, WebhookRouter(), inbox=inbox)
            async with serve_webhooks(pipeline) as server:
                print(server.url, flush=True)
                await anyio.sleep_forever()

anyio.run(main)
"""


async def start_replica(script: Path, dsn: str, log: Path) -> tuple[Process, str]:
    env = {
        **os.environ,
        "AVATURN_WEBHOOK_SECRET": SECRET,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *sys.path]),
    }
    process = await anyio.open_process(
        [sys.executable, str(script), dsn, str(log), str(LEASE)], env=env
    )
    assert process.stdout is not None
    with anyio.fail_after(30):
        line = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 200)
    assert line.startswith(b"http://127.0.0.1:"), f"replica did not start: {line!r}"
    return process, line.decode().strip()


async def kill(process: Process) -> None:
    os.kill(process.pid, signal.SIGKILL)
    with anyio.fail_after(10):
        await process.wait()
    await process.aclose()


class Sender:
    """Delivers until acknowledged, trying the live replicas in turn."""

    def __init__(self, session: aiohttp.ClientSession, urls: list[str]) -> None:
        self.session, self.urls = session, urls
        self.acknowledged: set[str] = set()

    async def deliver(self, event: RenderReady, msg_id: str, first: int) -> None:
        attempt = first
        with anyio.fail_after(60):
            while True:
                body, headers = sign_webhook(event, SECRET, msg_id=msg_id)
                url = self.urls[attempt % len(self.urls)]
                attempt += 1
                try:
                    async with self.session.post(url, data=body, headers=headers) as answer:
                        if answer.status < 300:
                            self.acknowledged.add(event.id)
                            return
                except aiohttp.ClientError:
                    pass
                await anyio.sleep(0.05)


def dispatched(logs: list[Path]) -> Counter[str]:
    lines = [line for log in logs if log.exists() for line in log.read_text().splitlines()]
    return Counter(lines)


@pytest.mark.slow
async def test_three_replicas_one_killed_mid_burst_dispatch_every_acknowledged_delivery_once(
    tmp_path: Path, postgres_dsn: str
) -> None:
    async with PostgresInbox(postgres_dsn) as inbox:  # install the schema once
        pass
    script = tmp_path / "replica.py"
    script.write_text(REPLICA)
    logs = [tmp_path / f"dispatched-{n}.log" for n in range(3)]
    replicas = [await start_replica(script, postgres_dsn, log) for log in logs]
    events = [make_render_ready() for _ in range(240)]
    try:
        async with aiohttp.ClientSession() as session:
            sender = Sender(session, [url for _, url in replicas])
            async with anyio.create_task_group() as group:
                for n, event in enumerate(events):
                    msg_id = f"msg_{n}"
                    group.start_soon(sender.deliver, event, msg_id, n)
                    if n % 4 == 0:  # a redelivery, to another replica
                        group.start_soon(sender.deliver, event, msg_id, n + 1)
                    if n == len(events) // 3:
                        await kill(replicas[2][0])
                    await anyio.sleep(0.005)

        async def all_done() -> bool:
            return (await inbox.counts())["done"] == len(events)

        async with PostgresInbox(postgres_dsn) as inbox:
            await eventually(all_done, deadline=60)
    finally:
        for process, _ in replicas[:2]:
            await kill(process)
    counts = dispatched(logs)
    assert sender.acknowledged == {event.id for event in events}
    assert set(counts) == sender.acknowledged
    twice = [event_id for event_id, seen in counts.items() if seen > 1]
    assert len(twice) <= 1  # only what the killed replica had in flight (concurrency 1)
    assert max(counts.values()) <= 2


@pytest.mark.slow
async def test_worker_rides_out_a_server_restart_mid_burst_and_loses_nothing(
    postgres_server: PostgresServer,
) -> None:
    dsn = postgres_server.dsn
    seen: list[str] = []
    router = WebhookRouter()

    @router.on_any
    async def record(event: Event) -> None:
        assert isinstance(event, RenderReady)
        seen.append(event.id)

    events = [make_render_ready() for _ in range(300)]
    async with PostgresInbox(dsn) as inbox:
        async with (
            inbox.worker(router, lease=5, poll_interval=0.2, concurrency=4),
            serve_webhooks(
                WebhookPipeline(WebhookVerifier(SECRET), WebhookRouter(), inbox=inbox)
            ) as server,
            aiohttp.ClientSession() as session,
        ):
            sender = Sender(session, [server.url])
            async with anyio.create_task_group() as group:
                for n, event in enumerate(events):
                    group.start_soon(sender.deliver, event, f"msg_{n}", 0)
                    if n == len(events) // 3:
                        await anyio.to_thread.run_sync(postgres_server.restart)
                    await anyio.sleep(0.002)

            async def all_done() -> bool:
                # A handler whose "done" was lost to the restart runs again after its
                # lease: at least once, so wait for the table, not the first dispatch.
                return (await inbox.counts())["done"] == len(events)

            await eventually(all_done, deadline=60)
            counts = await inbox.counts()
    assert sender.acknowledged == {event.id for event in events}
    assert set(seen) == sender.acknowledged
    assert counts == {"pending": 0, "done": len(events), "dead": 0}
