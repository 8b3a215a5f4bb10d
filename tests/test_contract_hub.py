"""The event hub channel's contract: an event published on one hub reaches every hub."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import pytest

from avaturn_async import EventHub, HubChannel, InMemoryHubChannel
from avaturn_async.webhooks import AvatarReady, EventStatus, UnknownEvent

# Opens one more hub on the same channel (another replica, for a shared backend).
HubOpener = Callable[[], Awaitable[EventHub]]


@pytest.fixture(params=["in-memory", "postgres"])
def dsn(request: pytest.FixtureRequest) -> str | None:
    """``None`` for the in-memory implementation, else a fresh PostgreSQL database."""
    return None if request.param == "in-memory" else str(request.getfixturevalue("postgres_dsn"))


@pytest.fixture
async def open_hub(dsn: str | None) -> AsyncIterator[HubOpener]:
    if dsn is None:
        channel = InMemoryHubChannel()

        async def in_memory() -> EventHub:
            return EventHub(channel=channel)

        yield in_memory
        return
    from avaturn_async.postgres import PostgresEventHub

    hubs: list[PostgresEventHub] = []

    async def shared() -> EventHub:
        hub = PostgresEventHub(dsn)
        hubs.append(hub)
        await hub.start()
        return hub

    yield shared
    for hub in hubs:
        await hub.aclose()


def ready(avatar_id: str = "A1") -> AvatarReady:
    return AvatarReady(avatar_id=avatar_id, user_id="U1", status=EventStatus.READY)


async def wait_for(hub: EventHub, avatar_id: str = "A1") -> object:
    with anyio.fail_after(5):
        return await hub.wait(("avatar", avatar_id))


async def test_a_channel_satisfies_the_protocol(open_hub: HubOpener) -> None:
    assert isinstance((await open_hub()).channel, HubChannel)


async def test_an_event_published_on_one_hub_wakes_a_waiter_on_another(
    open_hub: HubOpener,
) -> None:
    sender, receiver = await open_hub(), await open_hub()
    got: list[object] = []
    async with anyio.create_task_group() as group:

        async def waiter() -> None:
            got.append(await wait_for(receiver))

        group.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        await sender.publish(ready())
    assert got == [ready()]


async def test_the_publishing_hub_wakes_its_own_waiters(open_hub: HubOpener) -> None:
    hub = await open_hub()
    got: list[object] = []
    async with anyio.create_task_group() as group:

        async def waiter() -> None:
            got.append(await wait_for(hub))

        group.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        await hub.publish(ready())
    assert got == [ready()]


async def test_an_event_that_came_before_its_waiter_is_remembered(open_hub: HubOpener) -> None:
    sender, receiver = await open_hub(), await open_hub()
    await sender.publish(ready("A2"))
    assert await wait_for(receiver, "A2") == ready("A2")


async def test_events_without_a_correlation_key_are_not_sent(open_hub: HubOpener) -> None:
    sender, receiver = await open_hub(), await open_hub()
    await sender.publish(UnknownEvent(event="user.deleted", raw={}))
    await sender.publish(ready("A3"))
    await wait_for(receiver, "A3")
    assert receiver.published == 1
