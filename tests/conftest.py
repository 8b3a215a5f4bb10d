"""Shared fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from avaturn_async import AvaturnClient, Clock
from avaturn_async.testing import AvaturnEmulator


@pytest.fixture
async def emulator() -> AsyncIterator[AvaturnEmulator]:
    """A running emulator with short delays, so tests that wait for work stay fast."""
    async with AvaturnEmulator(
        processing_delay=0.01,
        render_delay=0.01,
        export_delay=0.01,
        webhook_retry_delay=0.01,
    ) as emu:
        yield emu


@pytest.fixture
async def client(emulator: AvaturnEmulator) -> AsyncIterator[AvaturnClient]:
    """An SDK client pointed at the ``emulator`` fixture; retry and poll waits are cut short."""

    async def short_wait(delay: float) -> None:
        await anyio.sleep(min(delay, 0.01))

    async with AvaturnClient(
        emulator.api_key, base_url=emulator.base_url, clock=Clock(sleep=short_wait)
    ) as sdk:
        yield sdk
