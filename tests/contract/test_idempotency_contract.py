"""The IdempotencyStore protocol (the plain receivers' duplicate guard), every implementation."""

from __future__ import annotations

from datetime import timedelta

import anyio

from avaturn_async.webhooks import IdempotencyStore
from tests.contract.conftest import IdempotencyStoreFactory

DAY = timedelta(days=1)


def test_store_satisfies_the_protocol(idempotency_store_factory: IdempotencyStoreFactory) -> None:
    assert isinstance(idempotency_store_factory(DAY), IdempotencyStore)


async def test_first_mark_is_new_and_the_second_a_duplicate(
    idempotency_store_factory: IdempotencyStoreFactory,
) -> None:
    store = idempotency_store_factory(DAY)
    assert [await store.seen_or_mark("id:a") for _ in range(2)] == [False, True]


async def test_unmarked_key_is_new_again(
    idempotency_store_factory: IdempotencyStoreFactory,
) -> None:
    store = idempotency_store_factory(DAY)
    await store.seen_or_mark("id:a")
    await store.unmark("id:a")
    assert await store.seen_or_mark("id:a") is False


async def test_unmarking_an_unknown_key_is_a_no_op(
    idempotency_store_factory: IdempotencyStoreFactory,
) -> None:
    store = idempotency_store_factory(DAY)
    await store.unmark("id:never")
    assert await store.seen_or_mark("id:never") is False


async def test_concurrent_marks_of_one_key_let_exactly_one_through(
    idempotency_store_factory: IdempotencyStoreFactory,
) -> None:
    stores = [idempotency_store_factory(DAY) for _ in range(2)]
    results: list[bool] = []

    async def mark(store: IdempotencyStore) -> None:
        results.append(await store.seen_or_mark("id:same"))

    async with anyio.create_task_group() as group:
        for n in range(20):
            group.start_soon(mark, stores[n % 2])
    assert sorted(results) == [False] + [True] * 19


async def test_a_key_past_its_time_to_live_is_new_again(
    idempotency_store_factory: IdempotencyStoreFactory,
) -> None:
    store = idempotency_store_factory(timedelta(seconds=0.2))
    await store.seen_or_mark("id:a")
    await anyio.sleep(0.5)
    assert await store.seen_or_mark("id:a") is False
