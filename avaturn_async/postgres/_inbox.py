"""The webhook inbox on PostgreSQL: :class:`PostgresInbox` and its :class:`PostgresInboxStore`.

Any number of receivers and workers, in any number of processes and machines,
share one table (``avaturn_webhook_inbox``):

* **receiving**: concurrent deliveries are group-committed: one
  ``INSERT ... SELECT FROM unnest(...) ON CONFLICT (dedupe_key) DO NOTHING``
  statement (one commit, one WAL flush) stores every delivery waiting at that
  moment, and each is acknowledged only after that statement's commit
  returned. A redelivery (same key) inserts nothing and is acknowledged as a
  duplicate. The same statement ``pg_notify``-s the workers (folded into one
  notification per commit).
* **claiming**: a CTE locks up to ``limit`` due rows ``FOR UPDATE SKIP LOCKED``
  (workers never wait for each other, never claim one row twice) and the same
  autocommit statement leases them: a random token, ``attempts + 1``, due again at
  ``now + lease``. After the commit, the token is the claim, not a lock; the
  worker renews it every third of the lease, and every write that finishes
  or renews a claim is fenced by the token.
* **waking**: each store keeps one dedicated connection that ``LISTEN``-s
  (the pool would reset it); a worker still polls every ``poll_interval``,
  which covers notifications lost while the listener reconnects.
* **faults**: transient errors (a restarting server, a dropped connection) are
  retried with backoff for a few seconds; beyond that a delivery is answered
  503 (the sender retries it; a retried insert that had committed is then a
  duplicate) and a worker logs and polls again. Every step is idempotent, so an
  outcome lost with a dropped ``COMMIT`` is harmless.

Timestamps come from the caller's clock (as with SQLite): keep the clocks of
the machines sharing an inbox in sync (NTP); leases of tens of seconds absorb
the usual skew.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from .._clock import utc
from .._errors import ConfigurationError
from .._public import public
from ..webhooks import (
    LEASE_LOST,
    Claimed,
    Delivery,
    GroupCommit,
    InboxError,
    InboxRecord,
    InboxStatus,
    WebhookInbox,
)
from ._connect import connect, create_pool, retry_transient
from ._dsn import check_dsn, redact_dsn
from ._inbox_listen import WakeListener
from ._migrate import migrate, schema_version

if TYPE_CHECKING:
    import asyncpg

__all__ = ["INBOX_CHANNEL", "PostgresInbox", "PostgresInboxStore"]


T = TypeVar("T")
INBOX_CHANNEL = "avaturn_webhook_inbox"
"""The ``LISTEN/NOTIFY`` channel that wakes workers (lower case: ``LISTEN`` folds case)."""
_TABLE = "avaturn_webhook_inbox"
_COMPONENT = "inbox"
_RETRY_DEADLINE = 5.0

_STEPS = [
    f"""
    CREATE TABLE {_TABLE} (
        id                bigserial   PRIMARY KEY,
        dedupe_key        text        NOT NULL UNIQUE,
        webhook_id        text,
        webhook_timestamp bigint,
        event_type        text        NOT NULL,
        body              bytea       NOT NULL,
        status            text        NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'done', 'dead')),
        attempts          integer     NOT NULL DEFAULT 0,
        next_attempt_at   timestamptz NOT NULL,
        claim_token       text,
        last_error        text,
        received_at       timestamptz NOT NULL,
        finished_at       timestamptz
    );
    CREATE INDEX {_TABLE}_due ON {_TABLE} (next_attempt_at, id) WHERE status = 'pending';
    CREATE INDEX {_TABLE}_done ON {_TABLE} (finished_at) WHERE status = 'done';
    ALTER TABLE {_TABLE} SET (autovacuum_vacuum_scale_factor = 0.01, fillfactor = 70)
    """,
]

_INSERT = f"""
WITH ins AS (
    INSERT INTO {_TABLE} (dedupe_key, webhook_id, webhook_timestamp, event_type, body,
                          next_attempt_at, received_at)
    SELECT k, w, ts, e, b, r, r
    FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bytea[],
                $6::timestamptz[]) WITH ORDINALITY AS d(k, w, ts, e, b, r, n)
    ORDER BY n
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id, dedupe_key
)
SELECT id, dedupe_key, pg_notify('{INBOX_CHANNEL}', '')::text FROM ins
"""

_EXPIRE = f"""
UPDATE {_TABLE} SET status = 'dead', claim_token = NULL, last_error = $1, finished_at = $2
WHERE status = 'pending' AND claim_token IS NOT NULL AND next_attempt_at <= $2
  AND attempts >= $3
"""

_CLAIM = f"""
WITH due AS (
    SELECT id FROM {_TABLE}
    WHERE status = 'pending' AND next_attempt_at <= $1
      AND NOT (claim_token IS NOT NULL AND attempts >= $5)
    ORDER BY next_attempt_at, id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE {_TABLE} AS t
SET claim_token = $3, attempts = t.attempts + 1, next_attempt_at = $4
FROM due WHERE t.id = due.id
RETURNING t.id, t.body, t.attempts, t.event_type, t.next_attempt_at
"""

_RECORD_COLUMNS = (
    "id, webhook_id, event_type, status, attempts, last_error, received_at, "
    "next_attempt_at, finished_at, webhook_timestamp"
)


def _record(row: asyncpg.Record) -> InboxRecord:
    status = InboxStatus(row["status"])
    return InboxRecord(
        id=row["id"],
        webhook_id=row["webhook_id"],
        event_type=row["event_type"],
        status=status,
        attempts=row["attempts"],
        last_error=row["last_error"],
        received_at=row["received_at"],
        next_attempt_at=row["next_attempt_at"] if status is InboxStatus.PENDING else None,
        finished_at=row["finished_at"],
        webhook_timestamp=row["webhook_timestamp"],
    )


class PostgresInboxStore:
    """The :class:`~avaturn_async.webhooks.InboxStore` of a PostgreSQL database.

    Connects (and installs or checks the schema) on first use, or on
    :meth:`open`; a malformed DSN is a :class:`~avaturn_async.ConfigurationError`
    here, an unreachable server a :class:`~avaturn_async.StorageUnavailableError`
    at open. ``create=False`` refuses a database without an inbox
    (:class:`~avaturn_async.webhooks.InboxError`) instead of installing one.
    """

    def __init__(
        self,
        dsn: str,
        *,
        create: bool = True,
        max_connections: int = 10,
        connect_timeout: float = 10.0,
    ) -> None:
        self.dsn: str = check_dsn(dsn)
        self._create = create
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._pool: asyncpg.Pool | None = None
        self._opening = anyio.Lock()
        self._group: GroupCommit[Delivery, int | None] = GroupCommit(self._insert_batch)
        self._listener = WakeListener(dsn, INBOX_CHANNEL, connect_timeout=connect_timeout)

    def __repr__(self) -> str:
        return f"PostgresInboxStore({redact_dsn(self.dsn)!r})"

    @property
    def batches(self) -> int:
        """Insert statements committed (or failed) so far: fewer than inserts under load."""
        return self._group.batches

    async def open(self) -> None:
        """Connect and install (or check) the schema now; idempotent."""
        await self._pool_ready()

    async def _pool_ready(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                pool = await create_pool(
                    self.dsn,
                    min_size=1,
                    max_size=self._max_connections,
                    connect_timeout=self._connect_timeout,
                )
                try:
                    conn = await connect(self.dsn, connect_timeout=self._connect_timeout)
                    try:
                        await self._install(conn)
                    finally:
                        await conn.close()
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
        return self._pool

    async def _install(self, conn: asyncpg.Connection) -> None:
        if not self._create and await schema_version(conn, _COMPONENT) == 0:
            raise InboxError(f"{redact_dsn(self.dsn)} holds no webhook inbox")
        await migrate(conn, _COMPONENT, _STEPS)

    async def _run(self, what: str, operation: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
        pool = await self._pool_ready()
        return await retry_transient(
            lambda: operation(pool), deadline=_RETRY_DEADLINE, what=f"webhook inbox {what}"
        )

    # -- receiving ---------------------------------------------------------------------

    async def insert(self, delivery: Delivery) -> int | None:
        return await self._group.submit(delivery)

    async def _insert_batch(self, deliveries: Sequence[Delivery]) -> list[int | None]:
        columns = (
            [d.dedupe_key for d in deliveries],
            [d.webhook_id for d in deliveries],
            [d.webhook_timestamp for d in deliveries],
            [d.event_type for d in deliveries],
            [d.body for d in deliveries],
            [utc(d.received_at) for d in deliveries],
        )
        rows = await self._run("insert", lambda pool: pool.fetch(_INSERT, *columns))
        new_ids = {row["dedupe_key"]: row["id"] for row in rows}
        # A key twice in one batch was inserted once: only its first delivery is new.
        return [new_ids.pop(d.dedupe_key, None) for d in deliveries]

    # -- the worker's side -------------------------------------------------------------

    async def claim(
        self, *, now: float, lease: float, limit: int, max_attempts: int, token: str
    ) -> list[Claimed]:
        async def claim(pool: asyncpg.Pool) -> list[asyncpg.Record]:
            # One autocommit statement: the CTE's row locks make it atomic.
            rows: list[asyncpg.Record] = await pool.fetch(
                _CLAIM, utc(now), limit, token, utc(now + lease), max_attempts
            )
            if len(rows) < limit:  # idle enough to dead-letter expired last attempts
                await pool.execute(_EXPIRE, LEASE_LOST, utc(now), max_attempts)
            return rows

        rows = await self._run("claim", claim)
        rows.sort(key=lambda row: (row["next_attempt_at"], row["id"]))
        return [
            Claimed(
                id=row["id"],
                body=bytes(row["body"]),
                attempts=row["attempts"],
                token=token,
                event_type=row["event_type"],
            )
            for row in rows
        ]

    async def _fenced(self, what: str, assignments: str, claimed: Claimed, *args: Any) -> bool:
        sql = (
            f"UPDATE {_TABLE} SET {assignments} "
            f"WHERE id = ${len(args) + 1} AND claim_token = ${len(args) + 2} "
            "AND status = 'pending'"
        )
        status = await self._run(
            what, lambda pool: pool.execute(sql, *args, claimed.id, claimed.token)
        )
        return bool(status == "UPDATE 1")

    async def renew(self, claimed: Claimed, *, now: float, lease: float) -> bool:
        return await self._fenced("renew", "next_attempt_at = $1", claimed, utc(now + lease))

    async def complete(self, claimed: Claimed, *, now: float) -> bool:
        return await self._fenced(
            "complete", "status = 'done', finished_at = $1, claim_token = NULL", claimed, utc(now)
        )

    async def fail(
        self, claimed: Claimed, *, now: float, error: str, retry_at: float | None
    ) -> bool:
        if retry_at is None:
            assignments = "status = 'dead', last_error = $1, finished_at = $2, claim_token = NULL"
            return await self._fenced("fail", assignments, claimed, error, utc(now))
        assignments = "last_error = $1, next_attempt_at = $2, claim_token = NULL"
        return await self._fenced("fail", assignments, claimed, error, utc(retry_at))

    async def release(self, claimed: Claimed, *, now: float) -> bool:
        assignments = "attempts = attempts - 1, next_attempt_at = $1, claim_token = NULL"
        return await self._fenced("release", assignments, claimed, utc(now))

    async def wait_for_work(self, max_wait: float) -> None:
        await self._listener.wait(max_wait)

    # -- inspection and maintenance ----------------------------------------------------

    async def counts(self) -> dict[str, int]:
        sql = f"SELECT status, count(*) FROM {_TABLE} GROUP BY status"
        rows = await self._run("counts", lambda pool: pool.fetch(sql))
        found = {row["status"]: int(row["count"]) for row in rows}
        return {status.value: found.get(status.value, 0) for status in InboxStatus}

    async def records(self, *, status: InboxStatus | None, limit: int) -> list[InboxRecord]:
        where = "WHERE status = $2" if status is not None else ""
        sql = f"SELECT {_RECORD_COLUMNS} FROM {_TABLE} {where} ORDER BY id DESC LIMIT $1"
        args = (limit, status.value) if status is not None else (limit,)
        rows = await self._run("records", lambda pool: pool.fetch(sql, *args))
        return [_record(row) for row in rows]

    async def replay(self, ids: Iterable[int] | None, *, now: float) -> list[int]:
        chosen = None if ids is None else list(dict.fromkeys(ids))
        where = "" if chosen is None else "AND id = ANY($2::bigint[])"
        sql = (
            f"UPDATE {_TABLE} SET status = 'pending', attempts = 0, next_attempt_at = $1, "
            f"claim_token = NULL, finished_at = NULL WHERE status = 'dead' {where} "
            f"RETURNING id, pg_notify('{INBOX_CHANNEL}', '')::text"
        )
        args: tuple[Any, ...] = (utc(now),) if chosen is None else (utc(now), chosen)
        rows = await self._run("replay", lambda pool: pool.fetch(sql, *args))
        replayed = {row["id"] for row in rows}
        if chosen is None:
            return sorted(replayed)
        return [event_id for event_id in chosen if event_id in replayed]

    async def purge(self, *, finished_before: float) -> int:
        sql = f"DELETE FROM {_TABLE} WHERE status = 'done' AND finished_at < $1"
        status = await self._run("purge", lambda pool: pool.execute(sql, utc(finished_before)))
        return int(status.split()[-1])

    def close(self) -> None:
        """Drop the connections at once (:meth:`aclose` closes them cleanly)."""
        self._listener.terminate()
        if self._pool is not None:
            self._pool.terminate()

    async def aclose(self) -> None:
        await self._listener.aclose()
        if self._pool is not None:
            with anyio.move_on_after(10) as scope:
                await self._pool.close()
            if scope.cancelled_caught:
                self._pool.terminate()


class PostgresInbox(WebhookInbox):
    """A :class:`~avaturn_async.webhooks.WebhookInbox` whose events live in PostgreSQL.

    Use it wherever a ``WebhookInbox`` goes (``serve_webhooks(..., inbox=)``,
    ``make_handler``, the ASGI app, ``inbox.worker(router, ...)``), from as
    many receivers and workers as you like::

        async with PostgresInbox("postgresql://app@db/app") as inbox:
            async with inbox.worker(router), serve_webhooks(verifier, router, inbox=inbox):
                ...

    ``async with`` connects and installs the schema at once, so a wrong DSN or
    an unreachable server fails at start; without it, the first call connects.
    """

    def __init__(
        self,
        dsn: str,
        *,
        create: bool = True,
        max_connections: int = 10,
        connect_timeout: float = 10.0,
        now: Callable[[], float] = time.time,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if max_connections < 2:
            raise ConfigurationError("max_connections must be at least 2")
        store = PostgresInboxStore(
            dsn, create=create, max_connections=max_connections, connect_timeout=connect_timeout
        )
        super().__init__(store=store, now=now, clock=clock)
        self.postgres_store = store

    def __repr__(self) -> str:
        return f"PostgresInbox({redact_dsn(self.postgres_store.dsn)!r})"

    async def __aenter__(self) -> PostgresInbox:
        await self.postgres_store.open()
        return self


public("avaturn_async.postgres", PostgresInboxStore, PostgresInbox)
