"""``ThreadBatcher``: blocking calls made at about the same time share one thread hop."""

from __future__ import annotations

import threading
import time

import anyio
import pytest

from avaturn_async.batch._batcher import ThreadBatcher


async def test_concurrent_calls_share_hops_and_each_gets_its_own_result() -> None:
    batcher = ThreadBatcher()
    results: dict[int, int] = {}

    async def call(number: int) -> None:
        results[number] = await batcher.run(lambda: number * 10)

    async with anyio.create_task_group() as group:
        for number in range(20):
            group.start_soon(call, number)
    assert results == {number: number * 10 for number in range(20)}
    assert batcher.batches < 20


async def test_calls_run_outside_the_event_loop_thread() -> None:
    batcher = ThreadBatcher()
    ran_in = await batcher.run(threading.get_ident)
    assert ran_in != threading.get_ident()


async def test_a_failing_call_raises_in_its_caller_only() -> None:
    batcher = ThreadBatcher()

    def boom() -> int:
        raise KeyError("bad")

    async def good() -> int:
        return await batcher.run(lambda: 1)

    async with anyio.create_task_group() as group:
        group.start_soon(good)
        with pytest.raises(KeyError):
            await batcher.run(boom)
    assert await good() == 1


async def test_batches_never_overlap() -> None:
    batcher = ThreadBatcher(gather=0.001)
    inside = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.0005)  # long enough for an overlapping batch to show
        with lock:
            inside -= 1

    async with anyio.create_task_group() as group:
        for _ in range(50):
            group.start_soon(batcher.run, work)
    assert most == 1


async def test_a_call_is_made_even_if_its_caller_is_cancelled() -> None:
    batcher = ThreadBatcher(gather=0.05)
    made = threading.Event()
    with anyio.move_on_after(0.001):
        await batcher.run(made.set)
    with anyio.fail_after(5):
        while not made.is_set():  # noqa: ASYNC110 - set by a worker thread
            await anyio.sleep(0.001)
