"""Jobs: waiting for avatars, renders and exports, by event hub or by polling."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from avaturn_async import (
    AssetSlot,
    AssetSlots,
    AvatarFailedError,
    AvaturnClient,
    Clock,
    ConfigurationError,
    EventHub,
    ExportFailedError,
    ExternalAvatarCustomization,
)
from avaturn_async._jobs import poll_delays
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import (
    AvaturnEmulator,
    make_avatar_ready,
    make_export_ready,
    make_render_ready,
)
from avaturn_async.webhooks import EventStatus
from tests.support import SAMPLE_JPEG, json_answer, scripted_server

FRONTAL, SIDE_1, SIDE_2 = sample_photo_paths()
OUTFIT = ExternalAvatarCustomization(
    assets=AssetSlots(clothing=AssetSlot(id=AvaturnEmulator.SAMPLE_ASSETS["clothing"]))
)


async def new_avatar(client: AvaturnClient) -> tuple[str, str]:
    user = await client.users.create()
    job = await client.avatars.create_from_photos(
        user.id, frontal=FRONTAL, side_1=SIDE_1, side_2=SIDE_2, body_type="male"
    )
    return user.id, job.avatar_id


def test_poll_delays_grow_to_the_maximum() -> None:
    delays = poll_delays(1.0, maximum=3.0, factor=2.0, jitter=0.0)
    assert [next(delays) for _ in range(4)] == [1.0, 2.0, 3.0, 3.0]


async def test_avatar_wait_polls_until_ready_without_a_hub(client: AvaturnClient) -> None:
    user_id, avatar_id = await new_avatar(client)
    with anyio.fail_after(5):
        event = await client.avatars.track(user_id=user_id, avatar_id=avatar_id).wait()
    assert (event.avatar_id, event.status, event.raw) == (
        avatar_id,
        EventStatus.READY,
        {"source": "poll"},
    )


async def test_failed_avatar_raises_with_the_event(
    client: AvaturnClient, emulator: AvaturnEmulator
) -> None:
    user = await client.users.create()
    emulator.fail_avatars_for(user.id)
    job = await client.avatars.create_from_photos(
        user.id, frontal=FRONTAL, side_1=SIDE_1, side_2=SIDE_2, body_type="female"
    )
    with anyio.fail_after(5), pytest.raises(AvatarFailedError) as info:
        await job.wait()
    assert info.value.event.avatar_id == job.avatar_id


async def test_polling_rides_out_a_server_error(
    client: AvaturnClient, emulator: AvaturnEmulator
) -> None:
    user_id, avatar_id = await new_avatar(client)
    emulator.fail_next("avatars.list", 500, times=6)
    with anyio.fail_after(5):
        event = await client.avatars.track(user_id=user_id, avatar_id=avatar_id).wait()
    assert event.succeeded


async def test_hub_event_resolves_the_wait_without_polling(
    client: AvaturnClient, emulator: AvaturnEmulator
) -> None:
    hub = EventHub()
    client.event_hub = hub
    user = await client.users.create()
    created = await client.avatars.create(user.id)
    job = client.avatars.track(user_id=user.id, avatar_id=created.avatar_id)
    await hub.publish(make_avatar_ready(avatar_id=created.avatar_id, user_id=user.id))
    with anyio.fail_after(1):
        event = await job.wait()
    assert event.raw.get("source") != "poll"
    assert emulator.stats.requests.get("avatars.list", 0) == 0


async def test_render_wait_needs_a_hub(client: AvaturnClient) -> None:
    user_id, avatar_id = await new_avatar(client)
    with anyio.fail_after(5):
        await client.avatars.track(user_id=user_id, avatar_id=avatar_id).wait(poll_interval=0.01)
    await client.avatars.set_customization(avatar_id, OUTFIT)
    render = await client.renders.create(avatar_id)
    with pytest.raises(ConfigurationError, match="EventHub"):
        await render.wait()


async def test_render_wait_resolves_from_the_hub(client: AvaturnClient) -> None:
    hub = EventHub()
    client.event_hub = hub
    user_id, avatar_id = await new_avatar(client)
    await client.avatars.track(user_id=user_id, avatar_id=avatar_id).wait(poll_interval=0.01)
    await client.avatars.set_customization(avatar_id, OUTFIT)
    render = await client.renders.create(avatar_id)
    await hub.publish(make_render_ready(render_id=render.id, avatar_id=avatar_id))
    with anyio.fail_after(1):
        assert (await render.wait()).id == render.id


async def test_failed_export_raises(client: AvaturnClient) -> None:
    user_id, avatar_id = await new_avatar(client)
    await client.avatars.track(user_id=user_id, avatar_id=avatar_id).wait(poll_interval=0.01)
    await client.avatars.set_customization(avatar_id, OUTFIT)
    hub = EventHub()
    client.event_hub = hub
    export = await client.exports.create(avatar_id)
    await hub.publish(make_export_ready(avatar_id=avatar_id, status="failed"))
    with anyio.fail_after(1), pytest.raises(ExportFailedError):
        await export.wait()


async def test_deadline_cancels_the_wait_and_leaves_no_waiter(client: AvaturnClient) -> None:
    hub = EventHub()
    client.event_hub = hub
    user = await client.users.create()
    created = await client.avatars.create(user.id)
    job = client.avatars.track(user_id=user.id, avatar_id=created.avatar_id)
    with pytest.raises(TimeoutError), anyio.fail_after(0.1):
        await job.wait(poll_interval=60)
    assert "waiting=0" in repr(hub)


async def test_export_answered_failed_at_once_raises_without_waiting() -> None:
    answer = json_answer(200, {"status": "failed", "url": None})
    async with scripted_server(answer) as server:
        async with AvaturnClient("key", base_url=server.base_url) as client:
            export = await client.exports.create("0b1f6f36-8c1a-4c43-9a4e-2c7b1c4f9b10")
            with anyio.fail_after(5), pytest.raises(ExportFailedError):
                await export.wait(poll_interval=60)
    assert len(server.seen) == 1


async def _first_poll_wait(hub: EventHub) -> float:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await anyio.lowlevel.checkpoint()

    clock = Clock(sleep=sleep, random=lambda: 0.5)
    async with AvaturnEmulator(processing_delay=0) as emu:
        async with AvaturnClient(
            emu.api_key, base_url=emu.base_url, event_hub=hub, clock=clock
        ) as client:
            user = await client.users.create()
            job = await client.avatars.create_from_photos(
                user.id, frontal=SAMPLE_JPEG, side_1=SAMPLE_JPEG, side_2=SAMPLE_JPEG,
                body_type="male",
            )
            await job.wait()
    return waits[0]


async def test_a_hub_that_heard_no_webhook_yet_does_not_delay_polling() -> None:
    assert await _first_poll_wait(EventHub()) < 2.0


async def test_a_hub_that_hears_webhooks_relaxes_polling_to_a_fallback() -> None:
    hub = EventHub()
    hub.deliver(make_avatar_ready())
    assert await _first_poll_wait(hub) >= 10.0
