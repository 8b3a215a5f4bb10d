"""A durable webhook inbox: acknowledge at once, dispatch later, lose nothing.

::

    inbox = WebhookInbox("webhooks.db")
    app.router.add_post("/webhooks/avaturn", make_handler(verifier, router, inbox=inbox))

    async with inbox.worker(router):   # in the same process, or another one
        ...                            # serve until shutdown

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

Dispatch is therefore at least once: a handler may see an event again after a
crash between its success and the commit of ``done``. Duplicated deliveries
(same ``webhook-id``, or same body when there is no id) are stored once.

``dead`` events stay until :meth:`WebhookInbox.replay` moves them back to
``pending``; ``done`` ones until :meth:`WebhookInbox.purge`. Keep done events
longer than the sender's retry window: a purged event's redelivery is new.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from types import TracebackType

import anyio

from .._errors import ConfigurationError, WebhookParseError
from ._dedupe import idempotency_key
from ._events import Event, parse_event
from ._inbox_policy import (
    DEFAULT_LEASE,
    DEFAULT_MAX_ATTEMPTS,
    Backoff,
    WorkerPolicy,
    describe_error,
    dispatch_error,
    exponential_backoff,
    make_policy,
)
from ._inbox_sqlite import SQLiteInboxStore, Synchronous
from ._inbox_store import Claimed, Delivery, InboxRecord, InboxStatus, InboxStore
from ._router import WebhookRouter
from ._verifier import header_value

__all__ = ["Backoff", "WebhookInbox", "exponential_backoff"]

logger = logging.getLogger("avaturn_async.webhooks")

_ID_NAMES = ("webhook-id", "svix-id")
_TIMESTAMP_NAMES = ("webhook-timestamp", "svix-timestamp")


def _timestamp(headers: Mapping[str, str]) -> int | None:
    value = header_value(headers, _TIMESTAMP_NAMES)
    if value is None or not (value.isascii() and value.isdigit() and len(value) <= 15):
        return None
    return int(value)


class WebhookInbox:
    """Webhook deliveries kept in an :class:`InboxStore` until a worker has handled them.

    ``WebhookInbox(path)`` stores them in one SQLite file (WAL).
    ``synchronous="full"`` (the default) syncs every stored delivery to disk
    before the receiver answers 2xx, so not even a power cut loses an
    acknowledged webhook; ``"normal"`` survives process crashes only (see
    ``_inbox_sqlite`` for the reasoning). ``create=False`` opens an existing
    inbox only (raising :class:`InboxError` otherwise).
    ``WebhookInbox(store=...)`` uses another store (e.g. PostgreSQL).
    ``clock`` (wall-clock seconds since the epoch, persisted) is injectable
    for tests.

    Every method is safe to call from any task.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        store: InboxStore | None = None,
        synchronous: Synchronous = "full",
        create: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (path is None) == (store is None):
            raise ConfigurationError("WebhookInbox needs a path or a store (not both)")
        self.path = path
        self._clock = clock
        self.store: InboxStore = (
            store
            if store is not None
            else SQLiteInboxStore(path, synchronous=synchronous, create=create)  # type: ignore[arg-type]
        )

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

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- receiving ---------------------------------------------------------------------

    async def add(self, body: bytes, headers: Mapping[str, str], event: Event) -> int | None:
        """Store a verified delivery whose body parsed as ``event``; committed on return.

        Returns the new event id, or ``None`` for a duplicate (same
        ``webhook-id``, or the same body when there is no id). Only the body,
        ``webhook-id`` and ``webhook-timestamp`` are kept from the request.
        """
        webhook_id = header_value(headers, _ID_NAMES)
        delivery = Delivery(
            dedupe_key=idempotency_key(webhook_id, body),
            webhook_id=webhook_id,
            webhook_timestamp=_timestamp(headers),
            event_type=event.event,
            body=bytes(body),
            received_at=self._clock(),
        )
        return await self.store.insert(delivery)

    # -- the worker ----------------------------------------------------------------------

    async def dispatch_due(
        self,
        router: WebhookRouter,
        *,
        limit: int = 1,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff: Backoff | None = None,
        lease: float = DEFAULT_LEASE,
    ) -> int:
        """Claim up to ``limit`` due events, dispatch them concurrently; how many were claimed.

        One pass of :meth:`run`, for tests, cron jobs and draining.
        """
        return await self._dispatch_batch(router, make_policy(max_attempts, backoff, lease, limit))

    async def run(
        self,
        router: WebhookRouter,
        *,
        poll_interval: float = 1.0,
        concurrency: int = 1,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff: Backoff | None = None,
        lease: float = DEFAULT_LEASE,
    ) -> None:
        """Dispatch due events until cancelled, looking again every ``poll_interval`` seconds.

        Up to ``concurrency`` events are dispatched at once. While a handler
        runs, its lease is renewed every ``lease / 3`` seconds; if the lease is
        lost (another worker took the event over, or the store could not be
        reached before the lease ran out) the handler is cancelled and the
        attempt counted as failed. A worker is also woken early by new
        deliveries where the store can tell (same process for SQLite,
        ``LISTEN/NOTIFY`` for PostgreSQL). An unavailable database is logged
        and retried.
        """
        if not poll_interval > 0:
            raise ConfigurationError("poll_interval must be positive")
        policy = make_policy(max_attempts, backoff, lease, concurrency)
        while True:
            try:
                claimed = await self._dispatch_batch(router, policy)
            except Exception:
                logger.exception("webhook inbox worker: database unavailable, retrying")
                claimed = 0
            if claimed < policy.batch:  # a full batch suggests more are due: no pause
                await self.store.wait_for_work(poll_interval)

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
    ) -> AsyncIterator[None]:
        """Run :meth:`run` in a task group for the duration of the ``async with`` block."""
        run = partial(
            self.run,
            router,
            poll_interval=poll_interval,
            concurrency=concurrency,
            max_attempts=max_attempts,
            backoff=backoff,
            lease=lease,
        )
        make_policy(max_attempts, backoff, lease, concurrency)  # fail here, not in the task
        async with anyio.create_task_group() as group:
            group.start_soon(run)
            try:
                yield
            finally:
                group.cancel_scope.cancel()

    async def _dispatch_batch(self, router: WebhookRouter, policy: WorkerPolicy) -> int:
        # Shielded: a claim that committed while the worker was being cancelled
        # must reach _dispatch_one, which hands it back, instead of waiting out its lease.
        with anyio.CancelScope(shield=True):
            claims = await self.store.claim(
                now=self._clock(),
                lease=policy.lease,
                limit=policy.batch,
                max_attempts=policy.max_attempts,
                token=secrets.token_hex(8),
            )
        if len(claims) == 1:
            await self._dispatch_one(router, claims[0], policy)
        elif claims:
            async with anyio.create_task_group() as group:
                for claimed in claims:
                    group.start_soon(self._dispatch_one, router, claimed, policy)
        return len(claims)

    async def _dispatch_one(
        self, router: WebhookRouter, claimed: Claimed, policy: WorkerPolicy
    ) -> None:
        try:
            await self._handle(router, claimed, policy)
        except Exception:
            # The outcome could not be recorded (database locked, failing or
            # unreachable): the attempt stays counted and the lease brings it back.
            logger.exception("webhook inbox: could not record event %d", claimed.id)
        except BaseException:
            # Cancelled (shutdown): hand the claim back so the event is due at
            # once. A no-op when the outcome was already recorded.
            await self._give_back(claimed)
            raise

    async def _handle(self, router: WebhookRouter, claimed: Claimed, policy: WorkerPolicy) -> None:
        """Parse, dispatch and record the outcome of one claimed event."""
        try:
            event = parse_event(claimed.body, max_body_size=max(len(claimed.body), 1))
        except WebhookParseError as exc:
            # Permanent: the same bytes never parse, so retrying only delays the dead letter.
            await self._record_failure(claimed, describe_error(exc), None)
            return
        error = await self._attempt(router, event, claimed, policy.lease)
        if error is None:
            if not await self.store.complete(claimed, now=self._clock()):
                logger.warning("webhook inbox event %d: lease lost before done", claimed.id)
            return
        retry_at = None
        if claimed.attempts < policy.max_attempts:
            retry_at = self._clock() + max(0.0, policy.backoff(claimed.attempts))
        await self._record_failure(claimed, error, retry_at)

    async def _attempt(
        self, router: WebhookRouter, event: Event, claimed: Claimed, lease: float
    ) -> str | None:
        """Dispatch once under a renewed lease: ``None`` on success, else the error to record."""
        error: str | None = None
        lost = False
        async with anyio.create_task_group() as group:

            async def heartbeat() -> None:
                nonlocal lost
                lost = not await self._keep_lease(claimed, lease)
                group.cancel_scope.cancel()  # the lease is lost: stop the handler

            group.start_soon(heartbeat)
            try:
                error = dispatch_error(await router.dispatch(event))
            except Exception as exc:  # the router catches handler errors; this is its own
                logger.exception("webhook dispatch failed for %s event", event.event)
                error = describe_error(exc)
            group.cancel_scope.cancel()
        if lost:
            return f"LeaseLost: the {lease:g} s lease could not be renewed; dispatch cancelled"
        return error

    async def _keep_lease(self, claimed: Claimed, lease: float) -> bool:
        """Renew every ``lease / 3`` seconds; return ``False`` once the lease is lost."""
        expires = anyio.current_time() + lease
        while True:
            await anyio.sleep(lease / 3)
            started = anyio.current_time()
            try:
                renewed = await self.store.renew(claimed, now=self._clock(), lease=lease)
            except Exception:
                logger.exception("webhook inbox: could not renew the lease of %d", claimed.id)
            else:
                if not renewed:
                    return False
                expires = started + lease
            if anyio.current_time() >= expires:
                return False

    async def _record_failure(self, claimed: Claimed, error: str, retry_at: float | None) -> None:
        now = self._clock()
        recorded = await self.store.fail(claimed, now=now, error=error, retry_at=retry_at)
        outcome = "dead-lettered" if retry_at is None else f"retry in {retry_at - now:.0f}s"
        logger.warning(
            "webhook inbox event %d (%s) failed attempt %d: %s%s",
            claimed.id,
            claimed.event_type,
            claimed.attempts,
            outcome,
            "" if recorded else " (lease lost, not recorded)",
        )

    async def _give_back(self, claimed: Claimed) -> None:
        """Release an unfinished claim (shielded: this runs while cancelled), uncounted."""
        with anyio.CancelScope(shield=True):
            try:
                await self.store.release(claimed, now=self._clock())
            except Exception:
                logger.exception("webhook inbox: could not release event %d", claimed.id)

    # -- inspection and maintenance ------------------------------------------------------

    async def counts(self) -> dict[str, int]:
        """``{"pending": n, "done": n, "dead": n}``."""
        return await self.store.counts()

    async def replay(self, ids: Iterable[int] = (), *, all_dead: bool = False) -> tuple[int, ...]:
        """Move dead events (``ids``, or every one with ``all_dead=True``) back to pending.

        Their attempts restart at 0 and they are due at once. Returns the ids
        actually replayed: ids that are unknown or not dead are skipped.
        """
        chosen = tuple(ids)
        if all_dead == bool(chosen):
            raise ConfigurationError("replay() needs ids or all_dead=True (not both)")
        replayed = await self.store.replay(None if all_dead else chosen, now=self._clock())
        return tuple(replayed)

    async def purge(self, *, older_than: timedelta) -> int:
        """Delete ``done`` events finished more than ``older_than`` ago; how many went.

        Pending and dead events are never purged. A purged event's dedupe key is
        forgotten too, so keep ``older_than`` above the sender's retry window.
        """
        if older_than < timedelta(0):
            raise ConfigurationError("older_than must not be negative")
        cutoff = self._clock() - older_than.total_seconds()
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
