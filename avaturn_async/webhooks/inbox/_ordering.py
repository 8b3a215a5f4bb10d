"""Which stored deliveries must be dispatched one at a time, in order: the ordering key.

A :class:`~avaturn_async.webhooks.WebhookInbox` computes each delivery's key
when it stores it (``order_by``, :func:`by_avatar` by default) and its store
claims an event only when no event stored before it with the same key is still
pending. The key is a short string: anything longer, or holding a NUL (which
PostgreSQL text cannot hold), is stored as its SHA-256, which groups the same
deliveries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from ..._errors import ConfigurationError
from ..._events import Event, UnknownEvent

__all__ = ["MAX_KEY_CHARS", "OrderBy", "by_avatar", "ordering_key"]

OrderBy = Callable[[Event], str | None]
"""Gives an event's ordering key, or ``None`` for an event that may run beside any."""

MAX_KEY_CHARS = 128
"""Longer keys are stored as their SHA-256 (an index entry has a size limit)."""


def by_avatar(event: Event) -> str | None:
    """The avatar an event is about: its ``avatar_id``, or ``None`` when it names none.

    Every known event carries one (``avatar.ready``, ``export.ready``,
    ``render.ready``); an event type this version does not know is ordered by
    its body's ``avatar_id`` when that is a string. So the ``avatar.ready``,
    exports and renders of one avatar are dispatched one at a time, in the
    order they were stored, and events of different avatars run side by side.
    """
    if isinstance(event, UnknownEvent):
        value = event.raw.get("avatar_id")
        return value if isinstance(value, str) and value else None
    return event.avatar_id or None


def ordering_key(order_by: OrderBy | None, event: Event) -> str | None:
    """The key to store for ``event`` (``None`` without ``order_by``), bounded."""
    if order_by is None:
        return None
    key = order_by(event)
    if key is None:
        return None
    if not isinstance(key, str):
        raise ConfigurationError(f"order_by must return a str or None, not {type(key).__name__}")
    if len(key) > MAX_KEY_CHARS or "\x00" in key:
        return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return key
