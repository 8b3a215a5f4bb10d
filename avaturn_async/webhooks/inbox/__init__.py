"""The durable webhook inbox: store a delivery before answering, dispatch it later.

:class:`WebhookInbox` commits each verified delivery to an :class:`InboxStore`
(one SQLite file by default, :class:`SQLiteInboxStore`; or
``avaturn_async.postgres.PostgresInboxStore``) and answers at once; its worker
claims due deliveries with a lease and dispatches them with retries and a dead
letter. ``avaturn_async.webhooks`` re-exports every name here, loading this
package (and sqlite3) only when one of them is first used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from ._group import GroupCommit as GroupCommit
    from ._inbox import Backoff as Backoff
    from ._inbox import WebhookInbox as WebhookInbox
    from ._inbox import exponential_backoff as exponential_backoff
    from ._ordering import OrderBy as OrderBy
    from ._ordering import by_avatar as by_avatar
    from ._sqlite_store import SQLiteInboxStore as SQLiteInboxStore
    from ._stats import InboxStats as InboxStats
    from ._store import LEASE_LOST as LEASE_LOST
    from ._store import Claimed as Claimed
    from ._store import Delivery as Delivery
    from ._store import InboxError as InboxError
    from ._store import InboxRecord as InboxRecord
    from ._store import InboxStatus as InboxStatus
    from ._store import InboxStore as InboxStore
    from ._store import UnstorableDeliveryError as UnstorableDeliveryError

# One line above per public name: __all__ and the lazy table are read from them.
__getattr__: Callable[[str], Any]
__dir__: Callable[[], list[str]]
__all__: list[str]
__getattr__, __dir__, __all__ = _lazy_exports(__name__, __file__)
