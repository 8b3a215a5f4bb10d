"""Shared fixtures."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import NoReturn

import anyio
import pytest
from hypothesis import HealthCheck, settings

from avaturn_async import AvaturnClient, Clock
from avaturn_async.testing import AvaturnEmulator
from tests.pg_server import DSN_ENV, PostgresServer, PostgresUnavailable

# Property tests count examples, never time them: Hypothesis's deadline and its
# "too slow" health check are wall-clock checks that fail on a loaded machine.
settings.register_profile(
    "avaturn", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("avaturn")

# pytester runs fresh-project test files against the installed ``avaturn`` plugin.
pytest_plugins = ["pytester"]


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


# --- PostgreSQL ------------------------------------------------------------------------
# One throwaway server per test session (or the one .ci/run started, through
# AVATURN_TEST_POSTGRES_DSN), and a fresh database per test. Without a server the
# tests fail with the reason: PostgreSQL 15 is on every machine of ours (Debian's
# postgresql-15), so a missing one is a broken machine, never a reason to skip.


def _no_postgres(reason: str) -> NoReturn:
    pytest.fail(
        f"PostgreSQL is required (install Debian's postgresql-15): {reason}", pytrace=False
    )


@pytest.fixture(scope="session")
def postgres_server_dsn() -> Iterator[str]:
    """The DSN of a PostgreSQL server for this test session (its ``postgres`` database)."""
    given = os.environ.get(DSN_ENV)
    if given:
        yield given
        return
    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        _no_postgres(str(exc))
    try:
        yield server.dsn
    finally:
        server.stop()


@pytest.fixture
async def postgres_dsn(postgres_server_dsn: str) -> AsyncIterator[str]:
    """A DSN to a brand-new, empty database, dropped after the test."""
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(postgres_server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = postgres_server_dsn.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    admin = await asyncpg.connect(postgres_server_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    """A dedicated server of this test's own, for tests that restart or stop it."""
    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        _no_postgres(str(exc))
    try:
        yield server
    finally:
        server.stop()
