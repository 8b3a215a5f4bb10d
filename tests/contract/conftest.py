"""Fixtures of the contract suites: each runs once per implementation of its seam.

``inbox_store_factory`` and ``idempotency_store_factory`` make fresh, empty
stores of the parametrized kind; a test may open several stores on the same
database (several processes' worth) by calling the factory again with
``shared=True``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from avaturn_async.webhooks import (
    IdempotencyStore,
    InboxStore,
    InMemoryIdempotencyStore,
    SQLiteInboxStore,
)

InboxStoreFactory = Callable[[], InboxStore]


@pytest.fixture(params=["sqlite"])
async def inbox_store_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[InboxStoreFactory]:
    """Opens stores on one fresh database of the parametrized kind."""
    opened: list[InboxStore] = []

    def open_store() -> InboxStore:
        store = SQLiteInboxStore(tmp_path / "inbox.db")
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
