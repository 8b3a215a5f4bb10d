"""Opening a backend's pool with its schema migrated, in one step with clear errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._connect import connect, create_pool
from ._migrate import migrate

if TYPE_CHECKING:
    import asyncpg

__all__ = ["open_pool"]


async def open_pool(
    dsn: str,
    component: str,
    steps: Sequence[str],
    *,
    max_size: int = 10,
    connect_timeout: float = 10.0,
) -> asyncpg.Pool:
    """A pool for ``dsn`` once ``component``'s schema is at the version of ``steps``.

    Raises ``ConfigurationError`` for a bad DSN, ``StorageUnavailableError`` when
    no server answers, ``SchemaVersionError`` for a schema newer than this code.
    """
    conn = await connect(dsn, connect_timeout=connect_timeout)
    try:
        await migrate(conn, component, steps)
    finally:
        await conn.close()
    return await create_pool(dsn, min_size=1, max_size=max_size, connect_timeout=connect_timeout)
