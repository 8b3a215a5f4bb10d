"""Ordered dispatch, against every inbox store: one event of an ordering key at a time,
in the order stored; events of other keys (and events without one) unaffected."""

from __future__ import annotations

import anyio
import anyio.lowlevel

from avaturn_async.webhooks import Claimed, Delivery, InboxStatus, InboxStore
from tests.contract.conftest import InboxStoreFactory

NOW = 1_700_000_000.0
LEASE = 30.0


def delivery(name: str, key: str | None) -> Delivery:
    """A delivery named ``name`` (its webhook id) ordered by ``key``."""
    return Delivery(
        dedupe_key=name,
        webhook_id=name,
        webhook_timestamp=int(NOW),
        event_type="render.ready",
        body=b"{}",
        received_at=NOW,
        ordering_key=key,
    )


async def store_all(store: InboxStore, *names: str) -> dict[str, int]:
    """Store ``names`` in order, each ordered by its first letter (``a1`` by ``a``)."""
    ids = {}
    for name in names:
        new_id = await store.insert(delivery(name, name[0]))
        assert new_id is not None
        ids[name] = new_id
    return ids


async def claim(
    store: InboxStore, *, now: float = NOW, token: str = "t1", limit: int = 10
) -> list[Claimed]:
    return await store.claim(now=now, lease=LEASE, limit=limit, max_attempts=3, token=token)


def names(claims: list[Claimed], ids: dict[str, int]) -> list[str]:
    by_id = {event_id: name for name, event_id in ids.items()}
    return sorted(by_id[c.id] for c in claims)


async def test_a_claim_takes_only_the_first_pending_event_of_each_key(
    inbox_store: InboxStore,
) -> None:
    ids = await store_all(inbox_store, "a1", "b1", "a2", "b2", "a3")
    assert names(await claim(inbox_store), ids) == ["a1", "b1"]


async def test_events_without_a_key_are_claimed_together(inbox_store: InboxStore) -> None:
    for n in range(3):
        await inbox_store.insert(delivery(f"free{n}", None))
    assert len(await claim(inbox_store)) == 3


async def test_a_claimed_event_holds_back_its_key_from_every_store(
    inbox_store_factory: InboxStoreFactory,
) -> None:
    first, second = inbox_store_factory(), inbox_store_factory()
    ids = await store_all(first, "a1", "a2", "b1")
    taken = await claim(first, limit=1)
    elsewhere = await claim(second, token="t2")
    assert (names(taken, ids), names(elsewhere, ids)) == (["a1"], ["b1"])


async def test_events_held_back_by_their_key_do_not_use_up_the_limit(
    inbox_store: InboxStore,
) -> None:
    ids = await store_all(inbox_store, "a1", "a2", "a3", "a4", "b1")
    assert names(await claim(inbox_store, limit=2), ids) == ["a1", "b1"]


async def test_completing_an_event_lets_the_next_of_its_key_be_claimed_in_order(
    inbox_store: InboxStore,
) -> None:
    ids = await store_all(inbox_store, "a1", "a2", "a3")
    order = []
    for n in range(4):
        claims = await claim(inbox_store, now=NOW + n, token=f"t{n}")
        order.append(names(claims, ids))
        for claimed in claims:
            assert await inbox_store.complete(claimed, now=NOW + n)
    assert order == [["a1"], ["a2"], ["a3"], []]


async def test_an_event_waiting_for_its_retry_holds_back_its_key(
    inbox_store: InboxStore,
) -> None:
    ids = await store_all(inbox_store, "a1", "a2", "b1")
    (a1,) = await claim(inbox_store, limit=1)
    await inbox_store.fail(a1, now=NOW, error="boom", retry_at=NOW + 100)
    before_retry = await claim(inbox_store, now=NOW + 50, token="t2")
    for claimed in before_retry:
        await inbox_store.complete(claimed, now=NOW + 50)
    at_retry = await claim(inbox_store, now=NOW + 100, token="t3")
    assert (names(before_retry, ids), names(at_retry, ids)) == (["b1"], ["a1"])


async def test_a_dead_event_no_longer_holds_back_its_key(inbox_store: InboxStore) -> None:
    ids = await store_all(inbox_store, "a1", "a2")
    (a1,) = await claim(inbox_store)
    await inbox_store.fail(a1, now=NOW, error="poison", retry_at=None)
    assert names(await claim(inbox_store, token="t2"), ids) == ["a2"]


async def test_an_expired_lease_gives_the_same_event_again_not_the_next(
    inbox_store: InboxStore,
) -> None:
    ids = await store_all(inbox_store, "a1", "a2")
    await claim(inbox_store)
    again = await claim(inbox_store, now=NOW + LEASE, token="t2")
    assert ([names(again, ids)], [c.attempts for c in again]) == ([["a1"]], [2])


async def test_a_replayed_event_queues_behind_the_pending_events_of_its_key(
    inbox_store: InboxStore,
) -> None:
    ids = await store_all(inbox_store, "a1", "a2", "a3")
    (a1,) = await claim(inbox_store)
    await inbox_store.fail(a1, now=NOW, error="poison", retry_at=None)
    (a2,) = await claim(inbox_store, token="t2")
    assert await inbox_store.replay([ids["a1"]], now=NOW) == [ids["a1"]]
    while_a2_runs = await claim(inbox_store, token="t3")
    await inbox_store.complete(a2, now=NOW)
    order = []
    for n in range(3):
        claims = await claim(inbox_store, now=NOW + n, token=f"u{n}")
        order.append(names(claims, ids))
        for claimed in claims:
            await inbox_store.complete(claimed, now=NOW + n)
    assert (while_a2_runs, order) == ([], [["a3"], ["a1"], []])


async def test_events_replayed_together_keep_their_order(inbox_store: InboxStore) -> None:
    ids = await store_all(inbox_store, "a1", "a2", "a3")
    for n in range(3):
        (claimed,) = await claim(inbox_store, token=f"t{n}")
        await inbox_store.fail(claimed, now=NOW, error="poison", retry_at=None)
    await inbox_store.replay([ids["a3"], ids["a1"], ids["a2"]], now=NOW)
    order = []
    for n in range(3):
        (claimed,) = await claim(inbox_store, token=f"u{n}")
        order.append(names([claimed], ids)[0])
        await inbox_store.complete(claimed, now=NOW)
    assert order == ["a1", "a2", "a3"]


async def test_concurrent_claims_of_many_stores_never_hold_two_events_of_one_key(
    inbox_store_factory: InboxStoreFactory,
) -> None:
    stores = [inbox_store_factory() for _ in range(3)]
    for n in range(4):
        for key in "abcdef":
            await stores[0].insert(delivery(f"{key}{n}", key))
    held: dict[str, int] = {}
    overlaps: list[str] = []
    finished: list[int] = []

    async def work(store: InboxStore, token: str) -> None:
        for round_no in range(40):
            for claimed in await claim(store, token=f"{token}-{round_no}", limit=2):
                key = claimed.ordering_key or ""
                if held.get(key):
                    overlaps.append(key)
                held[key] = held.get(key, 0) + 1
                await anyio.lowlevel.checkpoint()  # let the other stores claim meanwhile
                held[key] -= 1
                assert await store.complete(claimed, now=NOW)
                finished.append(claimed.id)

    async with anyio.create_task_group() as group:
        for n, store in enumerate(stores):
            group.start_soon(work, store, f"w{n}")
    assert (overlaps, len(finished), len(set(finished))) == ([], 24, 24)


async def test_records_show_the_ordering_key(inbox_store: InboxStore) -> None:
    await inbox_store.insert(delivery("a1", "avatar-1"))
    await inbox_store.insert(delivery("free", None))
    records = await inbox_store.records(status=InboxStatus.PENDING, limit=10)
    assert [(r.webhook_id, r.ordering_key) for r in records] == [
        ("free", None),
        ("a1", "avatar-1"),
    ]


async def test_events_behind_a_failed_attempt_are_due_at_its_retry(
    inbox_store: InboxStore,
) -> None:
    # So that claims do not walk past them until then (head-of-line cost).
    ids = await store_all(inbox_store, "a1", "a2", "a3", "b1")
    (a1,) = await claim(inbox_store, limit=1)
    await inbox_store.fail(a1, now=NOW, error="boom", retry_at=NOW + 100)
    late = await inbox_store.insert(delivery("a4", "a"))
    records = await inbox_store.records(status=InboxStatus.PENDING, limit=10)
    due = {r.id: r.next_attempt_at.timestamp() for r in records if r.next_attempt_at}
    at_retry = {name: due[ids[name]] == NOW + 100 for name in ("a2", "a3", "b1")}
    assert (at_retry, late is not None and due[late] == NOW + 100) == (
        {"a2": True, "a3": True, "b1": False},
        True,
    )


async def test_events_behind_a_dead_event_are_due_again(inbox_store: InboxStore) -> None:
    ids = await store_all(inbox_store, "a1", "a2")
    (a1,) = await claim(inbox_store)
    await inbox_store.fail(a1, now=NOW, error="boom", retry_at=NOW + 100)
    (again,) = await claim(inbox_store, now=NOW + 100, token="t2")
    await inbox_store.fail(again, now=NOW + 100, error="poison", retry_at=None)
    assert names(await claim(inbox_store, now=NOW + 100, token="t3"), ids) == ["a2"]
