"""The duplicate guard on PostgreSQL: an :class:`~avaturn_async.webhooks.IdempotencyStore`
shared by every replica, with a time to live.

One row per delivery key in ``avaturn_webhook_dedupe``. Marking is one
statement, atomic under any concurrency::

    INSERT INTO avaturn_webhook_dedupe (key, expires_at) VALUES ($1, now() + ttl)
    ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
        WHERE avaturn_webhook_dedupe.expires_at < now()
    RETURNING 1

A row comes back only for a new key or one whose time to live ran out (then
it is taken over), so "no row" means "a duplicate". Expiry uses the database's
clock, so replicas with skewed clocks agree. Expired rows are also deleted in
bounded batches (``SKIP LOCKED``, so replicas never wait on each other) at most
once a minute per store, and by :meth:`PostgresIdempotencyStore.prune`.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING

import anyio

from .._errors import ConfigurationError
from ._connect import retry_transient
from ._dsn import check_dsn, redact_dsn
from ._setup import open_pool

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresIdempotencyStore"]

_TABLE = "avaturn_webhook_dedupe"
_STEPS = [
    f"""
    CREATE TABLE {_TABLE} (
        key        text        PRIMARY KEY,
        expires_at timestamptz NOT NULL
    );
    CREATE INDEX {_TABLE}_expires ON {_TABLE} (expires_at)
    """,
]
_MARK = f"""
INSERT INTO {_TABLE} (key, expires_at) VALUES ($1, clock_timestamp() + $2::interval)
ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at
    WHERE {_TABLE}.expires_at < clock_timestamp()
RETURNING 1
"""
_PRUNE = f"""
DELETE FROM {_TABLE} WHERE key IN (
    SELECT key FROM {_TABLE} WHERE expires_at < clock_timestamp()
    LIMIT $1 FOR UPDATE SKIP LOCKED
)
"""
_PRUNE_EVERY = 60.0
_PRUNE_BATCH = 5_000
_RETRY_DEADLINE = 5.0


class PostgresIdempotencyStore:
    """Delivery keys remembered in PostgreSQL for ``ttl`` (default 24 hours).

    Pass it to a plain receiver's pipeline (``WebhookPipeline(verifier, router,
    store=...)``) so that a redelivery reaching any replica
    is recognised. Connects on first use (or :meth:`open`); a malformed DSN is
    a :class:`~avaturn_async.ConfigurationError` at once.
    """

    def __init__(
        self,
        dsn: str,
        *,
        ttl: timedelta = timedelta(hours=24),
        max_connections: int = 10,
        connect_timeout: float = 10.0,
    ) -> None:
        if ttl <= timedelta(0):
            raise ConfigurationError("ttl must be positive")
        self.dsn: str = check_dsn(dsn)
        self.ttl = ttl
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._pool: asyncpg.Pool | None = None
        self._opening = anyio.Lock()
        self._next_prune = time.monotonic() + _PRUNE_EVERY

    def __repr__(self) -> str:
        return f"PostgresIdempotencyStore({redact_dsn(self.dsn)!r}, ttl={self.ttl!s})"

    async def open(self) -> None:
        """Connect and install (or check) the schema now; idempotent."""
        await self._pool_ready()

    async def _pool_ready(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                self._pool = await open_pool(
                    self.dsn,
                    "dedupe",
                    _STEPS,
                    max_size=self._max_connections,
                    connect_timeout=self._connect_timeout,
                )
        return self._pool

    async def seen_or_mark(self, key: str) -> bool:
        pool = await self._pool_ready()
        row = await retry_transient(
            lambda: pool.fetchval(_MARK, key, self.ttl),
            deadline=_RETRY_DEADLINE,
            what="duplicate guard",
        )
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + _PRUNE_EVERY
            await self.prune()
        return row is None

    async def unmark(self, key: str) -> None:
        pool = await self._pool_ready()
        await retry_transient(
            lambda: pool.execute(f"DELETE FROM {_TABLE} WHERE key = $1", key),
            deadline=_RETRY_DEADLINE,
            what="duplicate guard",
        )

    async def prune(self) -> int:
        """Delete expired keys, in batches; how many went."""
        pool = await self._pool_ready()
        total = 0
        while True:
            status = await pool.execute(_PRUNE, _PRUNE_BATCH)
            deleted = int(status.split()[-1])
            total += deleted
            if deleted < _PRUNE_BATCH:
                return total

    async def aclose(self) -> None:
        """Close the connections."""
        if self._pool is not None:
            await self._pool.close()
