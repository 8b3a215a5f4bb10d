"""EventHub: correlation of completion events with waiting tasks."""

from __future__ import annotations

import anyio
import pytest

from avaturn_async import EventHub
from avaturn_async.webhooks import (
    AvatarReady,
    EventStatus,
    ExportReady,
    RenderReady,
    UnknownEvent,
    WebhookRouter,
)

AVATAR = "0b1f6f36-8c1a-4c43-9a4e-2c7b1c4f9b10"


def avatar_ready(avatar_id: str = AVATAR) -> AvatarReady:
    return AvatarReady(avatar_id=avatar_id, user_id="U", status=EventStatus.READY)


async def test_waiter_receives_event_published_later() -> None:
    hub = EventHub()
    received: list[object] = []
    async with anyio.create_task_group() as tg:

        async def waiter() -> None:
            received.append(await hub.wait(("avatar", AVATAR)))

        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        await hub.publish(avatar_ready())
    assert received == [avatar_ready()]


async def test_event_published_before_the_waiter_is_remembered() -> None:
    hub = EventHub()
    await hub.publish(avatar_ready())
    with anyio.fail_after(1):
        assert await hub.wait(("avatar", AVATAR)) == avatar_ready()


async def test_events_older_than_since_are_ignored() -> None:
    now = [100.0]
    hub = EventHub(now=lambda: now[0])
    await hub.publish(ExportReady(avatar_id=AVATAR, user_id="U", status=EventStatus.READY))
    now[0] = 200.0
    assert hub.latest(("export", AVATAR), since=150.0) is None


async def test_remembered_events_expire() -> None:
    now = [0.0]
    hub = EventHub(max_age=10.0, now=lambda: now[0])
    await hub.publish(avatar_ready())
    now[0] = 11.0
    assert hub.latest(("avatar", AVATAR)) is None


async def test_memory_is_bounded_by_remember() -> None:
    hub = EventHub(remember=2)
    for n in range(3):
        await hub.publish(avatar_ready(f"00000000-0000-4000-8000-00000000000{n}"))
    assert hub.latest(("avatar", "00000000-0000-4000-8000-000000000000")) is None


async def test_render_events_are_keyed_by_render_id() -> None:
    hub = EventHub()
    render = RenderReady(avatar_id=AVATAR, user_id="U", id="R1", status=EventStatus.READY)
    await hub.publish(render)
    assert hub.latest(("render", "R1")) == render


async def test_unknown_events_are_not_remembered() -> None:
    hub = EventHub()
    await hub.publish(UnknownEvent(event="avatar.deleted", raw={}))
    assert hub.published == 0


async def test_cancelled_waiter_leaves_no_registration() -> None:
    hub = EventHub()
    with anyio.move_on_after(0.05):
        await hub.wait(("avatar", AVATAR))
    assert "waiting=0" in repr(hub)


async def test_attach_feeds_the_hub_from_a_router() -> None:
    hub = EventHub()
    router = WebhookRouter()
    hub.attach(router)
    await router.dispatch(avatar_ready())
    assert hub.latest(("avatar", AVATAR)) == avatar_ready()


def test_attach_rejects_other_objects() -> None:
    with pytest.raises(TypeError):
        EventHub().attach(object())  # type: ignore[arg-type]
