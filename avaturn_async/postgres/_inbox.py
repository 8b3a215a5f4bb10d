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
  autocommit statement leases them: the call's token, ``attempts + 1``, due again
  at ``now + lease``. After the commit, the token is the claim, not a lock; the
  worker renews it every third of the lease, and every write that finishes
  or renews a claim is fenced by the token. A claim is idempotent per call: one
  whose answer was lost with its connection is repeated with the same token and
  returns the rows it took (their attempt counted once), and dead-lettering
  expired last attempts is a best-effort step of its own, never retried with it.
* **ordering**: a row with an ordering key is claimable only first among its key's
  pending rows (``_inbox_sql`` says why that holds under concurrent claims, inserts
  and replays).
* **waking**: workers subscribe to the channel on the connector's one shared
  ``LISTEN`` connection; a worker still polls every ``poll_interval``, which
  covers notifications lost while the listener reconnects.
* **faults**: transient errors (a restarting server, a dropped connection) are
  retried with backoff for a few seconds; beyond that a delivery is answered
  503 (the sender retries it; a retried insert that had committed is then a
  duplicate). A delivery PostgreSQL cannot store (a NUL character in its event
  type or id) fails alone with :class:`~avaturn_async.webhooks.UnstorableDeliveryError`
  (a 422), and its group is committed without it. Writes that finish a claim
  (done, failed, released) are fenced, so they are retried until the claim's
  lease is about to run out, waiting for a pooled connection when the server
  has no free slot. A lease renewal is not retried here: the worker tries
  again at its next renewal. Every step is idempotent, so an outcome lost with
  a dropped ``COMMIT`` is harmless.

Timestamps come from the caller's clock (as with SQLite): keep the clocks of
the machines sharing an inbox in sync (NTP); leases of tens of seconds absorb
the usual skew.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from .._clock import utc
from .._errors import ConfigurationError
from ..webhooks import (
    LEASE_LOST,
    Claimed,
    Delivery,
    GroupCommit,
    InboxError,
    InboxRecord,
    InboxStats,
    InboxStatus,
    OrderBy,
    UnstorableDeliveryError,
    WebhookInbox,
    by_avatar,
)
from . import _inbox_sql as sql
from ._connect import one_line, sqlstate
from ._connector import PostgresConnector, connector_for
from ._inbox_sql import INBOX_CHANNEL

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    from ._listen import Subscription

__all__ = ["INBOX_CHANNEL", "PostgresInbox", "PostgresInboxStore"]

T = TypeVar("T")
_RETRY_DEADLINE = 5.0
_log = logging.getLogger("avaturn_async.postgres")


def _is_data_error(exc: BaseException) -> bool:
    """SQLSTATE class 22: a value this statement carries cannot be stored."""
    return sqlstate(exc).startswith("22")


def _lease_margin(lease: float) -> float:
    """How long before a lease ends a fenced write stops retrying: the event is then another's."""
    return min(2.0, lease * 0.1)


class PostgresInboxStore:
    """The :class:`~avaturn_async.webhooks.InboxStore` of a PostgreSQL database.

    ``dsn`` is a DSN (the store then opens a :class:`PostgresConnector` of its own,
    of ``max_connections`` connections) or a connector the process shares.
    Connects (and installs or checks the schema) on first use, or on
    :meth:`open`; a malformed DSN is a :class:`~avaturn_async.ConfigurationError`
    here, an unreachable server a :class:`~avaturn_async.StorageUnavailableError`
    at open. ``create=False`` refuses a database without an inbox
    (:class:`~avaturn_async.webhooks.InboxError`) instead of installing one.
    """

    def __init__(
        self,
        dsn: str | PostgresConnector,
        *,
        create: bool = True,
        max_connections: int | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self.connector: PostgresConnector
        self.connector, self._owned = connector_for(
            dsn, max_connections=max_connections, connect_timeout=connect_timeout
        )
        self.dsn: str = self.connector.dsn
        self.label: str = self.connector.label  # how metrics name it: no password
        self._create = create
        self._opening = anyio.Lock()
        self._installed = False
        self._group: GroupCommit[Delivery, int | None] = GroupCommit(self._insert_batch)
        self._lease_ends: dict[tuple[int, str], float] = {}  # monotonic
        self._wake = asyncio.Event()
        self._subscription: Subscription | None = None

    def __repr__(self) -> str:
        return f"PostgresInboxStore({self.connector.label!r})"

    @property
    def batches(self) -> int:
        """Insert statements committed (or failed) so far: fewer than inserts under load."""
        return self._group.batches

    async def open(self) -> None:
        """Connect and install (or check) the schema now; idempotent."""
        if self._installed:
            return
        async with self._opening:
            if self._installed:
                return
            await self.connector.open()
            if not self._create and await self.connector.installed_version(sql.COMPONENT) == 0:
                raise InboxError(f"{self.connector.label} holds no webhook inbox")
            await self.connector.migrate(sql.COMPONENT, sql.STEPS)
            self._installed = True

    async def _run(
        self,
        what: str,
        operation: Callable[[PoolConnectionProxy], Awaitable[T]],
        *,
        deadline: float = _RETRY_DEADLINE,
    ) -> T:
        await self.open()
        return await self.connector.run(f"webhook inbox {what}", operation, deadline=deadline)

    async def insert(self, delivery: Delivery) -> int | None:
        return await self._group.submit(delivery)

    async def _insert_batch(self, deliveries: Sequence[Delivery]) -> list[int | Exception | None]:
        """Store ``deliveries`` in one statement; one that cannot be stored fails alone."""
        results: list[int | Exception | None] = [None] * len(deliveries)
        storable: list[int] = []
        for n, delivery in enumerate(deliveries):
            problem = sql.unstorable(delivery)
            if problem is None:
                storable.append(n)
            else:
                results[n] = UnstorableDeliveryError(problem)
        ids: Sequence[int | Exception | None]
        try:
            ids = await self._insert_rows([deliveries[n] for n in storable])
        except Exception as exc:
            if not _is_data_error(exc):
                raise
            # Some other value PostgreSQL refuses: find it, one delivery at a time.
            ids = [await self._insert_alone(deliveries[n]) for n in storable]
        for n, found in zip(storable, ids, strict=True):
            results[n] = found
        return results

    async def _insert_alone(self, delivery: Delivery) -> int | Exception | None:
        try:
            return (await self._insert_rows([delivery]))[0]
        except Exception as exc:
            if not _is_data_error(exc):
                raise
            return UnstorableDeliveryError(f"PostgreSQL cannot store the delivery: {one_line(exc)}")

    async def _insert_rows(self, deliveries: Sequence[Delivery]) -> list[int | None]:
        if not deliveries:
            return []
        columns = (
            [d.dedupe_key for d in deliveries],
            [d.webhook_id for d in deliveries],
            [d.webhook_timestamp for d in deliveries],
            [d.event_type for d in deliveries],
            [d.body for d in deliveries],
            [utc(d.received_at) for d in deliveries],
            [d.ordering_key for d in deliveries],
        )
        rows = await self._run("insert", lambda conn: conn.fetch(sql.INSERT, *columns))
        new_ids = {row["dedupe_key"]: row["id"] for row in rows}
        # A key twice in one batch was inserted once: only its first delivery is new.
        return [new_ids.pop(d.dedupe_key, None) for d in deliveries]

    async def claim(
        self, *, now: float, lease: float, limit: int, max_attempts: int, token: str
    ) -> list[Claimed]:
        started = time.monotonic()
        queries = iter([sql.CLAIM])  # a repeated attempt may hold rows already: sql.RECLAIM
        args = (utc(now), limit, token, utc(now + lease), max_attempts)
        # Retried with the same token for a third of the lease: beyond that, the
        # worker's loop claims again at its next poll.
        rows: list[Any] = await self._run(
            "claim", lambda conn: conn.fetch(next(queries, sql.RECLAIM), *args), deadline=lease / 3
        )
        for row in rows:  # fenced writes retry until shortly before this
            self._lease_ends[(row["id"], token)] = started + lease - _lease_margin(lease)
        if len(rows) < limit:  # idle enough to dead-letter expired last attempts
            await self._best_effort("expiry", sql.EXPIRE, LEASE_LOST, utc(now), max_attempts)
        rows.sort(key=lambda row: (row["next_attempt_at"], row["id"]))
        fields = ("id", "body", "attempts", "event_type", "ordering_key")  # bytea is bytes
        return [Claimed(token=token, **{name: row[name] for name in fields}) for row in rows]

    async def _best_effort(self, what: str, query: str, *args: Any) -> None:
        """Once, never retried: a later call does it again if this one fails."""
        try:
            await self._run(what, lambda conn: conn.execute(query, *args), deadline=0)
        except Exception as exc:
            _log.debug("webhook inbox: %s failed: %s", what, exc)

    async def _fenced(
        self, what: str, assignments: str, claimed: Claimed, *args: Any, finish: bool = True
    ) -> bool:
        query = (
            f"UPDATE {sql.TABLE} SET {assignments} "
            f"WHERE id = ${len(args) + 1} AND claim_token = ${len(args) + 2} "
            "AND status = 'pending'"
        )
        key = (claimed.id, claimed.token)
        deadline = 0.0  # a renewal is retried by the worker's next one
        if finish:
            ends = self._lease_ends.get(key)
            deadline = _RETRY_DEADLINE if ends is None else ends - time.monotonic()
        status = await self._run(
            what,
            lambda conn: conn.execute(query, *args, claimed.id, claimed.token),
            deadline=max(0.0, deadline),
        )
        if finish:
            self._lease_ends.pop(key, None)
        return bool(status == "UPDATE 1")

    async def renew(self, claimed: Claimed, *, now: float, lease: float) -> bool:
        started = time.monotonic()
        renewed = await self._fenced(
            "renew", "next_attempt_at = $1", claimed, utc(now + lease), finish=False
        )
        key = (claimed.id, claimed.token)
        if renewed and key in self._lease_ends:
            self._lease_ends[key] = started + lease - _lease_margin(lease)
        return renewed

    async def complete(self, claimed: Claimed, *, now: float) -> bool:
        return await self._fenced(
            "complete", "status = 'done', finished_at = $1, claim_token = NULL", claimed, utc(now)
        )

    async def fail(
        self, claimed: Claimed, *, now: float, error: str, retry_at: float | None
    ) -> bool:
        error = error.replace("\x00", "\\x00")  # PostgreSQL text holds no NUL
        if retry_at is None:
            assignments = "status = 'dead', last_error = $1, finished_at = $2, claim_token = NULL"
            return await self._fenced("fail", assignments, claimed, error, utc(now))
        assignments = "last_error = $1, next_attempt_at = $2, claim_token = NULL"
        failed = await self._fenced("fail", assignments, claimed, error, utc(retry_at))
        if failed and claimed.ordering_key is not None:
            held = (claimed.ordering_key, utc(retry_at), claimed.id)
            await self._best_effort("hold-back", sql.HOLD_BACK, *held)
        return failed

    async def release(self, claimed: Claimed, *, now: float) -> bool:
        assignments = "attempts = attempts - 1, next_attempt_at = $1, claim_token = NULL"
        return await self._fenced("release", assignments, claimed, utc(now))

    async def wait_for_work(self, max_wait: float) -> None:
        if self._subscription is None:
            # Shielded: a worker may cancel its wait at any moment (a slot freed),
            # and a subscription half made would be made again and never dropped.
            with anyio.CancelScope(shield=True):
                await self._subscribe()
        with anyio.move_on_after(max_wait):
            await self._wake.wait()
        self._wake.clear()

    async def _subscribe(self) -> None:
        """Listen on the connector's shared connection (it catches up by waking us)."""
        wake = self._wake

        async def catch_up() -> None:
            wake.set()  # look at the table: something may have come while not listening

        try:
            self._subscription = await self.connector.subscribe(
                INBOX_CHANNEL, lambda payload: wake.set(), catch_up
            )
        except Exception as exc:  # the server is down: poll, and subscribe at the next wait
            _log.debug("webhook inbox: cannot listen yet: %s", exc)

    async def counts(self) -> dict[str, int]:
        rows = await self._run("counts", lambda conn: conn.fetch(sql.STATS))
        return dict(sql.stats_of(rows, 0.0).counts)

    async def stats(self, *, now: float) -> InboxStats:
        """Counts by status and the oldest pending delivery's age, in one statement,
        not retried (a metrics collection gives up rather than waits)."""
        rows = await self._run("stats", lambda conn: conn.fetch(sql.STATS), deadline=0)
        return sql.stats_of(rows, now)

    async def ping(self) -> None:
        """The readiness check: one trivial query, not retried."""
        await self.open()
        await self.connector.ping()

    async def records(self, *, status: InboxStatus | None, limit: int) -> list[InboxRecord]:
        where = "WHERE status = $2" if status is not None else ""
        query = f"SELECT {sql.RECORD_COLUMNS} FROM {sql.TABLE} {where} ORDER BY id DESC LIMIT $1"
        args = (limit, status.value) if status is not None else (limit,)
        rows = await self._run("records", lambda conn: conn.fetch(query, *args))
        return [sql.record(row) for row in rows]

    async def replay(self, ids: Iterable[int] | None, *, now: float) -> list[int]:
        chosen = None if ids is None else list(dict.fromkeys(ids))
        rows = await self._run("replay", lambda conn: conn.fetch(sql.REPLAY, utc(now), chosen))
        replayed = {row["id"] for row in rows}
        if chosen is None:
            return sorted(replayed)
        return [event_id for event_id in chosen if event_id in replayed]

    async def purge(self, *, finished_before: float) -> int:
        query = f"DELETE FROM {sql.TABLE} WHERE status = 'done' AND finished_at < $1"
        status = await self._run("purge", lambda conn: conn.execute(query, utc(finished_before)))
        return int(status.split()[-1])

    def close(self) -> None:
        """Drop the connections now, if this store opened them (:meth:`aclose`: cleanly)."""
        if self._owned:
            self.connector.close()

    async def aclose(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await self.connector.unsubscribe(subscription)
        if self._owned:
            await self.connector.aclose()


class PostgresInbox(WebhookInbox):
    """A :class:`~avaturn_async.webhooks.WebhookInbox` whose events live in PostgreSQL.

    Use it wherever a ``WebhookInbox`` goes (``WebhookPipeline(..., inbox=)``,
    ``inbox.worker(router, ...)``), from as many receivers and workers as you like::

        async with PostgresInbox("postgresql://app@db/app") as inbox:
            pipeline = WebhookPipeline(verifier, router, inbox=inbox)
            async with inbox.worker(router), serve_webhooks(pipeline):
                ...

    ``dsn`` may also be a :class:`PostgresConnector` shared with the process's
    other PostgreSQL backends (one pool and one ``LISTEN`` connection for all).
    ``async with`` connects and installs the schema at once, so a wrong DSN or
    an unreachable server fails at start; without it, the first call connects.
    ``order_by`` is :class:`~avaturn_async.webhooks.WebhookInbox`'s: each avatar's
    events are dispatched one at a time, in order, across every replica.
    """

    def __init__(
        self,
        dsn: str | PostgresConnector,
        *,
        create: bool = True,
        max_connections: int | None = None,
        connect_timeout: float = 10.0,
        now: Callable[[], float] = time.time,
        clock: Callable[[], float] | None = None,
        order_by: OrderBy | None = by_avatar,
    ) -> None:
        if max_connections is not None and max_connections < 2:
            raise ConfigurationError("max_connections must be at least 2")
        store = PostgresInboxStore(
            dsn, create=create, max_connections=max_connections, connect_timeout=connect_timeout
        )
        super().__init__(store=store, now=now, clock=clock, order_by=order_by)
        self.postgres_store = store

    def __repr__(self) -> str:
        return f"PostgresInbox({self.postgres_store.connector.label!r})"

    async def __aenter__(self) -> PostgresInbox:
        await self.postgres_store.open()
        return self
