"""avaturn_async.testing webhook helpers: signing and event factories."""

from __future__ import annotations

import base64
import json
import re
import time

import pytest

from avaturn_async.testing import (
    event_to_bytes,
    event_to_dict,
    make_avatar_ready,
    make_export_ready,
    make_render_ready,
    make_webhook_secret,
    random_user_id,
    sign_webhook,
)
from avaturn_async.webhooks import (
    AvatarReady,
    EventStatus,
    ExportReady,
    RenderReady,
    UnknownEvent,
    WebhookVerifier,
    parse_event,
)
from avaturn_async.webhooks._signing import decode_secret, sign

SECRET = make_webhook_secret()


def test_signed_event_verifies_and_parses_back_to_the_event() -> None:
    event = make_avatar_ready()
    body, headers = sign_webhook(event, SECRET)
    assert WebhookVerifier(SECRET).verify_and_parse(body, headers) == event


def test_signed_dict_is_sent_as_compact_json() -> None:
    body, _ = sign_webhook({"event": "x.y", "a": 1}, SECRET)
    assert body == b'{"event":"x.y","a":1}'


def test_signed_bytes_are_sent_unchanged() -> None:
    body, headers = sign_webhook(b"raw \xff bytes", SECRET)
    assert body == b"raw \xff bytes"
    WebhookVerifier(SECRET).verify(body, headers)


def test_given_message_id_and_timestamp_are_used_and_signed() -> None:
    body, headers = sign_webhook(b"{}", SECRET, msg_id="msg_x", timestamp=1_700_000_000)
    assert (headers["webhook-id"], headers["webhook-timestamp"]) == ("msg_x", "1700000000")
    assert headers["webhook-signature"] == sign(decode_secret(SECRET), "msg_x", 1_700_000_000, body)


def test_default_message_ids_are_unique_and_timestamp_is_now() -> None:
    first = sign_webhook(b"{}", SECRET)[1]
    second = sign_webhook(b"{}", SECRET)[1]
    assert first["webhook-id"] != second["webhook-id"]
    assert abs(int(first["webhook-timestamp"]) - time.time()) < 5


def test_raw_bytes_secret_is_accepted() -> None:
    body, headers = sign_webhook(b"{}", b"raw-key-bytes-0123456789")
    WebhookVerifier(b"raw-key-bytes-0123456789").verify(body, headers)


def test_factories_return_typed_ready_events() -> None:
    events = [make_avatar_ready(), make_export_ready(), make_render_ready()]
    assert [type(e) for e in events] == [AvatarReady, ExportReady, RenderReady]
    assert all(e.status is EventStatus.READY and e.succeeded for e in events)


def test_factories_give_fresh_random_ids() -> None:
    first, second = make_render_ready(), make_render_ready()
    assert (first.avatar_id, first.user_id, first.id) != (
        second.avatar_id,
        second.user_id,
        second.id,
    )


def test_given_ids_are_kept() -> None:
    event = make_render_ready(avatar_id="a", user_id="u", render_id="r")
    assert (event.avatar_id, event.user_id, event.id) == ("a", "u", "r")


@pytest.mark.parametrize("factory", [make_export_ready, make_render_ready])
def test_ready_events_get_a_url_and_failed_ones_none(factory: object) -> None:
    ready, failed = factory(), factory(status="failed")  # type: ignore[operator]
    url_field = "export_url" if isinstance(ready, ExportReady) else "render_url"
    assert getattr(ready, url_field).startswith("https://")
    assert getattr(failed, url_field) is None
    assert failed.status is EventStatus.FAILED


def test_explicit_url_is_kept_even_when_failed() -> None:
    assert make_export_ready(status="failed", export_url="https://x").export_url == "https://x"


def test_explicit_none_url_is_kept_when_ready() -> None:
    assert make_render_ready(render_url=None).render_url is None


def test_unknown_status_string_is_kept() -> None:
    assert make_avatar_ready(status="queued").status == "queued"


def test_event_to_bytes_round_trips_through_parse_event() -> None:
    event = make_export_ready()
    assert parse_event(event_to_bytes(event)) == event


def test_event_to_dict_is_the_wire_form() -> None:
    event = make_avatar_ready(avatar_id="a", user_id="u", session_id="s")
    assert event_to_dict(event) == {
        "event": "avatar.ready",
        "avatar_id": "a",
        "user_id": "u",
        "status": "ready",
        "session_id": "s",
    }


def test_unknown_event_can_be_signed() -> None:
    event = UnknownEvent(event="x.y", raw={"event": "x.y", "k": 1})
    body, _ = sign_webhook(event, SECRET)
    assert json.loads(body) == {"event": "x.y", "k": 1}


def test_webhook_secret_is_whsec_with_a_32_byte_key() -> None:
    secret = make_webhook_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 32


def test_random_user_id_looks_like_avaturns() -> None:
    assert re.fullmatch(r"[A-Z2-7]{32}", random_user_id())
