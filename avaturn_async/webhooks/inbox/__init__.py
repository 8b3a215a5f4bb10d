"""The durable webhook inbox: store a delivery before answering, dispatch it later.

:class:`WebhookInbox` commits each verified delivery to an :class:`InboxStore`
(one SQLite file by default, :class:`SQLiteInboxStore`; or
``avaturn_async.postgres.PostgresInboxStore``) and answers at once; its worker
claims due deliveries with a lease and dispatches them with retries and a dead
letter. ``avaturn_async.webhooks`` re-exports every name here, loading this
package (and sqlite3) only when one of them is first used.
"""

from __future__ import annotations

from ._group import GroupCommit
from ._inbox import Backoff, WebhookInbox, exponential_backoff
from ._sqlite_store import SQLiteInboxStore
from ._store import (
    LEASE_LOST,
    Claimed,
    Delivery,
    InboxError,
    InboxRecord,
    InboxStatus,
    InboxStore,
)

__all__ = [
    "LEASE_LOST",
    "Backoff",
    "Claimed",
    "Delivery",
    "GroupCommit",
    "InboxError",
    "InboxRecord",
    "InboxStatus",
    "InboxStore",
    "SQLiteInboxStore",
    "WebhookInbox",
    "exponential_backoff",
]
