"""Confirmation with the durable inbox: a stored delivery is confirmed when dispatched.

Deliveries are posted over HTTP to receivers on 127.0.0.1 (the aiohttp adapter and
the ASGI app), stored, and confirmed by the worker against the emulator; API
errors at dispatch are failed attempts, retried like a handler's failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from avaturn_async import AvaturnClient, ConfigurationError, RetryPolicy
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import AvaturnEmulator, event_to_bytes, make_avatar_ready
from avaturn_async.webhooks import (
    AvatarReady,
    EventConfirmer,
    InboxStatus,
    WebhookInbox,
    WebhookPipeline,
    WebhookRouter,
)
from avaturn_async.webhooks.aiohttp import serve_webhooks
from avaturn_async.webhooks.asgi import WebhookApp
from tests.inbox_support import (
    BACKOFF,
    FakeClock,
    dispatch,
    eventually,
    only_record,
    open_inbox,
    recording_router,
)
from tests.support import uvicorn_in_loop


@pytest.fixture
async def emu() -> AsyncIterator[AvaturnEmulator]:
    async with AvaturnEmulator(processing_delay=0.01, sign_webhooks=False) as emulator:
        yield emulator


@pytest.fixture
async def api(emu: AvaturnEmulator) -> AsyncIterator[AvaturnClient]:
    async with AvaturnClient(emu.api_key, base_url=emu.base_url) as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def inbox(tmp_path: Path, clock: FakeClock) -> AsyncIterator[WebhookInbox]:
    async with WebhookInbox(tmp_path / "webhooks.db", now=clock) as opened:
        yield opened


@asynccontextmanager
async def receiver(kind: str, pipeline: WebhookPipeline) -> AsyncIterator[str]:
    if kind == "asgi":
        async with uvicorn_in_loop(WebhookApp(pipeline)) as url:
            yield url
        return
    async with serve_webhooks(pipeline) as server:
        yield server.url


async def post(url: str, event: AvatarReady, headers: dict[str, str] | None = None) -> int:
    async with aiohttp.ClientSession() as session, session.post(
        url, data=event_to_bytes(event), headers=headers or {}, allow_redirects=False
    ) as answer:
        return answer.status


async def ready_avatar(client: AvaturnClient) -> AvatarReady:
    user = await client.users.create()
    frontal, side_1, side_2 = sample_photo_paths()
    job = await client.avatars.create_from_photos(
        user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="male"
    )
    ready = await job.wait(poll_interval=0.01)
    return make_avatar_ready(avatar_id=ready.avatar_id, user_id=user.id)


def confirmer(client: AvaturnClient) -> EventConfirmer:
    return EventConfirmer(client, url_hosts=())


@pytest.mark.parametrize("kind", ["aiohttp", "asgi"])
async def test_stored_forged_event_is_done_without_dispatch(
    kind: str, inbox: WebhookInbox, api: AvaturnClient
) -> None:
    check = confirmer(api)
    router, calls = recording_router()
    pipeline = WebhookPipeline(None, router, inbox=inbox, confirm=check)
    forged = make_avatar_ready(user_id=(await api.users.create()).id)
    async with receiver(kind, pipeline) as url:
        status = await post(url, forged)
    await dispatch(inbox, router, confirm=check)
    record = await only_record(inbox)
    assert (status, record.status, calls) == (202, InboxStatus.DONE, [])
    assert check.counts["contradicted"] == 1


@pytest.mark.parametrize("kind", ["aiohttp", "asgi"])
async def test_stored_genuine_event_is_dispatched_once_confirmed(
    kind: str, inbox: WebhookInbox, api: AvaturnClient
) -> None:
    router, calls = recording_router()
    pipeline = WebhookPipeline(None, router, inbox=inbox, confirm=confirmer(api))
    event = await ready_avatar(api)
    async with receiver(kind, pipeline) as url:
        status = await post(url, event)
    await dispatch(inbox, router, confirm=pipeline.confirm)
    assert (status, calls) == (202, [event])


async def test_postgres_inbox_confirms_at_dispatch_too(
    postgres_dsn: str, api: AvaturnClient
) -> None:
    router, calls = recording_router()
    event = await ready_avatar(api)
    forged = make_avatar_ready(user_id=event.user_id)
    async with open_inbox(postgres_dsn) as shared:
        pipeline = WebhookPipeline(None, router, inbox=shared, confirm=confirmer(api))
        for delivery in (forged, event):
            await pipeline.handle(event_to_bytes(delivery), {})
        await dispatch(shared, router, confirm=pipeline.confirm, limit=2)
        counts = await shared.counts()
    assert (counts["done"], calls) == (2, [event])


async def test_receipt_asks_nothing_of_the_api_the_worker_does(
    inbox: WebhookInbox, api: AvaturnClient, emu: AvaturnEmulator
) -> None:
    router, _ = recording_router()
    pipeline = WebhookPipeline(None, router, inbox=inbox, confirm=confirmer(api))
    event = await ready_avatar(api)
    before = emu.stats.requests["avatars.list"]
    await pipeline.handle(event_to_bytes(event), {})
    at_receipt = emu.stats.requests["avatars.list"] - before
    await dispatch(inbox, router, confirm=pipeline.confirm)
    assert (at_receipt, emu.stats.requests["avatars.list"] - before) == (0, 1)


async def test_delivery_stored_before_a_crash_is_confirmed_by_the_next_worker(
    tmp_path: Path, api: AvaturnClient
) -> None:
    forged = make_avatar_ready(user_id=(await api.users.create()).id)
    async with WebhookInbox(tmp_path / "w.db") as first:
        pipeline = WebhookPipeline(None, WebhookRouter(), inbox=first, confirm=confirmer(api))
        await pipeline.handle(event_to_bytes(forged), {})
    router, calls = recording_router()  # a new process: a new inbox, a new confirmer
    async with WebhookInbox(tmp_path / "w.db") as second:
        await dispatch(second, router, confirm=confirmer(api))
        record = await only_record(second)
    assert (record.status, calls) == (InboxStatus.DONE, [])


async def test_api_error_at_dispatch_is_a_failed_attempt_then_retried(
    inbox: WebhookInbox, api: AvaturnClient, emu: AvaturnEmulator, clock: FakeClock
) -> None:
    router, calls = recording_router()
    check = confirmer(api.with_options(retry=RetryPolicy.off()))
    pipeline = WebhookPipeline(None, router, inbox=inbox, confirm=check)
    event = await ready_avatar(api)
    await pipeline.handle(event_to_bytes(event), {})
    emu.fail_next("avatars.list", 503)
    await dispatch(inbox, router, confirm=check)
    failed = await only_record(inbox)
    clock.advance(BACKOFF)
    await dispatch(inbox, router, confirm=check)
    done = await only_record(inbox)
    assert (failed.status, failed.attempts, "ServerError" in (failed.last_error or "")) == (
        InboxStatus.PENDING,
        1,
        True,
    )
    assert (done.status, calls) == (InboxStatus.DONE, [event])


async def test_api_errors_at_every_attempt_end_in_the_dead_letter(
    inbox: WebhookInbox, api: AvaturnClient, emu: AvaturnEmulator
) -> None:
    router, calls = recording_router()
    check = confirmer(api.with_options(retry=RetryPolicy.off()))
    await WebhookPipeline(None, router, inbox=inbox, confirm=check).handle(
        event_to_bytes(await ready_avatar(api)), {}
    )
    emu.fail_next("avatars.list", 503)
    await dispatch(inbox, router, confirm=check, max_attempts=1)
    assert ((await only_record(inbox)).status, calls) == (InboxStatus.DEAD, [])


async def test_pipeline_worker_runs_the_inbox_worker_with_its_confirmer(
    inbox: WebhookInbox, api: AvaturnClient
) -> None:
    router, calls = recording_router()
    pipeline = WebhookPipeline(None, router, inbox=inbox, confirm=confirmer(api))
    event = await ready_avatar(api)
    forged = make_avatar_ready(user_id=event.user_id)
    await pipeline.handle(event_to_bytes(forged), {})
    await pipeline.handle(event_to_bytes(event), {})

    async def both_done() -> bool:
        return (await inbox.counts())["done"] == 2

    async with pipeline.worker(poll_interval=0.02):
        await eventually(both_done)
    assert calls == [event]


async def test_without_a_verifier_the_inbox_ignores_the_forgeable_webhook_id(
    inbox: WebhookInbox, api: AvaturnClient
) -> None:
    pipeline = WebhookPipeline(None, WebhookRouter(), inbox=inbox, confirm=confirmer(api))
    forged = make_avatar_ready(user_id="someone")
    genuine = make_avatar_ready(user_id="someone-else")
    first = await pipeline.handle(event_to_bytes(forged), {"webhook-id": "msg_1"})
    second = await pipeline.handle(event_to_bytes(genuine), {"webhook-id": "msg_1"})
    assert (first.outcome, second.outcome) == ("stored", "stored")


def test_worker_of_a_pipeline_without_an_inbox_is_refused(api: AvaturnClient) -> None:
    pipeline = WebhookPipeline(None, WebhookRouter(), confirm=confirmer(api))
    with pytest.raises(ConfigurationError):
        pipeline.worker()
