"""Idempotency guard: at-least-once delivery in, at-most-once dispatch out.

Protocol, step by step (implemented by ``_pipeline``):

1. After a delivery is verified and parsed, its key (``webhook-id``, or a hash
   of the body when there is none) is *claimed* with ``seen_or_mark(key)``. A
   claim is atomic: of two concurrent deliveries of one message, exactly one
   gets ``False`` and dispatches; the other is acknowledged (2xx) and dropped.
2. If dispatch fails (a handler raised, or the request was cancelled), the key
   is released with ``unmark(key)`` and the delivery is answered 500, so the
   sender's retry is processed again instead of being dropped as a duplicate.

A duplicate that arrives while the first copy is still being handled is
acknowledged at once. If that first copy then fails, nothing is lost: the first
delivery itself was answered 500, and the sender retries it.

Persistent stores (Redis ``SET key 1 NX EX ttl``, an SQL unique insert) should
give claims a TTL longer than the sender's retry window but still finite: a
process that dies between claim and dispatch never calls ``unmark``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from typing import Protocol, runtime_checkable

from .._deprecated import renamed_argument
from .._errors import ConfigurationError

__all__ = ["IdempotencyStore", "InMemoryIdempotencyStore", "idempotency_key"]


@runtime_checkable
class IdempotencyStore(Protocol):
    """Where processed delivery keys are remembered. Implement both methods atomically."""

    async def seen_or_mark(self, key: str) -> bool:
        """``True`` if ``key`` is already marked (a duplicate); otherwise mark it, ``False``."""
        ...

    async def unmark(self, key: str) -> None:
        """Forget ``key`` so that the next delivery with it is processed; no-op if unknown."""
        ...


def idempotency_key(message_id: str | None, body: bytes) -> str:
    """The dedupe key of a delivery: its message id, else a SHA-256 of the raw body.

    The two kinds are prefixed so that a message id can never collide with a hash.
    """
    if message_id:
        return "id:" + message_id
    return "sha256:" + hashlib.sha256(body).hexdigest()


class InMemoryIdempotencyStore:
    """A bounded in-process store: keeps at most ``max_entries`` keys for at most ``ttl``.

    The oldest key is evicted first when full. Thread-safe, and its methods never
    await, so a claim is atomic on any event loop. State is per process: use a
    shared store (Redis, a database) when several workers receive webhooks.
    The default ``ttl`` of 24 hours covers typical retry schedules (Svix retries
    for about a day). ``now`` gives monotonic seconds (a seam for tests); ``clock``
    is its deprecated old name.
    """

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        ttl: timedelta = timedelta(hours=24),
        now: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if max_entries <= 0:
            raise ConfigurationError("max_entries must be positive")
        if ttl <= timedelta(0):
            raise ConfigurationError("ttl must be positive")
        self._max_entries = max_entries
        self._ttl = ttl.total_seconds()
        self._now = renamed_argument("InMemoryIdempotencyStore", "clock", "now", clock, now)
        # key -> expiry; insertion order is expiry order because the TTL is fixed.
        self._entries: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._purge(self._now())
            return len(self._entries)

    def __repr__(self) -> str:
        return (
            f"InMemoryIdempotencyStore(entries={len(self._entries)}, "
            f"max_entries={self._max_entries}, ttl={timedelta(seconds=self._ttl)!s})"
        )

    async def seen_or_mark(self, key: str) -> bool:
        return self.seen_or_mark_sync(key)

    async def unmark(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def seen_or_mark_sync(self, key: str) -> bool:
        """The synchronous core of :meth:`seen_or_mark`."""
        now = self._now()
        with self._lock:
            self._purge(now)
            if key in self._entries:
                return True
            self._entries[key] = now + self._ttl
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
            return False

    def _purge(self, now: float) -> None:
        entries = self._entries
        while entries:
            oldest_key, expiry = next(iter(entries.items()))
            if expiry > now:
                break
            del entries[oldest_key]
