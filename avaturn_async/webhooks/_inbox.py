"""A durable webhook inbox: acknowledge at once, dispatch later, lose nothing.

::

    inbox = WebhookInbox("webhooks.db")
    app.router.add_post("/webhooks/avaturn", make_handler(verifier, router, inbox=inbox))

    async with inbox.worker(router):   # in the same process, or another one
        ...                            # serve until shutdown

With an inbox, a receiver verifies and parses a delivery, commits it to the
inbox (one SQLite file) and answers 202; nothing is dispatched on the request.
A worker claims due events with a lease, re-parses them from the stored body
and calls ``router.dispatch(event)``:

* success: the event is ``done``;
* a handler raised: the attempt is recorded (``last_error`` holds the exception
  type and message, URL query strings redacted), and the event is due again
  after ``backoff(attempts)`` seconds, or ``dead`` after ``max_attempts``;
* the worker died or overran the lease: the event becomes due again when the
  lease ends (and goes ``dead`` if that was its last attempt);
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
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from .._errors import ConfigurationError, WebhookParseError
from .._events import Event, parse_event
from .._public import public
from ._dedupe import idempotency_key
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
from ._inbox_store import Claimed, InboxRecord, InboxStatus, InboxStore, Synchronous
from ._router import WebhookRouter
from ._verifier import header_value

__all__ = ["Backoff", "WebhookInbox", "exponential_backoff"]

logger = logging.getLogger("avaturn_async.webhooks")

T = TypeVar("T")
_ID_NAMES = ("webhook-id", "svix-id")
_TIMESTAMP_NAMES = ("webhook-timestamp", "svix-timestamp")


def _timestamp(headers: Mapping[str, str]) -> int | None:
    value = header_value(headers, _TIMESTAMP_NAMES)
    if value is None or not (value.isascii() and value.isdigit() and len(value) <= 15):
        return None
    return int(value)


class WebhookInbox:
    """Webhook deliveries stored in one SQLite file (WAL) until a worker has handled them.

    ``synchronous="full"`` (the default) syncs every stored delivery to disk
    before the receiver answers 2xx, so not even a power cut loses an
    acknowledged webhook; ``"normal"`` survives process crashes only (see
    ``_inbox_store`` for the reasoning). ``create=False`` opens an existing
    inbox only (raising :class:`InboxError` otherwise). ``clock`` (wall-clock
    seconds since the epoch, persisted) is injectable for tests.

    Every method is safe to call from any task or thread; database calls run
    in worker threads, one at a time per inbox.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "full",
        create: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._clock = clock
        self._store = InboxStore(path, synchronous=synchronous, create=create)

    def __repr__(self) -> str:
        return f"WebhookInbox({os.fspath(self.path)!r})"

    def close(self) -> None:
        """Close the database; stop workers first."""
        self._store.close()

    def __enter__(self) -> WebhookInbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        # Not abandoned on cancellation: a commit that has started is waited for.
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))

    # -- receiving ---------------------------------------------------------------------

    async def add(self, body: bytes, headers: Mapping[str, str], event: Event) -> int | None:
        """Store a verified delivery whose body parsed as ``event``; committed on return.

        Returns the new event id, or ``None`` for a duplicate (same
        ``webhook-id``, or the same body when there is no id). Only the body,
        ``webhook-id`` and ``webhook-timestamp`` are kept from the request.
        """
        webhook_id = header_value(headers, _ID_NAMES)
        return await self._call(
            self._store.insert,
            dedupe_key=idempotency_key(webhook_id, body),
            webhook_id=webhook_id,
            webhook_timestamp=_timestamp(headers),
            event_type=event.event,
            body=bytes(body),
            now=self._clock(),
        )

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

        Up to ``concurrency`` events are dispatched at once. A dispatch running
        longer than ``lease`` seconds is cancelled and counted as a failure,
        because another worker may claim the event after that. An unavailable
        database (locked, I/O error) is logged and retried.
        """
        if not poll_interval > 0:
            raise ConfigurationError("poll_interval must be positive")
        policy = make_policy(max_attempts, backoff, lease, concurrency)
        while True:
            try:
                claimed = await self._dispatch_batch(router, policy)
            except sqlite3.OperationalError:
                logger.exception("webhook inbox worker: database unavailable, retrying")
                claimed = 0
            if claimed < policy.batch:  # a full batch suggests more are due: no pause
                await anyio.sleep(poll_interval)

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
            claims = await self._call(
                self._store.claim,
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
        except sqlite3.OperationalError:
            # The outcome could not be recorded (database locked or failing): the
            # attempt stays counted and the lease brings the event back.
            logger.exception("webhook inbox: could not record event %d", claimed.id)
        except BaseException:
            # Cancelled (shutdown) or a bug: hand the claim back so the event is due
            # at once. A no-op when the outcome was already recorded.
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
        error = await _attempt(router, event, policy.lease)
        if error is None:
            if not await self._call(self._store.complete, claimed, now=self._clock()):
                logger.warning("webhook inbox event %d: lease lost before done", claimed.id)
            return
        retry_at = None
        if claimed.attempts < policy.max_attempts:
            retry_at = self._clock() + max(0.0, policy.backoff(claimed.attempts))
        await self._record_failure(claimed, error, retry_at)

    async def _record_failure(self, claimed: Claimed, error: str, retry_at: float | None) -> None:
        now = self._clock()
        recorded = await self._call(
            self._store.fail, claimed, now=now, error=error, retry_at=retry_at
        )
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
                await self._call(self._store.release, claimed, now=self._clock())
            except Exception:
                logger.exception("webhook inbox: could not release event %d", claimed.id)

    # -- inspection and maintenance ------------------------------------------------------

    async def counts(self) -> dict[str, int]:
        """``{"pending": n, "done": n, "dead": n}``."""
        return await self._call(self._store.counts)

    async def replay(self, ids: Iterable[int] = (), *, all_dead: bool = False) -> tuple[int, ...]:
        """Move dead events (``ids``, or every one with ``all_dead=True``) back to pending.

        Their attempts restart at 0 and they are due at once. Returns the ids
        actually replayed: ids that are unknown or not dead are skipped.
        """
        chosen = tuple(ids)
        if all_dead == bool(chosen):
            raise ConfigurationError("replay() needs ids or all_dead=True (not both)")
        replayed = await self._call(
            self._store.replay, None if all_dead else chosen, now=self._clock()
        )
        return tuple(replayed)

    async def purge(self, *, older_than: timedelta) -> int:
        """Delete ``done`` events finished more than ``older_than`` ago; how many went.

        Pending and dead events are never purged. A purged event's dedupe key is
        forgotten too, so keep ``older_than`` above the sender's retry window.
        """
        if older_than < timedelta(0):
            raise ConfigurationError("older_than must not be negative")
        cutoff = self._clock() - older_than.total_seconds()
        return await self._call(self._store.purge, finished_before=cutoff)

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
        return tuple(await self._call(self._store.records, status=wanted, limit=limit))


async def _attempt(router: WebhookRouter, event: Event, lease: float) -> str | None:
    """Dispatch once: ``None`` on success, else the error to record."""
    with anyio.move_on_after(lease):
        try:
            result = await router.dispatch(event)
        except Exception as exc:  # the router catches handler errors; this is its own
            logger.exception("webhook dispatch failed for %s event", event.event)
            return describe_error(exc)
        return dispatch_error(result)
    return f"TimeoutError: dispatch did not finish within the {lease:g} s lease"


public("avaturn_async.webhooks", WebhookInbox)
