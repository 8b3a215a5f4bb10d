"""``PostgresGate`` across processes: one 429 holds the requests of every process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import asyncpg
import pytest

from avaturn_async import ConfigurationError
from avaturn_async.postgres import PostgresGate
from avaturn_async.testing import AvaturnEmulator, RateLimit

ROOT = Path(__file__).resolve().parents[1]
WINDOW = 8.0
"""The emulator's rate-limit window: long enough for late workers to start inside it."""

WORKER = """
import contextlib, sys, anyio
from avaturn_async import AdaptiveConcurrency, AvaturnClient, RetryPolicy
from avaturn_async.postgres import PostgresGate

async def main(base_url, key, dsn, calls):
    async with contextlib.AsyncExitStack() as stack:
        gate = None
        if dsn != "-":
            gate = await stack.enter_async_context(PostgresGate(dsn))
        client = await stack.enter_async_context(AvaturnClient(
            key, base_url=base_url, max_concurrency=4,
            adaptive=AdaptiveConcurrency(gate=gate), retry=RetryPolicy(max_attempts=10),
        ))
        async with anyio.create_task_group() as group:
            for _ in range(int(calls)):
                group.start_soon(client.users.create)

anyio.run(main, *sys.argv[1:])
"""


async def paused_in(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        return bool(await conn.fetchval(
            "SELECT count(*) FROM avaturn_gate WHERE paused_until > now()"
        ))
    except asyncpg.UndefinedTableError:
        return False
    finally:
        await conn.close()


async def rate_limited_burst(dsn: str | None) -> int:
    """429s drawn by three workers: one exhausts the window, two join while it is
    shut. With ``dsn`` they share a :class:`PostgresGate`, else each has its own."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    async with AvaturnEmulator(rate_limit=RateLimit(requests=10, per=WINDOW)) as emu:

        def worker(calls: int) -> list[str]:
            return [sys.executable, "-c", WORKER, emu.base_url, emu.api_key, dsn or "-",
                    str(calls)]

        with anyio.fail_after(60):
            first = await anyio.open_process(worker(12), env=env)
            while not emu.stats.rate_limited:  # noqa: ASYNC110 - counted in the emulator
                await anyio.sleep(0.01)
            while dsn is not None and not await paused_in(dsn):  # noqa: ASYNC110
                await anyio.sleep(0.01)
            late = [await anyio.open_process(worker(3), env=env) for _ in range(2)]
            codes = [await process.wait() for process in (first, *late)]
        for process in (first, *late):
            await process.aclose()
        assert codes == [0, 0, 0]
        return emu.stats.rate_limited


async def test_a_shared_gate_draws_three_times_fewer_429s(postgres_dsn: str) -> None:
    alone = await rate_limited_burst(None)
    shared = await rate_limited_burst(postgres_dsn)
    assert alone >= 3 * shared, (alone, shared)


async def test_a_gate_with_a_malformed_dsn_fails_at_start() -> None:
    with pytest.raises(ConfigurationError):
        await PostgresGate("postgresql://u@localhost:port/db").start()
