"""The InboxStore protocol itself, against every implementation: ids, dedupe, fencing."""

from __future__ import annotations

import anyio
import pytest

from avaturn_async.webhooks import (
    LEASE_LOST,
    Claimed,
    Delivery,
    Event,
    InboxStatus,
    InboxStore,
    WebhookInbox,
    WebhookRouter,
)
from tests.contract.conftest import InboxStoreFactory
from tests.inbox_support import deliver, eventually


async def done(inbox: WebhookInbox) -> bool:
    return (await inbox.counts())["done"] == 1


NOW = 1_700_000_000.0
LEASE = 30.0


def delivery(key: str, *, at: float = NOW) -> Delivery:
    return Delivery(
        dedupe_key=key,
        webhook_id=key,
        webhook_timestamp=int(at),
        event_type="render.ready",
        body=b"{}",
        received_at=at,
    )


async def claim(
    store: InboxStore, *, now: float = NOW, token: str = "t1", limit: int = 10
) -> list[Claimed]:
    return await store.claim(now=now, lease=LEASE, limit=limit, max_attempts=3, token=token)


def test_store_satisfies_the_protocol(inbox_store: InboxStore) -> None:
    assert isinstance(inbox_store, InboxStore)


async def test_insert_returns_a_new_id_and_none_for_a_known_key(inbox_store: InboxStore) -> None:
    first = await inbox_store.insert(delivery("a"))
    again = await inbox_store.insert(delivery("a"))
    other = await inbox_store.insert(delivery("b"))
    assert (isinstance(first, int), again, isinstance(other, int), first != other) == (
        True,
        None,
        True,
        True,
    )


async def test_concurrent_inserts_of_one_key_store_it_once(inbox_store: InboxStore) -> None:
    ids: list[int | None] = []

    async def insert() -> None:
        ids.append(await inbox_store.insert(delivery("same")))

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(insert)
    assert sum(i is not None for i in ids) == 1
    assert await inbox_store.counts() == {"pending": 1, "done": 0, "dead": 0}


async def test_concurrent_inserts_of_distinct_keys_are_all_stored(inbox_store: InboxStore) -> None:
    async with anyio.create_task_group() as group:
        for n in range(50):
            group.start_soon(inbox_store.insert, delivery(f"k{n}"))
    assert (await inbox_store.counts())["pending"] == 50


async def test_claimed_event_is_not_claimed_again_while_leased(inbox_store: InboxStore) -> None:
    await inbox_store.insert(delivery("a"))
    first = await claim(inbox_store, token="t1")
    second = await claim(inbox_store, now=NOW + LEASE - 1, token="t2")
    assert ([c.attempts for c in first], second) == ([1], [])


async def test_stores_sharing_a_database_never_claim_one_event_twice(
    inbox_store_factory: InboxStoreFactory,
) -> None:
    stores = [inbox_store_factory() for _ in range(3)]
    for n in range(30):
        await stores[0].insert(delivery(f"k{n}"))
    claimed: list[int] = []

    async def take(store: InboxStore, token: str) -> None:
        for _ in range(10):
            claimed.extend(c.id for c in await claim(store, token=token, limit=2))

    async with anyio.create_task_group() as group:
        for n, store in enumerate(stores):
            group.start_soon(take, store, f"t{n}")
    assert sorted(claimed) == sorted(set(claimed))
    assert len(claimed) == 30


async def test_renewed_lease_keeps_the_event_from_other_workers(inbox_store: InboxStore) -> None:
    await inbox_store.insert(delivery("a"))
    (claimed,) = await claim(inbox_store)
    renewed = await inbox_store.renew(claimed, now=NOW + LEASE - 1, lease=LEASE)
    while_renewed = await claim(inbox_store, now=NOW + LEASE + 1, token="t2")
    after = await claim(inbox_store, now=NOW + 2 * LEASE, token="t3")
    assert (renewed, while_renewed, [c.attempts for c in after]) == (True, [], [2])


async def test_a_lost_claim_can_neither_renew_nor_finish(inbox_store: InboxStore) -> None:
    await inbox_store.insert(delivery("a"))
    (stale,) = await claim(inbox_store, token="t1")
    (current,) = await claim(inbox_store, now=NOW + LEASE, token="t2")
    outcomes = (
        await inbox_store.renew(stale, now=NOW + LEASE, lease=LEASE),
        await inbox_store.complete(stale, now=NOW + LEASE),
        await inbox_store.fail(stale, now=NOW + LEASE, error="x", retry_at=None),
        await inbox_store.release(stale, now=NOW + LEASE),
        await inbox_store.complete(current, now=NOW + LEASE),
    )
    assert outcomes == (False, False, False, False, True)


async def test_release_makes_the_event_due_at_once_uncounted(inbox_store: InboxStore) -> None:
    await inbox_store.insert(delivery("a"))
    (claimed,) = await claim(inbox_store)
    assert await inbox_store.release(claimed, now=NOW)
    (again,) = await claim(inbox_store, token="t2")
    assert again.attempts == 1


async def test_lease_run_out_on_the_last_attempt_goes_dead(inbox_store: InboxStore) -> None:
    await inbox_store.insert(delivery("a"))
    for n in range(3):
        await claim(inbox_store, now=NOW + n * LEASE, token=f"t{n}")
    assert await claim(inbox_store, now=NOW + 3 * LEASE, token="t9") == []
    (record,) = await inbox_store.records(status=InboxStatus.DEAD, limit=10)
    assert (record.attempts, record.last_error) == (3, LEASE_LOST)


async def test_records_are_newest_first_and_filtered_by_status(inbox_store: InboxStore) -> None:
    for key in ("a", "b", "c"):
        await inbox_store.insert(delivery(key))
    (claimed,) = await claim(inbox_store, limit=1)
    await inbox_store.complete(claimed, now=NOW + 1)
    every = await inbox_store.records(status=None, limit=10)
    done = await inbox_store.records(status=InboxStatus.DONE, limit=10)
    assert [r.webhook_id for r in every] == ["c", "b", "a"]
    assert [(r.webhook_id, r.finished_at is not None) for r in done] == [("a", True)]


async def test_records_and_counts_see_the_body_never(inbox_store: InboxStore) -> None:
    await inbox_store.insert(delivery("a"))
    (record,) = await inbox_store.records(status=None, limit=1)
    assert "body" not in record.to_dict()


async def test_handler_running_three_leases_long_is_dispatched_once(
    inbox_store_factory: InboxStoreFactory,
) -> None:
    lease = 0.3
    first, second = (
        WebhookInbox(store=inbox_store_factory()),
        WebhookInbox(store=inbox_store_factory()),
    )
    calls: list[Event] = []
    finished = anyio.Event()
    router = WebhookRouter()

    @router.on_any
    async def slow(event: Event) -> None:
        calls.append(event)
        await anyio.sleep(3 * lease)
        finished.set()

    await deliver(first)
    with anyio.fail_after(10):
        async with first.worker(router, lease=lease, poll_interval=0.02):
            async with second.worker(router, lease=lease, poll_interval=0.02):
                await finished.wait()
                await eventually(lambda: done(first))
    assert (len(calls), await first.counts()) == (1, {"pending": 0, "done": 1, "dead": 0})


@pytest.mark.parametrize("lost_by", ["takeover", "unreachable"])
async def test_losing_the_lease_cancels_the_handler(
    inbox_store: InboxStore, lost_by: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lease = 0.3
    inbox = WebhookInbox(store=inbox_store)
    started, cancelled = anyio.Event(), anyio.Event()
    router = WebhookRouter()

    @router.on_any
    async def hang(event: Event) -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    async def lost(claimed: Claimed, *, now: float, lease: float) -> bool:
        if lost_by == "takeover":
            return False
        raise OSError("database unreachable")

    monkeypatch.setattr(inbox_store, "renew", lost)
    await deliver(inbox)

    async def failure_recorded() -> bool:
        (record,) = await inbox.list()
        return record.last_error is not None

    with anyio.fail_after(10):
        async with inbox.worker(router, lease=lease, poll_interval=60):
            await cancelled.wait()
            await eventually(failure_recorded)
    (record,) = await inbox.list()
    assert (record.last_error or "").startswith("LeaseLost:")


async def test_a_hanging_handler_holds_up_only_its_own_slot(inbox_store: InboxStore) -> None:
    inbox = WebhookInbox(store=inbox_store)
    hung, others = anyio.Event(), list[Event]()
    router = WebhookRouter()
    first, *rest = [await deliver(inbox) for _ in range(4)]

    @router.on_any
    async def handle(event: Event) -> None:
        if event == first[1]:
            hung.set()
            await anyio.sleep_forever()
        others.append(event)

    async def three_others_done() -> bool:
        return len(others) == 3

    with anyio.fail_after(10):
        async with inbox.worker(router, concurrency=2, poll_interval=0.05):
            await hung.wait()
            await eventually(three_others_done)
    assert sorted(map(repr, others)) == sorted(repr(event) for _, event in rest)


async def test_a_new_delivery_wakes_an_idle_worker_before_its_poll(inbox_store: InboxStore) -> None:
    inbox = WebhookInbox(store=inbox_store)
    router, dispatched = WebhookRouter(), anyio.Event()

    @router.on_any
    async def handle(event: Event) -> None:
        dispatched.set()

    async with inbox.worker(router, poll_interval=3600):
        await anyio.sleep(0.2)  # let the worker find the inbox empty and go idle
        await deliver(inbox)
        with anyio.fail_after(10):
            await dispatched.wait()
        await eventually(lambda: done(inbox))
    assert await inbox.counts() == {"pending": 0, "done": 1, "dead": 0}
