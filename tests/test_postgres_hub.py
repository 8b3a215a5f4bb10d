"""``PostgresEventHub``: a webhook received by one replica wakes waiters in every replica."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import asyncpg
import pytest

from avaturn_async.postgres import PostgresEventHub, StorageUnavailableError
from avaturn_async.testing import WebhookSender, make_avatar_ready
from avaturn_async.webhooks import AvatarReady, WebhookPipeline, WebhookRouter
from avaturn_async.webhooks.aiohttp import serve_webhooks
from tests.pg_server import free_port

ROOT = Path(__file__).resolve().parents[1]

WAITER = """
import sys, anyio
from avaturn_async import AvaturnClient
from avaturn_async.postgres import PostgresEventHub, StorageUnavailableError

async def main(dsn):
    async with PostgresEventHub(dsn) as hub, AvaturnClient(
        "key", base_url="http://127.0.0.1:9", event_hub=hub
    ) as client:
        job = client.avatars.track(user_id="U1", avatar_id="A1")
        print("waiting", flush=True)
        with anyio.fail_after(30):
            event = await job.wait(poll_interval=3600)  # only the hub can end this
        print("resolved", event.avatar_id, flush=True)

anyio.run(main, sys.argv[1])
"""


async def test_a_webhook_received_by_one_process_resolves_a_job_waiting_in_another(
    postgres_dsn: str,
) -> None:
    sender = WebhookSender()
    router = WebhookRouter()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    async with (
        PostgresEventHub(postgres_dsn) as receiving_hub,
        serve_webhooks(WebhookPipeline(sender.verifier(), router)) as server,
        await anyio.open_process([sys.executable, "-c", WAITER, postgres_dsn], env=env) as waiter,
    ):
        receiving_hub.attach(router)
        assert waiter.stdout is not None
        with anyio.fail_after(30):
            first = await waiter.stdout.receive()
            status = await sender.deliver(server.url, make_avatar_ready(avatar_id="A1"))
            code = await waiter.wait()
            output = first + b"".join([chunk async for chunk in waiter.stdout])
    assert (status, code, output.decode().split()) == (204, 0, ["waiting", "resolved", "A1"])


async def test_events_larger_than_a_notify_payload_are_delivered(postgres_dsn: str) -> None:
    big = AvatarReady(avatar_id="A9", status="ready", raw={"padding": "x" * 20_000})
    async with PostgresEventHub(postgres_dsn) as sender, PostgresEventHub(postgres_dsn) as other:
        await sender.publish(big)
        with anyio.fail_after(10):
            got = await other.wait(("avatar", "A9"))
    assert got.raw["padding"] == "x" * 20_000


async def test_events_sent_while_a_listener_was_cut_off_are_caught_up(postgres_dsn: str) -> None:
    async with PostgresEventHub(postgres_dsn) as sender, PostgresEventHub(postgres_dsn) as other:
        before = other.postgres.connects
        admin = await asyncpg.connect(postgres_dsn)
        try:
            # Cut every listening session (the pools' sessions are idle, not listening).
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        await sender.publish(AvatarReady(avatar_id="A7", status="ready"))
        with anyio.fail_after(15):
            got = await other.wait(("avatar", "A7"))
            while other.postgres.connects == before:  # noqa: ASYNC110 - no event to wait on
                await anyio.sleep(0.01)
    assert got == AvatarReady(avatar_id="A7", status="ready")


async def test_a_hub_that_starts_later_sees_recent_events(postgres_dsn: str) -> None:
    async with PostgresEventHub(postgres_dsn) as sender:
        await sender.publish(AvatarReady(avatar_id="A5", status="ready"))
        async with PostgresEventHub(postgres_dsn) as late:
            with anyio.fail_after(10):
                got = await late.wait(("avatar", "A5"))
    assert got == AvatarReady(avatar_id="A5", status="ready")


async def test_a_hub_on_an_unreachable_server_fails_at_start_without_the_password() -> None:
    hub = PostgresEventHub(f"postgresql://app:s3cret@127.0.0.1:{free_port()}/db")
    with pytest.raises(StorageUnavailableError) as caught:
        await hub.start()
    assert "s3cret" not in str(caught.value)
