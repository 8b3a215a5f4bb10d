"""The storage seam of the webhook inbox: :class:`InboxStore` and the values it trades.

:class:`~avaturn_async.webhooks.WebhookInbox` (the receiver's ``add`` and the
worker) depends only on this protocol. Two implementations ship:
:class:`~avaturn_async.webhooks.SQLiteInboxStore` (one file, the default) and
``avaturn_async.postgres.PostgresInboxStore`` (shared by many processes and
machines). Both pass the same contract tests (``tests/contract/``).

Times are wall-clock seconds since the epoch, chosen by the caller (``now``),
so that a test can drive leases and backoffs with a fake clock. Every write
that finishes or extends a claim is *fenced* by the claim's token: it changes
nothing, and returns ``False``, once the claim was lost to another worker.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import attrs

from ..._clock import utc
from ..._errors import WebhookError

__all__ = [
    "LEASE_LOST",
    "Claimed",
    "Delivery",
    "InboxError",
    "InboxRecord",
    "InboxStatus",
    "InboxStore",
    "UnstorableDeliveryError",
    "utc",
]

LEASE_LOST = "LeaseExpired: the worker stopped or overran its lease on the last attempt"
"""``last_error`` of an event dead-lettered because its last attempt's lease ran out."""


class InboxError(WebhookError):
    """The inbox database is missing, unreadable, or not a webhook inbox."""


class UnstorableDeliveryError(WebhookError):
    """A verified delivery holds a value the inbox's database cannot store (PostgreSQL
    refuses a NUL character in text). Nothing of it was stored; the receiver answers
    422 and every other delivery is stored as usual."""


class InboxStatus(str, enum.Enum):
    """Where a stored event stands. A claimed event stays ``pending`` until finished."""

    PENDING = "pending"
    DONE = "done"
    DEAD = "dead"


@attrs.frozen(kw_only=True)
class Delivery:
    """A verified delivery to store: only what dispatch and inspection need."""

    dedupe_key: str
    """``id:<webhook-id>``, or ``sha256:<body hash>`` when the sender gave no id."""
    webhook_id: str | None
    webhook_timestamp: int | None
    event_type: str
    body: bytes
    received_at: float
    ordering_key: str | None = None
    """Deliveries sharing a key are dispatched one at a time, in the order stored (the
    avatar id by default); ``None``: dispatched as soon as due, concurrently with any."""


@attrs.frozen(kw_only=True)
class InboxRecord:
    """One stored event, as the inspection API shows it (never its body)."""

    id: int
    webhook_id: str | None
    """The sender's ``webhook-id``; ``None`` when it sent none (deduped on the body hash)."""
    event_type: str
    status: InboxStatus
    attempts: int
    """Dispatches started so far (a finished success counts)."""
    last_error: str | None
    """``ExceptionType: message`` of the last failure, URL query strings redacted."""
    received_at: datetime
    next_attempt_at: datetime | None
    """When a pending event is (or was) due; ``None`` once done or dead."""
    finished_at: datetime | None
    webhook_timestamp: int | None
    """The sender's ``webhook-timestamp`` (seconds since the epoch), if any."""
    ordering_key: str | None = None
    """The key its dispatch is ordered by (the avatar id by default), or ``None``."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes as ISO 8601 strings)."""
        data = attrs.asdict(self)
        data["status"] = self.status.value
        for name in ("received_at", "next_attempt_at", "finished_at"):
            value = data[name]
            data[name] = value.isoformat() if value is not None else None
        return data


@attrs.frozen(kw_only=True)
class Claimed:
    """An event a worker has leased: it alone may finish it while the lease lasts."""

    id: int
    body: bytes
    attempts: int
    """Including the attempt this claim starts."""
    token: str
    event_type: str
    ordering_key: str | None = None
    """Its :attr:`Delivery.ordering_key`: while this claim lasts, no other event with
    the key is claimed."""


@runtime_checkable
class InboxStore(Protocol):
    """Where a :class:`~avaturn_async.webhooks.WebhookInbox` keeps its events.

    An implementation must make each method atomic, and safe to call from
    several tasks (and, for a shared database, several processes) at once.
    """

    async def insert(self, delivery: Delivery) -> int | None:
        """Store and *durably commit* a delivery; its new id, or ``None`` if its key is known.

        The receiver answers 2xx only after this returns, so it must not return
        before the commit is as durable as the store promises. If it raises,
        the delivery may or may not be stored (the sender's retry is deduped),
        except :class:`UnstorableDeliveryError`: nothing of it was stored, and
        storing it again would fail again.
        """
        ...

    async def claim(
        self, *, now: float, lease: float, limit: int, max_attempts: int, token: str
    ) -> list[Claimed]:
        """Lease up to ``limit`` due pending events (oldest due first) under ``token``.

        An event with an ``ordering_key`` is claimed only when no event stored
        before it with the same key is still pending (due, waiting for a retry,
        or claimed): events of one key run one at a time, in the order stored.
        A ``done`` or ``dead`` event no longer holds back the ones after it. A
        replayed event queues behind the pending events of its key, as if stored
        anew. Events waiting behind their key never use up ``limit``.

        Each claim counts an attempt, and the event is due again at
        ``now + lease`` unless renewed or finished. A due event whose lease ran
        out on its last attempt (``attempts >= max_attempts``) goes ``dead``
        with :data:`LEASE_LOST` instead of being claimed.
        """
        ...

    async def renew(self, claimed: Claimed, *, now: float, lease: float) -> bool:
        """Extend a claim to ``now + lease``; ``False`` if it was lost."""
        ...

    async def complete(self, claimed: Claimed, *, now: float) -> bool:
        """Mark done; ``False`` if the claim was lost."""
        ...

    async def fail(
        self, claimed: Claimed, *, now: float, error: str, retry_at: float | None
    ) -> bool:
        """Record a failed attempt: due again at ``retry_at``, or dead when it is ``None``."""
        ...

    async def release(self, claimed: Claimed, *, now: float) -> bool:
        """Give a claim back unfinished: due at ``now``, its attempt not counted."""
        ...

    async def wait_for_work(self, max_wait: float) -> None:
        """Return when new events may be due (a hint), or after ``max_wait`` seconds."""
        ...

    async def counts(self) -> dict[str, int]:
        """How many events are in each status (every :class:`InboxStatus` is a key)."""
        ...

    async def records(self, *, status: InboxStatus | None, limit: int) -> list[InboxRecord]:
        """Stored events, newest first, optionally only one ``status``."""
        ...

    async def replay(self, ids: Iterable[int] | None, *, now: float) -> list[int]:
        """Dead events (those of ``ids``, or all when ``None``) back to pending, attempts 0.

        Each goes to the back of its ordering key's queue (in id order among those
        replayed together). Returns the ids replayed, in order; unknown or not-dead ids are skipped.
        """
        ...

    async def purge(self, *, finished_before: float) -> int:
        """Delete done events finished before ``finished_before``; how many went."""
        ...

    def close(self) -> None:
        """Release the store's resources now (connections, files)."""
        ...

    async def aclose(self) -> None:
        """Release the store's resources, waiting for clean shutdown where possible."""
        ...
