"""Test your own code against Avaturn without the network.

* :class:`AvaturnEmulator`: a stateful local Avaturn service (all ten endpoints,
  the upload URL, signed webhooks, fault injection, inspectable state).
"""

from ._emulator import (
    DEFAULT_WEBHOOK_SECRET,
    ROUTES,
    AvatarRecord,
    AvaturnEmulator,
    EmulatorStats,
    ExportRecord,
    RenderRecord,
    SessionRecord,
    UserRecord,
    WebhookDelivery,
)

__all__ = [
    "DEFAULT_WEBHOOK_SECRET",
    "ROUTES",
    "AvatarRecord",
    "AvaturnEmulator",
    "EmulatorStats",
    "ExportRecord",
    "RenderRecord",
    "SessionRecord",
    "UserRecord",
    "WebhookDelivery",
]
