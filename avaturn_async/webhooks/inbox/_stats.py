"""What an on-call engineer asks of an inbox: how deep, how late, is its database up.

:class:`InboxStats` is read in one query (both shipped stores have ``stats``);
``ping`` is the readiness check (one trivial query). Stores of your own may
implement both; without them :class:`~avaturn_async.webhooks.WebhookInbox` falls
back to ``counts()`` (the oldest pending age is then unknown).
While a worker runs, the inbox's gauges (``avaturn.inbox.events`` by status,
``avaturn.inbox.oldest_pending.age``) are read from here on each metrics
collection (see ``avaturn_async._metrics``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

import attrs

from ... import _metrics
from ._store import InboxStatus, InboxStore

__all__ = ["InboxStats", "inbox_label", "ping_store", "read_stats", "watching"]


@attrs.frozen(kw_only=True)
class InboxStats:
    """An inbox's deliveries by status, and how long the oldest pending one has waited."""

    counts: Mapping[str, int]
    """Deliveries in each :class:`InboxStatus` (every status is a key)."""
    oldest_pending_age: float | None
    """Seconds since the oldest pending delivery was received (0: none pending;
    ``None``: the store cannot tell)."""

    @classmethod
    def of(
        cls, counts: Mapping[str, int], *, oldest_pending_received_at: float | None, now: float
    ) -> InboxStats:
        """From counts by status (missing ones are 0) and when the oldest pending
        delivery was received (``None``: none is pending), at time ``now``."""
        found = {status.value: int(counts.get(status.value, 0)) for status in InboxStatus}
        oldest = oldest_pending_received_at
        age = 0.0 if oldest is None else max(0.0, now - oldest)
        return cls(counts=found, oldest_pending_age=age)

    @property
    def pending(self) -> int:
        return self.counts[InboxStatus.PENDING.value]

    @property
    def dead(self) -> int:
        return self.counts[InboxStatus.DEAD.value]


async def read_stats(store: InboxStore, now: float) -> InboxStats:
    """``store.stats(now=...)``, or counts alone from a store without it."""
    stats: Callable[..., Any] | None = getattr(store, "stats", None)
    if stats is not None:
        found: InboxStats = await stats(now=now)
        return found
    counts = await store.counts()
    return InboxStats(counts=counts, oldest_pending_age=None)


async def ping_store(store: InboxStore) -> None:
    """``store.ping()``, or ``counts()`` for a store without it; raises when it fails."""
    ping: Callable[[], Any] | None = getattr(store, "ping", None)
    if ping is not None:
        await ping()
    else:
        await store.counts()


def inbox_label(path: str | os.PathLike[str] | None, store: InboxStore) -> str:
    """The ``avaturn.inbox`` attribute: the file, or the store's label (a DSN without
    its password)."""
    if path is not None:
        return os.fspath(path)
    label = getattr(store, "label", None)
    return label if isinstance(label, str) else type(store).__name__


def watching(
    label: str, store: InboxStore, clock: Callable[[], float]
) -> AbstractContextManager[None]:
    """Report the inbox's gauges while the block runs (read only when collected)."""

    async def read() -> _metrics.InboxGauges:
        stats = await read_stats(store, clock())
        age = stats.oldest_pending_age
        return _metrics.InboxGauges(counts=stats.counts, oldest_pending_age=age)

    return _metrics.watching("inbox", label, read)
