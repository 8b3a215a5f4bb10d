"""Test helpers for webhook receivers: build events and sign deliveries.

::

    event = make_render_ready(status="failed")
    body, headers = sign_webhook(event, "whsec_...")
    response = await client.post("/webhooks/avaturn", data=body, headers=headers)

Signatures come from the same ``_signing.sign`` the emulator uses, so a test
exercises exactly what the verifier will see in production.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any

from .._events import (
    AvatarReady,
    Event,
    EventStatus,
    ExportReady,
    RenderReady,
    UnknownEvent,
    event_to_dict,
)
from ..webhooks._signing import decode_secret, sign

__all__ = [
    "event_to_bytes",
    "event_to_dict",
    "make_avatar_ready",
    "make_export_ready",
    "make_render_ready",
    "make_webhook_secret",
    "random_user_id",
    "sign_webhook",
]

_KNOWN = (AvatarReady, ExportReady, RenderReady, UnknownEvent)


def random_user_id() -> str:
    """An id shaped like Avaturn's user ids (32 upper-case base32 characters)."""
    # 20 random bytes are exactly 32 base32 characters, without padding.
    return base64.b32encode(secrets.token_bytes(20)).decode()


def make_webhook_secret() -> str:
    """A fresh ``whsec_<base64>`` secret with a 32-byte key."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _uuid() -> str:
    return str(uuid.uuid4())


def _status(status: EventStatus | str) -> EventStatus | str:
    try:
        return EventStatus(status)
    except ValueError:
        return status


_UNSET: Any = object()


def _url_if_ready(status: EventStatus | str, url: str | None, default: str) -> str | None:
    if url is not _UNSET:
        return url
    return default if status == EventStatus.READY else None


def make_avatar_ready(
    *,
    avatar_id: str | None = None,
    user_id: str | None = None,
    status: EventStatus | str = EventStatus.READY,
    session_id: str | None = None,
) -> AvatarReady:
    """An ``avatar.ready`` event; ids are random unless given."""
    return AvatarReady(
        avatar_id=avatar_id or _uuid(),
        user_id=user_id or random_user_id(),
        status=_status(status),
        session_id=session_id,
    )


def make_export_ready(
    *,
    avatar_id: str | None = None,
    user_id: str | None = None,
    status: EventStatus | str = EventStatus.READY,
    export_url: str | None = _UNSET,
) -> ExportReady:
    """An ``export.ready`` event; ``export_url`` defaults to a fake URL, or ``None`` if failed."""
    avatar_id = avatar_id or _uuid()
    status = _status(status)
    url = _url_if_ready(status, export_url, f"https://exports.avaturn.invalid/{avatar_id}.glb")
    return ExportReady(
        avatar_id=avatar_id, user_id=user_id or random_user_id(), status=status, export_url=url
    )


def make_render_ready(
    *,
    avatar_id: str | None = None,
    user_id: str | None = None,
    render_id: str | None = None,
    status: EventStatus | str = EventStatus.READY,
    render_url: str | None = _UNSET,
) -> RenderReady:
    """A ``render.ready`` event; ``render_url`` defaults to a fake URL, or ``None`` if failed."""
    render_id = render_id or _uuid()
    status = _status(status)
    url = _url_if_ready(status, render_url, f"https://renders.avaturn.invalid/{render_id}.jpg")
    user_id = user_id or random_user_id()
    return RenderReady(
        avatar_id=avatar_id or _uuid(), user_id=user_id, id=render_id, status=status, render_url=url
    )


def event_to_bytes(event: Event) -> bytes:
    """The compact JSON body Avaturn would POST for ``event``."""
    return json.dumps(event_to_dict(event), separators=(",", ":")).encode()


def _body_of(payload: Mapping[str, Any] | Event | bytes) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, _KNOWN):
        return event_to_bytes(payload)
    return json.dumps(dict(payload), separators=(",", ":")).encode()


def sign_webhook(
    payload: Mapping[str, Any] | Event | bytes,
    secret: str | bytes,
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """``(body, headers)`` of a Standard Webhooks delivery of ``payload``.

    ``payload`` is a wire dict, an event object or the exact body bytes.
    ``msg_id`` defaults to a fresh ``msg_...`` id and ``timestamp`` to now
    (seconds since the epoch).
    """
    body = _body_of(payload)
    msg_id = msg_id if msg_id is not None else "msg_" + uuid.uuid4().hex
    timestamp = timestamp if timestamp is not None else int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(decode_secret(secret), msg_id, timestamp, body),
    }
    return body, headers
