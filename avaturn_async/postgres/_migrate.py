"""Versioned, idempotent schema migrations, one list per component.

Each backend (``inbox``, ``dedupe``, ``journal``, ``hub``, ``gate``) owns an ordered list
of SQL steps; step *n* takes its component from version *n-1* to *n*. The applied version
of every component is kept in ``avaturn_schema``. ``migrate`` runs in one transaction
under a transaction-level advisory lock, so any number of processes may start at once
(``CREATE TABLE IF NOT EXISTS`` alone is not safe under concurrency) and it works through
transaction-mode poolers. A database whose component is at a version newer than the code
knows is refused with :class:`~avaturn_async.SchemaVersionError` before anything is read
or written, as graphile-worker refuses a newer breaking schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._errors import SchemaVersionError

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

__all__ = ["SCHEMA_TABLE", "migrate", "schema_version"]

SCHEMA_TABLE = "avaturn_schema"
#: Any constant will do, as long as every avaturn_async process uses the same one.
_LOCK_KEY = 0x61766174  # "avat"

_CREATE = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (
    component  text PRIMARY KEY,
    version    integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""


async def schema_version(conn: asyncpg.Connection | PoolConnectionProxy, component: str) -> int:
    """The applied version of ``component`` (0 when it was never installed)."""
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", SCHEMA_TABLE)
    if not exists:
        return 0
    found = await conn.fetchval(
        f"SELECT version FROM {SCHEMA_TABLE} WHERE component = $1", component
    )
    return int(found or 0)


async def migrate(
    conn: asyncpg.Connection | PoolConnectionProxy, component: str, steps: Sequence[str]
) -> int:
    """Bring ``component`` up to ``len(steps)``; return the version it is now at.

    ``conn`` is a connection of its own or one acquired from a pool.

    Idempotent: a second call (or a concurrent one in another process) applies
    nothing. Raises :class:`SchemaVersionError` if the database is ahead of ``steps``.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(_CREATE)
        current = await schema_version(conn, component)
        if current > len(steps):
            raise SchemaVersionError(
                f"the database's {component!r} schema is at version {current}, but this "
                f"avaturn_async knows only up to {len(steps)}: upgrade avaturn_async"
            )
        for version in range(current + 1, len(steps) + 1):
            await conn.execute(steps[version - 1])
        if len(steps) > current:
            await conn.execute(
                f"INSERT INTO {SCHEMA_TABLE} (component, version) VALUES ($1, $2) "
                "ON CONFLICT (component) DO UPDATE "
                "SET version = excluded.version, updated_at = now()",
                component,
                len(steps),
            )
    return len(steps)
