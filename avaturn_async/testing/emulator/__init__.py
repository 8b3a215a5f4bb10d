"""The emulator: a stateful local fake of the Avaturn service, on aiohttp.web.

Use it through :mod:`avaturn_async.testing`, which re-exports these names.
Where each part lives:

* ``_app``: :class:`AvaturnEmulator` itself (start, stop, routes, inspection);
* ``_state`` and ``_records``: the records and the API's rules, no I/O;
* ``_validation``: reading request bodies as strictly as the API does;
* ``_http``: body reading, auth, error answers; ``_handlers``: one per endpoint;
* ``_work``: processing, renders and exports that finish later;
* ``_fault_plan`` (seeded fault plans, pure decisions) and ``_fault_injection``
  (applying them, and ``fail_next``); ``_ratelimit``: the server-side rate;
* ``_webhooks``: signed deliveries with retries; ``_tasks``: background tasks;
* ``_stats``: counts per route; ``_store``: the state on disk (``state_file``).
"""

from ._app import (
    DEFAULT_WEBHOOK_SECRET,
    ROUTES,
    AvatarRecord,
    AvaturnEmulator,
    EmulatorStats,
    ExportRecord,
    FaultKind,
    FaultPlan,
    RateLimit,
    RenderRecord,
    RouteFaults,
    SessionRecord,
    UserRecord,
    WebhookDelivery,
    WebhookFaults,
)
from ._store import EmulatorStoreError

__all__ = [
    "DEFAULT_WEBHOOK_SECRET",
    "ROUTES",
    "AvatarRecord",
    "AvaturnEmulator",
    "EmulatorStats",
    "EmulatorStoreError",
    "ExportRecord",
    "FaultKind",
    "FaultPlan",
    "RateLimit",
    "RenderRecord",
    "RouteFaults",
    "SessionRecord",
    "UserRecord",
    "WebhookDelivery",
    "WebhookFaults",
]
