"""Fixtures of the contract suites: each runs once per implementation of its seam.

``inbox_store_factory`` and ``idempotency_store_factory`` make fresh, empty
stores of the parametrized kind; calling a factory again opens another store
on the same database (another process's worth). Every store a factory opened is
closed after the test. PostgreSQL runs need a server: the ``postgres_dsn``
fixture gives each test a new database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from avaturn_async.postgres import PostgresIdempotencyStore, PostgresInboxStore, is_postgres_dsn
from avaturn_async.webhooks import (
    IdempotencyStore,
    InboxStore,
    InMemoryIdempotencyStore,
    SQLiteInboxStore,
)

InboxStoreFactory = Callable[[], InboxStore]


@pytest.fixture(params=["sqlite", "postgres"])
def inbox_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh inbox database of the parametrized kind: a file path or a DSN."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_dsn"))
    return str(tmp_path / "inbox.db")


@pytest.fixture
async def inbox_store_factory(inbox_database: str) -> AsyncIterator[InboxStoreFactory]:
    """Opens stores on one fresh database of the parametrized kind."""
    opened: list[InboxStore] = []
    dsn = inbox_database if is_postgres_dsn(inbox_database) else None

    def open_store() -> InboxStore:
        store: InboxStore = (
            SQLiteInboxStore(inbox_database) if dsn is None else PostgresInboxStore(dsn)
        )
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.aclose()


@pytest.fixture
def inbox_store(inbox_store_factory: InboxStoreFactory) -> InboxStore:
    return inbox_store_factory()


IdempotencyStoreFactory = Callable[[timedelta], IdempotencyStore]


@pytest.fixture(params=["memory", "postgres"])
def idempotency_database(request: pytest.FixtureRequest) -> str | None:
    """Where the parametrized duplicate guards keep keys: ``None`` in memory, else a DSN."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_dsn"))
    return None


@pytest.fixture
async def idempotency_store_factory(
    idempotency_database: str | None,
) -> AsyncIterator[IdempotencyStoreFactory]:
    """Opens duplicate guards with a given time to live, all sharing one state."""
    in_memory: dict[timedelta, IdempotencyStore] = {}
    in_postgres: list[PostgresIdempotencyStore] = []

    def open_store(ttl: timedelta) -> IdempotencyStore:
        if idempotency_database is None:
            # In memory, "sharing one state" means one object.
            return in_memory.setdefault(ttl, InMemoryIdempotencyStore(ttl=ttl))
        # In PostgreSQL it means one database.
        store = PostgresIdempotencyStore(idempotency_database, ttl=ttl)
        in_postgres.append(store)
        return store

    yield open_store
    for store in in_postgres:
        await store.aclose()
