"""The duplicate guard on PostgreSQL: an :class:`~avaturn_async.webhooks.IdempotencyStore`
shared by every replica, with a time to live.

One row per delivery key in ``avaturn_webhook_dedupe``. Marking is one statement
(``_MARK``, an ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` expired), atomic under any
concurrency: a row comes back only for a new key or one whose time to live ran out
(then it is taken over), so "no row" means "a duplicate". Expiry uses the database's
clock, so replicas with skewed clocks agree. Expired rows are also deleted in
bounded batches (``SKIP LOCKED``, so replicas never wait on each other) at most
once a minute per store, and by :meth:`PostgresIdempotencyStore.prune`.

PostgreSQL text holds no NUL character; a key with one (a ``webhook-id`` a
framework let through) is stored as its hash, so it is guarded like any other.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from .._errors import ConfigurationError
from ._connector import PostgresConnector, connector_for

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

__all__ = ["PostgresIdempotencyStore"]

T = TypeVar("T")
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


def _storable(key: str) -> str:
    """``key``, or for one holding a NUL (PostgreSQL text cannot) its SHA-256 under a
    prefix no other key has: still one row per key, and no two keys meet."""
    if "\x00" not in key:
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"nul-sha256:{digest}"


class PostgresIdempotencyStore:
    """Delivery keys remembered in PostgreSQL for ``ttl`` (default 24 hours).

    Pass it to a plain receiver's pipeline (``WebhookPipeline(verifier, router,
    store=...)``) so that a redelivery reaching any replica is recognised. ``dsn`` is
    a DSN (then the store opens a :class:`PostgresConnector` of its own, of
    ``max_connections`` connections) or a connector the process shares. Connects on
    first use (or :meth:`open`); a malformed DSN is a
    :class:`~avaturn_async.ConfigurationError` at once.
    """

    def __init__(
        self,
        dsn: str | PostgresConnector,
        *,
        ttl: timedelta = timedelta(hours=24),
        max_connections: int | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        if ttl <= timedelta(0):
            raise ConfigurationError("ttl must be positive")
        self.connector: PostgresConnector
        self.connector, self._owned = connector_for(
            dsn, max_connections=max_connections, connect_timeout=connect_timeout
        )
        self.dsn: str = self.connector.dsn
        self.ttl = ttl
        self._installed = False
        self._next_prune = time.monotonic() + _PRUNE_EVERY

    def __repr__(self) -> str:
        return f"PostgresIdempotencyStore({self.connector.label!r}, ttl={self.ttl!s})"

    async def open(self) -> None:
        """Connect and install (or check) the schema now; idempotent."""
        if not self._installed:
            await self.connector.migrate("dedupe", _STEPS)
            self._installed = True

    async def _run(self, operation: Callable[[PoolConnectionProxy], Awaitable[T]]) -> T:
        await self.open()
        return await self.connector.run("duplicate guard", operation, deadline=_RETRY_DEADLINE)

    async def ping(self) -> None:
        """The readiness check: one trivial query, not retried."""
        await self.open()
        await self.connector.ping()

    async def seen_or_mark(self, key: str) -> bool:
        stored = _storable(key)
        row = await self._run(lambda conn: conn.fetchval(_MARK, stored, self.ttl))
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + _PRUNE_EVERY
            await self.prune()
        return row is None

    async def unmark(self, key: str) -> None:
        stored = _storable(key)
        await self._run(lambda conn: conn.execute(f"DELETE FROM {_TABLE} WHERE key = $1", stored))

    async def prune(self) -> int:
        """Delete expired keys, in batches; how many went."""
        total = 0
        while True:
            status = await self._run(lambda conn: conn.execute(_PRUNE, _PRUNE_BATCH))
            deleted = int(status.split()[-1])
            total += deleted
            if deleted < _PRUNE_BATCH:
                return total

    async def aclose(self) -> None:
        """Close the connections, if this store opened them."""
        if self._owned:
            await self.connector.aclose()
