"""What an on-call engineer asks of the PostgreSQL inbox: how deep and how late
(:meth:`InboxProbes.stats`, one statement), and whether its database answers
(:meth:`InboxProbes.ping`, the readiness check). Mixed into ``PostgresInboxStore``."""

from __future__ import annotations

from ..webhooks import InboxStats
from ._connector import PostgresConnector
from ._inbox_sql import STATS, stats_of

__all__ = ["InboxProbes"]


class InboxProbes:
    """``stats`` and ``ping`` of an inbox store that has a ``connector`` and ``open``."""

    connector: PostgresConnector

    async def open(self) -> None:
        """Connect and install or check the schema (the store's own)."""

    async def stats(self, *, now: float) -> InboxStats:
        """Counts by status and the oldest pending delivery's age, in one statement,
        not retried (a metrics collection gives up rather than waits)."""
        await self.open()
        rows = await self.connector.run(
            "webhook inbox stats", lambda conn: conn.fetch(STATS), deadline=0
        )
        return stats_of(rows, now)

    async def ping(self) -> None:
        """The readiness check: one trivial query, not retried."""
        await self.open()
        await self.connector.ping()
