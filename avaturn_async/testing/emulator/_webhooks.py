"""Webhook delivery for the emulator: Standard Webhooks signing (or none, as Avaturn
documents its webhooks), retries, and the drop / delay / duplicate / reorder faults
that receivers must tolerate.

Like a real sender, the emulator never follows a redirect: a 3xx answer is a failed
delivery (retried, then given up), which is how a receiver mounted one slash away
from its URL loses every webhook in production.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiohttp
import anyio

from ..._backoff import ExponentialBackoff
from ...webhooks._signing import sign
from ._fault_plan import WebhookDecision

__all__ = ["WebhookDelivery", "WebhookDispatcher"]

Spawn = Callable[[Callable[[], Awaitable[None]]], None]
"""Runs a job in the emulator's task group and counts it as pending work."""

_ATTEMPT_TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass(frozen=True)
class WebhookDelivery:
    """One delivery attempt of one event.

    ``status`` is the receiver's HTTP status, or None when the attempt failed below
    HTTP; ``error`` then says why. Retries and duplicates keep ``msg_id``; ``attempt``
    counts from 1 within each copy, and ``copy`` is 2 for the duplicate sent when a
    fault plan duplicates the event.
    """

    event: Mapping[str, Any]
    msg_id: str
    # The receiver URL may carry a shared token: keep it out of reprs.
    url: str = field(repr=False)
    attempt: int
    copy: int
    timestamp: int
    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class _Message:
    event: Mapping[str, Any]
    msg_id: str
    body: bytes
    url: str
    fault: WebhookDecision


class WebhookDispatcher:
    """Signs (unless ``key`` is ``None``) and delivers events; every attempt is appended
    to ``deliveries``, and every event a fault dropped to ``dropped``."""

    def __init__(
        self,
        *,
        key: bytes | None,
        spawn: Spawn,
        max_attempts: int,
        retry_delay: float,
        reorder_batch_size: int,
        reorder_window: float,
    ) -> None:
        self._key = key
        self._spawn = spawn
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.reorder_batch_size = reorder_batch_size
        self.reorder_window = reorder_window
        self.session: aiohttp.ClientSession | None = None
        self.deliveries: list[WebhookDelivery] = []
        self.dropped: list[Mapping[str, Any]] = []
        self._held: list[_Message] = []
        self._timer: anyio.CancelScope | None = None

    def __repr__(self) -> str:
        return f"<WebhookDispatcher deliveries={len(self.deliveries)}>"

    def emit(
        self, event: Mapping[str, Any], url: str, fault: WebhookDecision | None = None
    ) -> None:
        """Deliver ``event`` to ``url``, unless ``fault`` drops it; ``fault`` may also
        duplicate or delay it."""
        fault = fault or WebhookDecision()
        if fault.drop:
            self.dropped.append(event)
            return
        body = json.dumps(event, separators=(",", ":")).encode()
        message = _Message(event, "msg_" + secrets.token_hex(12), body, url, fault)
        if fault.reorder:
            self._hold(message)
        else:
            self._spawn(partial(self._deliver_all, [message]))

    # Reordering: events are held in a batch that is flushed when it holds
    # ``reorder_batch_size`` events or ``reorder_window`` seconds after its first
    # event, whichever comes first; a flushed batch is delivered newest first, one
    # event after the other.

    def _hold(self, message: _Message) -> None:
        self._held.append(message)
        if len(self._held) >= self.reorder_batch_size:
            self._flush()
        elif len(self._held) == 1:
            self._timer = anyio.CancelScope()
            self._spawn(partial(self._flush_later, self._timer))

    async def _flush_later(self, scope: anyio.CancelScope) -> None:
        with scope:
            await anyio.sleep(self.reorder_window)
            self._flush()

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._held = self._held[::-1], []
        if batch:
            self._spawn(partial(self._deliver_all, batch))

    async def _deliver_all(self, messages: list[_Message]) -> None:
        for message in messages:
            if message.fault.delay > 0:
                await anyio.sleep(message.fault.delay)
            for copy in range(1, message.fault.copies + 1):
                await self._deliver(message, copy)

    async def _deliver(self, message: _Message, copy: int) -> None:
        for attempt in range(1, self.max_attempts + 1):
            delivery = await self._attempt(message, copy, attempt)
            self.deliveries.append(delivery)
            if delivery.ok:
                return
            if attempt < self.max_attempts:
                await anyio.sleep(ExponentialBackoff(initial=self.retry_delay).delay(attempt))

    async def _attempt(self, message: _Message, copy: int, attempt: int) -> WebhookDelivery:
        timestamp = int(time.time())
        headers = {"content-type": "application/json", "user-agent": "avaturn-emulator"}
        if self._key is not None:
            # Each attempt is signed afresh: receivers reject stale timestamps.
            headers["webhook-id"] = message.msg_id
            headers["webhook-timestamp"] = str(timestamp)
            headers["webhook-signature"] = sign(self._key, message.msg_id, timestamp, message.body)
        status: int | None = None
        error: str | None = None
        try:
            if self.session is None:
                raise RuntimeError("the emulator is not running")
            async with self.session.post(
                message.url,
                data=message.body,
                headers=headers,
                timeout=_ATTEMPT_TIMEOUT,
                allow_redirects=False,  # a 3xx is a failed delivery, as for real senders
            ) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, RuntimeError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        return WebhookDelivery(
            message.event, message.msg_id, message.url, attempt, copy, timestamp, status, error
        )
