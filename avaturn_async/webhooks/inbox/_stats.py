"""What an on-call engineer asks of an inbox: how deep, how late, is its database up.

:class:`InboxStats` is read in one query (both shipped stores have ``stats``);
``ping`` is the readiness check (one trivial query). Stores of your own may
implement both; without them :class:`~avaturn_async.webhooks.WebhookInbox` falls
back to ``counts()`` (the oldest pending age is then unknown).
While a worker runs, the inbox's gauges (``avaturn.inbox.events`` by status,
``avaturn.inbox.oldest_pending.age``) are read from them on each metrics
collection (``WebhookInbox.reporting_metrics``).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ._store import InboxStatus

__all__ = ["InboxStats"]


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
