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

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from ._sender import WebhookSender as WebhookSender
    from ._webhooks import event_to_bytes as event_to_bytes
    from ._webhooks import event_to_dict as event_to_dict
    from ._webhooks import make_avatar_ready as make_avatar_ready
    from ._webhooks import make_export_ready as make_export_ready
    from ._webhooks import make_render_ready as make_render_ready
    from ._webhooks import make_webhook_secret as make_webhook_secret
    from ._webhooks import random_user_id as random_user_id
    from ._webhooks import sign_webhook as sign_webhook
    from .emulator._app import DEFAULT_WEBHOOK_SECRET as DEFAULT_WEBHOOK_SECRET
    from .emulator._app import AvaturnEmulator as AvaturnEmulator
    from .emulator._fault_plan import FaultKind as FaultKind
    from .emulator._fault_plan import FaultPlan as FaultPlan
    from .emulator._fault_plan import RouteFaults as RouteFaults
    from .emulator._fault_plan import WebhookFaults as WebhookFaults
    from .emulator._ratelimit import RateLimit as RateLimit
    from .emulator._records import AvatarRecord as AvatarRecord
    from .emulator._records import ExportRecord as ExportRecord
    from .emulator._records import RenderRecord as RenderRecord
    from .emulator._records import SessionRecord as SessionRecord
    from .emulator._records import UserRecord as UserRecord
    from .emulator._stats import ROUTES as ROUTES
    from .emulator._stats import EmulatorStats as EmulatorStats
    from .emulator._store import EmulatorStoreError as EmulatorStoreError
    from .emulator._webhooks import WebhookDelivery as WebhookDelivery

# One line above per public name: __all__ and the lazy table are read from them.
__getattr__: Callable[[str], Any]
__dir__: Callable[[], list[str]]
__all__: list[str]
__getattr__, __dir__, __all__ = _lazy_exports(__name__, __file__)
