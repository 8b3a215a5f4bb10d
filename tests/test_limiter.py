"""The client's request limiter."""

from __future__ import annotations

import anyio
import pytest

from avaturn_async import ConfigurationError
from avaturn_async._limiter import RequestLimiter


async def test_free_slot_is_taken_without_waiting() -> None:
    limiter = RequestLimiter(2)
    async with limiter:
        assert limiter.borrowed_tokens == 1


async def test_holders_never_exceed_total() -> None:
    limiter = RequestLimiter(3)
    peak = 0

    async def hold() -> None:
        nonlocal peak
        async with limiter:
            peak = max(peak, limiter.borrowed_tokens)
            await anyio.sleep(0.001)

    async with anyio.create_task_group() as tg:
        for _ in range(30):
            tg.start_soon(hold)
    assert (peak, limiter.borrowed_tokens) == (3, 0)


async def test_growing_total_wakes_waiters() -> None:
    limiter = RequestLimiter(1)
    entered = anyio.Event()
    async with limiter, anyio.create_task_group() as tg:

        async def second() -> None:
            async with limiter:
                entered.set()

        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        limiter.total_tokens = 2
        with anyio.fail_after(1):
            await entered.wait()


async def test_cancelled_waiter_leaks_no_slot() -> None:
    limiter = RequestLimiter(1)
    async with limiter:
        with anyio.move_on_after(0.01):
            async with limiter:
                pass
    assert (limiter.borrowed_tokens, "waiting=0" in repr(limiter)) == (0, True)


def test_total_must_be_positive() -> None:
    with pytest.raises(ConfigurationError, match="total_tokens"):
        RequestLimiter(0)
