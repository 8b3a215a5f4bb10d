"""Test your own code against Avaturn without the network.

* :class:`AvaturnEmulator`: a stateful local Avaturn service (all ten endpoints,
  the upload URL, signed webhooks, fault injection, inspectable state).
* :class:`FaultPlan`, :class:`RouteFaults`, :class:`WebhookFaults`: seeded, per-route
  faults (429/5xx, resets, cut-off answers, latency, slow uploads, lost webhooks);
  :class:`RateLimit`: a fixed server-side request rate.
* :func:`sign_webhook` and the ``make_*`` event factories: build signed webhook
  deliveries for your receiver's tests, with the same signing code the emulator uses;
  :class:`WebhookSender` signs and POSTs them.
* the ``avaturn`` pytest plugin (fixtures
  ``avaturn_emulator``, ``avaturn_client``, ``avaturn_webhooks``), loaded automatically.
"""

from ._sender import WebhookSender
from ._webhooks import (
    event_to_bytes,
    event_to_dict,
    make_avatar_ready,
    make_export_ready,
    make_render_ready,
    make_webhook_secret,
    random_user_id,
    sign_webhook,
)
from .emulator._app import DEFAULT_WEBHOOK_SECRET, AvaturnEmulator
from .emulator._fault_plan import FaultKind, FaultPlan, RouteFaults, WebhookFaults
from .emulator._ratelimit import RateLimit
from .emulator._records import AvatarRecord, ExportRecord, RenderRecord, SessionRecord, UserRecord
from .emulator._stats import ROUTES, EmulatorStats
from .emulator._store import EmulatorStoreError
from .emulator._webhooks import WebhookDelivery

__all__ = [
    "DEFAULT_WEBHOOK_SECRET",
    "ROUTES",
    "AvatarRecord",
    "AvaturnEmulator",
    "EmulatorStats",
    "EmulatorStoreError",
    "FaultKind",
    "FaultPlan",
    "RateLimit",
    "RouteFaults",
    "WebhookFaults",
    "ExportRecord",
    "RenderRecord",
    "SessionRecord",
    "UserRecord",
    "WebhookDelivery",
    "WebhookSender",
    "event_to_bytes",
    "event_to_dict",
    "make_avatar_ready",
    "make_export_ready",
    "make_render_ready",
    "make_webhook_secret",
    "random_user_id",
    "sign_webhook",
]
