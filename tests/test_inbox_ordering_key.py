"""``by_avatar``, the default ordering key of the webhook inbox, and ``order_by``'s checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from avaturn_async import ConfigurationError
from avaturn_async.testing import make_avatar_ready, make_export_ready, make_render_ready
from avaturn_async.webhooks import AvatarReady, Event, UnknownEvent, WebhookInbox, by_avatar


def test_every_known_event_is_ordered_by_its_avatar() -> None:
    events: list[Event] = [
        make_avatar_ready(avatar_id="av-1"),
        make_export_ready(avatar_id="av-1"),
        make_render_ready(avatar_id="av-1"),
    ]
    assert [by_avatar(event) for event in events] == ["av-1", "av-1", "av-1"]


def test_an_unknown_event_is_ordered_by_its_body_avatar_id_when_it_is_a_string() -> None:
    named = UnknownEvent(event="avatar.updated", raw={"avatar_id": "av-2"})
    numbered = UnknownEvent(event="avatar.updated", raw={"avatar_id": 7})
    anonymous = UnknownEvent(event="account.updated", raw={})
    assert [by_avatar(e) for e in (named, numbered, anonymous)] == ["av-2", None, None]


def test_an_empty_avatar_id_orders_nothing() -> None:
    known = AvatarReady(avatar_id="")
    unknown = UnknownEvent(event="avatar.updated", raw={"avatar_id": ""})
    assert (by_avatar(known), by_avatar(unknown)) == (None, None)


def test_order_by_must_be_a_function_or_none(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="order_by"):
        WebhookInbox(tmp_path / "inbox.db", order_by="avatar_id")  # type: ignore[arg-type]
