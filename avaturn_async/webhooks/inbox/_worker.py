"""The inbox's worker: claim due events, dispatch them under a renewed lease, record outcomes.

:class:`InboxWorker` works for one :class:`~avaturn_async.webhooks.WebhookInbox`
through its :class:`~avaturn_async.webhooks.InboxStore` only, so it runs the
same over SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

import anyio

from ... import _metrics, _traces
from ..._errors import WebhookParseError
from ..._events import Event, parse_event
from .._confirm import EventConfirmer
from .._router import WebhookRouter
from ._policy import WorkerPolicy, describe_error, dispatch_error
from ._store import Claimed, InboxStore

__all__ = ["InboxWorker"]

logger = logging.getLogger("avaturn_async.webhooks")


class InboxWorker:
    """Dispatches an inbox's due events to ``router`` with ``policy`` (one worker)."""

    def __init__(
        self,
        store: InboxStore,
        now: Callable[[], float],
        router: WebhookRouter,
        policy: WorkerPolicy,
        *,
        confirm: EventConfirmer | None = None,
    ) -> None:
        self.store = store
        self._now = now
        self._router = router
        self._policy = policy
        self._confirm = confirm
        self._running = 0
        self._freed = anyio.Event()
        # An ordered event that finished may have let the next one of its key become
        # due: the loop claims again at once instead of waiting for new work.
        self._key_freed = False
        self._waiting: anyio.CancelScope | None = None

    async def dispatch_due(self) -> int:
        """Claim up to ``policy.batch`` due events, dispatch them concurrently; how many."""
        claims = await self._claim(self._policy.batch)
        if len(claims) == 1:
            await self._dispatch_one(claims[0])
        elif claims:
            async with anyio.create_task_group() as group:
                for claimed in claims:
                    group.start_soon(self._dispatch_one, claimed)
        return len(claims)

    async def run(self, poll_interval: float) -> None:
        """Keep up to ``policy.batch`` events in flight until cancelled: claim for the free
        slots; when fewer were due, wait for new work, ``poll_interval`` or (``_slot``) the
        end of an ordered event, which may have made the next one of its key due."""
        async with anyio.create_task_group() as group:
            while True:
                free = self._policy.batch - self._running
                if free == 0:
                    await self._freed.wait()
                    self._freed = anyio.Event()
                    continue
                self._key_freed = False
                try:
                    claims = await self._claim(free)
                except Exception:
                    logger.exception("webhook inbox worker: database unavailable, retrying")
                    claims = []
                for claimed in claims:
                    self._running += 1
                    group.start_soon(self._slot, claimed)
                if len(claims) < free:
                    await self._wait_for_work(poll_interval)

    async def _wait_for_work(self, poll_interval: float) -> None:
        if self._key_freed:  # finished while the claim ran: it may have missed the next
            return
        with anyio.CancelScope() as self._waiting:
            await self.store.wait_for_work(poll_interval)
        self._waiting = None

    async def _slot(self, claimed: Claimed) -> None:
        try:
            await self._dispatch_one(claimed)
        finally:
            self._running -= 1
            self._freed.set()
            if claimed.ordering_key is not None:
                self._key_freed = True
                if self._waiting is not None:
                    self._waiting.cancel()

    async def _claim(self, limit: int) -> list[Claimed]:
        # Shielded: a claim that committed while the worker was being cancelled
        # must reach _dispatch_one, which hands it back, instead of waiting out its lease.
        policy = self._policy
        with anyio.CancelScope(shield=True):
            claims = await self.store.claim(
                now=self._now(), lease=policy.lease, limit=limit,
                max_attempts=policy.max_attempts, token=secrets.token_hex(8),
            )
        return claims

    async def _dispatch_one(self, claimed: Claimed) -> None:
        attributes: dict[str, str | int] = {
            "avaturn.inbox.event_id": claimed.id,
            "avaturn.webhook.event": claimed.event_type,
            "avaturn.inbox.attempt": claimed.attempts,
        }
        try:
            with _traces.span("avaturn inbox dispatch", attributes, consumer=True):
                await self._handle(claimed)
        except Exception:
            # The outcome could not be recorded (database locked, failing or
            # unreachable): the attempt stays counted and the lease brings it back.
            logger.exception("webhook inbox: could not record event %d", claimed.id)
        except BaseException:
            # Cancelled (shutdown): hand the claim back so the event is due at
            # once. A no-op when the outcome was already recorded.
            await self._give_back(claimed)
            raise

    async def _handle(self, claimed: Claimed) -> None:
        """Parse, dispatch and record the outcome of one claimed event."""
        try:
            event = parse_event(claimed.body, max_body_size=max(len(claimed.body), 1))
        except WebhookParseError as exc:
            # Permanent: the same bytes never parse, so retrying only delays the dead letter.
            await self._record_failure(claimed, describe_error(exc), None)
            return
        policy = self._policy
        error = await self._attempt(event, claimed, policy.lease)
        if error is None:
            if await self.store.complete(claimed, now=self._now()):
                _metrics.count_inbox("dispatched", claimed.event_type)
            else:
                logger.warning("webhook inbox event %d: lease lost before done", claimed.id)
            return
        retry_at = None
        if claimed.attempts < policy.max_attempts:
            retry_at = self._now() + max(0.0, policy.backoff(claimed.attempts))
        await self._record_failure(claimed, error, retry_at)

    async def _attempt(self, event: Event, claimed: Claimed, lease: float) -> str | None:
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
                error = await self._confirm_and_dispatch(event)
            except Exception as exc:  # the router catches handler errors; this is its own
                logger.exception("webhook dispatch failed for %s event", event.event)
                error = describe_error(exc)
            group.cancel_scope.cancel()
        if lost:
            return f"LeaseLost: the {lease:g} s lease could not be renewed; dispatch cancelled"
        return error

    async def _confirm_and_dispatch(self, event: Event) -> str | None:
        """Dispatch unless ``confirm`` contradicts the event (then done, undispatched); a
        confirmation that cannot reach the API raises: a failed attempt, retried."""
        if self._confirm is not None and not (await self._confirm.confirm(event)).confirmed:
            return None
        return dispatch_error(await self._router.dispatch(event))

    async def _keep_lease(self, claimed: Claimed, lease: float) -> bool:
        """Renew every ``lease / 3`` seconds; return ``False`` once the lease is lost."""
        expires = anyio.current_time() + lease
        while True:
            await anyio.sleep(lease / 3)
            started = anyio.current_time()
            try:
                renewed = await self.store.renew(claimed, now=self._now(), lease=lease)
            except Exception:
                logger.exception("webhook inbox: could not renew the lease of %d", claimed.id)
            else:
                if not renewed:
                    return False
                expires = started + lease
            if anyio.current_time() >= expires:
                return False

    async def _record_failure(self, claimed: Claimed, error: str, retry_at: float | None) -> None:
        now = self._now()
        recorded = await self.store.fail(claimed, now=now, error=error, retry_at=retry_at)
        if recorded:
            step = "dead_lettered" if retry_at is None else "retried"
            _metrics.count_inbox(step, claimed.event_type)
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
                await self.store.release(claimed, now=self._now())
            except Exception:
                logger.exception("webhook inbox: could not release event %d", claimed.id)
