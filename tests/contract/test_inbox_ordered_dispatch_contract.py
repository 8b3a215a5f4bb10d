"""Ordered dispatch as WebhookInbox users see it, over every InboxStore: the avatar id
orders by default, ``order_by`` changes or disables it, and a worker starts an
avatar's next event as soon as the one before it is done."""

from __future__ import annotations

import anyio
import pytest

from avaturn_async import ConfigurationError
from avaturn_async.testing import make_avatar_ready, make_render_ready
from avaturn_async.webhooks import (
    Event,
    InboxStatus,
    InboxStore,
    RenderReady,
    WebhookInbox,
    WebhookRouter,
)
from tests.inbox_support import FakeClock, deliver, dispatch, eventually, recording_router


def render_ids(calls: list[Event]) -> list[str]:
    return [event.id for event in calls if isinstance(event, RenderReady)]


async def test_default_dispatches_one_event_per_avatar_at_a_time(
    inbox_store: InboxStore,
) -> None:
    inbox = WebhookInbox(store=inbox_store, now=FakeClock())
    first = make_render_ready(avatar_id="avatar-1", render_id="r1")
    await deliver(inbox, first)
    await deliver(inbox, make_render_ready(avatar_id="avatar-1", render_id="r2"))
    await deliver(inbox, make_render_ready(avatar_id="avatar-2", render_id="r3"))
    router, calls = recording_router()
    assert await dispatch(inbox, router, limit=10) == 2
    assert sorted(render_ids(calls)) == ["r1", "r3"]


async def test_order_by_none_dispatches_every_due_event_at_once(
    inbox_store: InboxStore,
) -> None:
    inbox = WebhookInbox(store=inbox_store, now=FakeClock(), order_by=None)
    for n in range(3):
        await deliver(inbox, make_render_ready(avatar_id="avatar-1", render_id=f"r{n}"))
    router, _ = recording_router()
    assert await dispatch(inbox, router, limit=10) == 3


async def test_order_by_a_function_of_the_event_orders_by_its_key(
    inbox_store: InboxStore,
) -> None:
    def by_user(event: Event) -> str | None:
        return getattr(event, "user_id", None)

    inbox = WebhookInbox(store=inbox_store, now=FakeClock(), order_by=by_user)
    for n in range(3):
        await deliver(inbox, make_render_ready(user_id="user-1", render_id=f"r{n}"))
    router, calls = recording_router()
    assert await dispatch(inbox, router, limit=10) == 1
    assert render_ids(calls) == ["r0"]


async def test_a_long_or_nul_ordering_key_is_stored_as_its_hash(
    inbox_store: InboxStore,
) -> None:
    inbox = WebhookInbox(store=inbox_store, now=FakeClock())
    for avatar_id in ("a" * 500, "a" * 500, "bad\x00id"):
        await deliver(inbox, make_avatar_ready(avatar_id=avatar_id))
    keys = [record.ordering_key or "" for record in await inbox.list()]
    assert [key.startswith("sha256:") for key in keys] == [True, True, True]
    assert (keys[1] == keys[2], keys[0] == keys[1]) == (True, False)


async def test_order_by_returning_something_else_than_a_string_is_refused(
    inbox_store: InboxStore,
) -> None:
    inbox = WebhookInbox(store=inbox_store, order_by=lambda event: 42)  # type: ignore[arg-type,return-value]
    with pytest.raises(ConfigurationError, match="order_by"):
        await inbox.add(b"{}", {}, make_avatar_ready())


async def test_worker_starts_the_next_event_of_an_avatar_when_the_one_before_is_done(
    inbox_store: InboxStore,
) -> None:
    # The poll interval is far longer than the deadline: only the worker noticing
    # that an ordered event finished can start the next one in time.
    inbox = WebhookInbox(store=inbox_store)
    running: list[str] = []
    started: list[str] = []
    overlapped: list[str] = []
    router = WebhookRouter()

    @router.on_any
    async def handle(event: Event) -> None:
        assert isinstance(event, RenderReady)
        if running:
            overlapped.append(event.id)
        running.append(event.id)
        started.append(event.id)
        await anyio.sleep(0.01)
        running.remove(event.id)

    async def all_done() -> bool:
        return (await inbox.counts())["done"] == 5

    for n in range(5):
        await deliver(inbox, make_render_ready(avatar_id="avatar-1", render_id=f"r{n}"))
    async with inbox.worker(router, concurrency=4, poll_interval=600):
        await eventually(all_done, deadline=20)
    assert (started, overlapped) == ([f"r{n}" for n in range(5)], [])


async def test_list_shows_each_events_avatar_as_its_ordering_key(
    inbox_store: InboxStore,
) -> None:
    inbox = WebhookInbox(store=inbox_store)
    await deliver(inbox, make_avatar_ready(avatar_id="avatar-7"))
    (record,) = await inbox.list(status=InboxStatus.PENDING)
    assert record.ordering_key == "avatar-7"
