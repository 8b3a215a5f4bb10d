"""Fixtures of the contract suites: each runs once per implementation of its seam.

``inbox_store_factory`` and ``idempotency_store_factory`` make fresh, empty
stores of the parametrized kind; calling a factory again opens another store
on the same database (another process's worth). PostgreSQL runs need a server:
the ``postgres_dsn`` fixture gives each test a new database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from avaturn_async.postgres import PostgresInboxStore, is_postgres_dsn
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

    return open_store
    for store in opened:
        await store.aclose()


@pytest.fixture
def inbox_store(inbox_store_factory: InboxStoreFactory) -> InboxStore:
    return inbox_store_factory()


IdempotencyStoreFactory = Callable[[timedelta], IdempotencyStore]


@pytest.fixture(params=["memory"])
async def idempotency_store_factory(
    request: pytest.FixtureRequest,
) -> IdempotencyStoreFactory:
    """Opens duplicate guards with a given time to live, all sharing one state."""

    shared: dict[timedelta, IdempotencyStore] = {}

    def open_store(ttl: timedelta) -> IdempotencyStore:
        # In memory, "sharing one state" means one object.
        return shared.setdefault(ttl, InMemoryIdempotencyStore(ttl=ttl))

    return open_store
