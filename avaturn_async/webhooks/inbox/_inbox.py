"""A durable webhook inbox: acknowledge at once, dispatch later, lose nothing.

With an inbox, a receiver verifies and parses a delivery, commits it to the
inbox's store (one SQLite file by default; any :class:`InboxStore`, such as
``avaturn_async.postgres.PostgresInboxStore``) and answers 202; nothing is
dispatched on the request. Concurrent deliveries are committed together (group
commit), each answered only once its commit has returned. A worker claims due
events with a lease, renews the lease while the handler runs (every third of
it), re-parses each event from the stored body and calls
``router.dispatch(event)``:

* success: the event is ``done``;
* a handler raised: the attempt is recorded (``last_error`` holds the exception
  type and message, URL query strings redacted), and the event is due again
  after ``backoff(attempts)`` seconds, or ``dead`` after ``max_attempts``;
* the worker died (or could not renew its lease): the event becomes due again
  when the lease ends (and goes ``dead`` if that was its last attempt); a
  worker that finds its lease lost cancels the handler;
* the worker is cancelled (shutdown): its claims are given back, uncounted.

Events of one ordering key (``order_by``: each avatar's by default) wait for the
pending one stored before them, across every worker of the store; a ``dead`` one no
longer holds them back. ``dead`` events stay until :meth:`WebhookInbox.replay`,
``done`` ones until :meth:`WebhookInbox.purge`.

Dispatch is therefore at least once: a handler may see an event again after a
crash between its success and the commit of ``done``. Duplicated deliveries
(same ``webhook-id``, or same body when there is no id) are stored once.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractContextManager, asynccontextmanager
from datetime import timedelta
from functools import partial
from typing import Any

import anyio

from ... import _metrics
from ..._deprecated import renamed_argument
from ..._errors import ConfigurationError
from ..._events import Event
from .._boundary import ID_HEADERS, TIMESTAMP_HEADERS, header_value
from .._confirm import EventConfirmer
from .._dedupe import idempotency_key
from .._router import WebhookRouter
from ._ordering import OrderBy, by_avatar, ordering_key
from ._policy import DEFAULT_LEASE, DEFAULT_MAX_ATTEMPTS, Backoff, exponential_backoff, make_policy
from ._sqlite import Synchronous
from ._sqlite_store import SQLiteInboxStore
from ._stats import InboxStats
from ._store import Delivery, InboxRecord, InboxStatus, InboxStore
from ._worker import InboxWorker

__all__ = ["Backoff", "WebhookInbox", "exponential_backoff"]


def _timestamp(headers: Mapping[str, str]) -> int | None:
    value = header_value(headers, TIMESTAMP_HEADERS)
    if value is None or not (value.isascii() and value.isdigit() and len(value) <= 15):
        return None
    return int(value)


class WebhookInbox:
    """Webhook deliveries kept in an :class:`InboxStore` until a worker has handled them.

    ``WebhookInbox(path)`` stores them in one SQLite file (WAL).
    ``synchronous="full"`` (the default) syncs every stored delivery to disk
    before the receiver answers 2xx, so not even a power cut loses an
    acknowledged webhook; ``"normal"`` survives process crashes only (see
    ``inbox._sqlite`` for the reasoning). ``create=False`` opens an existing
    inbox only (raising :class:`InboxError` otherwise).
    ``WebhookInbox(store=...)`` uses another store (e.g. PostgreSQL).

    ``order_by`` gives each delivery, when it is stored, the key its dispatch is
    ordered by: events with one key are dispatched one at a time, in the order
    stored, across every worker of the store. The default, :func:`by_avatar`,
    orders each avatar's events; ``None`` dispatches every event as soon as it
    is due, concurrently with any other.
    ``now`` (wall-clock seconds since the epoch, persisted) is injectable
    for tests; ``clock`` is its deprecated old name.

    Every method is safe to call from any task.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        store: InboxStore | None = None,
        synchronous: Synchronous = "full",
        create: bool = True,
        now: Callable[[], float] = time.time,
        clock: Callable[[], float] | None = None,
        order_by: OrderBy | None = by_avatar,
    ) -> None:
        if (path is None) == (store is None):
            raise ConfigurationError("WebhookInbox needs a path or a store (not both)")
        if order_by is not None and not callable(order_by):
            raise ConfigurationError("order_by must be a function of the event, or None")
        self.path = path
        self._now = renamed_argument(type(self).__name__, "clock", "now", clock, now)
        self.order_by = order_by
        if store is None:
            store = SQLiteInboxStore(path, synchronous=synchronous, create=create)  # type: ignore[arg-type]
        self.store: InboxStore = store

    def __repr__(self) -> str:
        if self.path is None:
            return f"{type(self).__name__}(store={self.store!r})"
        return f"{type(self).__name__}({os.fspath(self.path)!r})"

    def close(self) -> None:
        """Close the store now; stop workers first."""
        self.store.close()

    async def aclose(self) -> None:
        """Close the store cleanly; stop workers first."""
        await self.store.aclose()

    def __enter__(self) -> WebhookInbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> WebhookInbox:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- receiving ---------------------------------------------------------------------

    async def add(self, body: bytes, headers: Mapping[str, str], event: Event) -> int | None:
        """Store a verified delivery whose body parsed as ``event``; committed on return.

        Returns the new event id, or ``None`` for a duplicate (same
        ``webhook-id``, or the same body when there is no id). Only the body,
        ``webhook-id`` and ``webhook-timestamp`` are kept from the request, with
        the event's ordering key (``order_by``).
        """
        webhook_id = header_value(headers, ID_HEADERS)
        delivery = Delivery(
            dedupe_key=idempotency_key(webhook_id, body),
            webhook_id=webhook_id,
            webhook_timestamp=_timestamp(headers),
            event_type=event.event,
            body=bytes(body),
            received_at=self._now(),
            ordering_key=ordering_key(self.order_by, event),
        )
        new_id = await self.store.insert(delivery)
        if new_id is not None:
            _metrics.count_inbox("stored", event.event)
        return new_id

    # -- the worker ----------------------------------------------------------------------

    async def dispatch_due(
        self,
        router: WebhookRouter,
        *,
        limit: int = 1,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff: Backoff | None = None,
        lease: float = DEFAULT_LEASE,
        confirm: EventConfirmer | None = None,
    ) -> int:
        """Claim up to ``limit`` due events, dispatch them concurrently; how many were claimed.

        One pass of :meth:`run`, for tests, cron jobs and draining.
        """
        policy = make_policy(max_attempts, backoff, lease, limit)
        worker = InboxWorker(self.store, self._now, router, policy, confirm=confirm)
        return await worker.dispatch_due()

    async def run(
        self,
        router: WebhookRouter,
        *,
        poll_interval: float = 1.0,
        concurrency: int = 1,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff: Backoff | None = None,
        lease: float = DEFAULT_LEASE,
        confirm: EventConfirmer | None = None,
    ) -> None:
        """Dispatch due events until cancelled, looking again every ``poll_interval`` seconds.

        Up to ``concurrency`` events are dispatched at once; as soon as one
        finishes, the worker claims another (a slow handler holds up only its
        own slot). While a handler
        runs, its lease is renewed every ``lease / 3`` seconds; if the lease is
        lost (another worker took the event over, or the store could not be
        reached before the lease ran out) the handler is cancelled and the
        attempt counted as failed. A worker is also woken early by new
        deliveries where the store can tell (same process for SQLite,
        ``LISTEN/NOTIFY`` for PostgreSQL). An unavailable database is logged
        and retried.

        With ``confirm`` (an :class:`EventConfirmer`), each event is confirmed
        against the API before it is dispatched: a contradicted one is marked
        ``done`` without dispatch; a confirmation that cannot reach the API is a
        failed attempt, retried like a handler's failure.
        """
        if not poll_interval > 0:
            raise ConfigurationError("poll_interval must be positive")
        policy = make_policy(max_attempts, backoff, lease, concurrency)
        worker = InboxWorker(self.store, self._now, router, policy, confirm=confirm)
        with self.reporting_metrics():
            await worker.run(poll_interval)

    @asynccontextmanager
    async def worker(
        self,
        router: WebhookRouter,
        *,
        poll_interval: float = 1.0,
        concurrency: int = 1,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff: Backoff | None = None,
        lease: float = DEFAULT_LEASE,
        confirm: EventConfirmer | None = None,
    ) -> AsyncIterator[None]:
        """Run :meth:`run` in a task group for the duration of the ``async with`` block."""
        run = partial(
            self.run, router, poll_interval=poll_interval, concurrency=concurrency,
            max_attempts=max_attempts, backoff=backoff, lease=lease, confirm=confirm,
        )
        make_policy(max_attempts, backoff, lease, concurrency)  # fail here, not in the task
        async with anyio.create_task_group() as group:
            group.start_soon(run)
            try:
                yield
            finally:
                group.cancel_scope.cancel()

    # -- inspection and maintenance ------------------------------------------------------

    async def counts(self) -> dict[str, int]:
        """``{"pending": n, "done": n, "dead": n}``."""
        return await self.store.counts()

    @property
    def label(self) -> str:
        """How metrics name this inbox (``avaturn.inbox``): its file, or its DSN
        without the password."""
        label = getattr(self.store, "label", None)
        return label if isinstance(label, str) else type(self.store).__name__

    async def stats(self) -> InboxStats:
        """Deliveries by status and the age of the oldest pending one, in one query."""
        stats: Callable[..., Any] | None = getattr(self.store, "stats", None)
        if stats is None:  # a store of your own may have counts() only
            return InboxStats(counts=await self.store.counts(), oldest_pending_age=None)
        found: InboxStats = await stats(now=self._now())
        return found

    def reporting_metrics(self) -> AbstractContextManager[None]:
        """Report this inbox's gauges (``avaturn.inbox.events`` by status,
        ``avaturn.inbox.oldest_pending.age``) while the block runs: read with one query
        on each metrics collection, never otherwise. A running worker reports them."""
        return _metrics.watching("inbox", self.label, self.stats)

    async def ping(self) -> None:
        """The readiness check: one trivial query; raises when the database fails.
        Bound it with ``anyio.fail_after`` (``WebhookPipeline.readiness`` does)."""
        ping: Callable[[], Awaitable[object]] | None = getattr(self.store, "ping", None)
        await (ping() if ping is not None else self.store.counts())

    async def replay(self, ids: Iterable[int] = (), *, all_dead: bool = False) -> tuple[int, ...]:
        """Move dead events (``ids``, or every one with ``all_dead=True``) back to pending.

        Their attempts restart at 0 and they are due at once. Returns the ids
        actually replayed: ids that are unknown or not dead are skipped.
        """
        chosen = tuple(ids)
        if all_dead == bool(chosen):
            raise ConfigurationError("replay() needs ids or all_dead=True (not both)")
        replayed = await self.store.replay(None if all_dead else chosen, now=self._now())
        return tuple(replayed)

    async def purge(self, *, older_than: timedelta) -> int:
        """Delete ``done`` events finished more than ``older_than`` ago; how many went.

        Pending and dead events are never purged. A purged event's dedupe key is
        forgotten too, so keep ``older_than`` above the sender's retry window.
        """
        if older_than < timedelta(0):
            raise ConfigurationError("older_than must not be negative")
        cutoff = self._now() - older_than.total_seconds()
        return await self.store.purge(finished_before=cutoff)

    async def list(
        self, *, status: InboxStatus | str | None = None, limit: int = 100
    ) -> tuple[InboxRecord, ...]:
        """Stored events, newest first, optionally only one ``status``; never their bodies."""
        try:
            wanted = InboxStatus(status) if status is not None else None
        except ValueError:
            raise ConfigurationError(f"unknown inbox status {status!r}") from None
        if limit < 1:
            raise ConfigurationError("limit must be at least 1")
        return tuple(await self.store.records(status=wanted, limit=limit))
