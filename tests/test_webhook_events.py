"""parse_event and the typed event models."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from avaturn_async.webhooks import (
    AvatarReady,
    Event,
    EventStatus,
    ExportReady,
    KnownEvent,
    RenderReady,
    UnknownEvent,
    WebhookParseError,
    WebhookPayloadTooLargeError,
    event_to_dict,
    parse_event,
)

AVATAR = {
    "event": "avatar.ready",
    "avatar_id": "3f1c2b7a-0000-4000-8000-000000000001",
    "user_id": "TGTLFCCRG67V6ERUMDTK3JNI5AYGF6XF",
    "status": "ready",
    "session_id": "5d0c2b7a-0000-4000-8000-000000000002",
}
EXPORT = {
    "event": "export.ready",
    "avatar_id": "a1",
    "user_id": "U1",
    "status": "ready",
    "export_url": "https://cdn.example/a1.glb?X-Amz-Signature=SECRETSIG",
}
RENDER = {
    "event": "render.ready",
    "avatar_id": "a1",
    "user_id": "U1",
    "id": "render-1",
    "status": "failed",
    "render_url": None,
}
REQUIRED = {
    "avatar.ready": ["avatar_id"],
    "export.ready": ["avatar_id", "status"],
    "render.ready": ["avatar_id", "status", "id"],
}
OPTIONAL = {
    "avatar.ready": "session_id",
    "export.ready": "export_url",
    "render.ready": "render_url",
}
PAYLOADS: dict[str, dict[str, Any]] = {
    "avatar.ready": AVATAR,
    "export.ready": EXPORT,
    "render.ready": RENDER,
}


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


def parse_error(raw: bytes) -> WebhookParseError:
    with pytest.raises(WebhookParseError) as info:
        parse_event(raw)
    return info.value


def parse_or_error(raw: bytes) -> Event | WebhookParseError:
    try:
        return parse_event(raw)
    except WebhookParseError as error:
        return error


@pytest.mark.parametrize("payload", [AVATAR, EXPORT, RENDER])
def test_missing_user_id_is_read_as_none(payload: dict[str, Any]) -> None:
    data = {k: v for k, v in payload.items() if k != "user_id"}
    assert parse_event(body(data)).user_id is None  # type: ignore[union-attr]


def test_avatar_ready_is_parsed_with_typed_fields() -> None:
    event = parse_event(body(AVATAR))
    assert event == AvatarReady(
        avatar_id=AVATAR["avatar_id"],
        user_id=AVATAR["user_id"],
        status=EventStatus.READY,
        session_id=AVATAR["session_id"],
    )


def test_export_ready_is_parsed_with_its_url() -> None:
    event = parse_event(body(EXPORT))
    assert isinstance(event, ExportReady)
    assert event.export_url == EXPORT["export_url"]


def test_render_ready_carries_the_render_task_id() -> None:
    event = parse_event(body(RENDER))
    assert isinstance(event, RenderReady)
    assert (event.id, event.render_id) == ("render-1", "render-1")


def test_failed_event_has_no_url_and_is_not_succeeded() -> None:
    event = parse_event(body(RENDER))
    assert isinstance(event, RenderReady)
    assert (event.render_url, event.succeeded, event.failed) == (None, False, True)


def test_ready_event_is_succeeded() -> None:
    event = parse_event(body(EXPORT))
    assert isinstance(event, ExportReady)
    assert (event.succeeded, event.failed) == (True, False)


def test_status_is_the_enum_member() -> None:
    event = parse_event(body(AVATAR))
    assert isinstance(event, AvatarReady)
    assert event.status is EventStatus.READY


def test_status_formats_as_its_wire_value() -> None:
    assert (str(EventStatus.READY), f"{EventStatus.FAILED}") == ("ready", "failed")


def test_unknown_status_is_kept_as_a_plain_string() -> None:
    event = parse_event(body({**EXPORT, "status": "partially_ready"}))
    assert isinstance(event, ExportReady)
    assert event.status == "partially_ready"
    assert not isinstance(event.status, EventStatus)
    assert not event.succeeded
    assert not event.failed


MINIMAL_AVATAR = {"event": "avatar.ready", "avatar_id": AVATAR["avatar_id"]}
"""All the API document guarantees of an ``avatar.ready``."""


def test_avatar_ready_with_only_event_and_avatar_id_parses() -> None:
    event = parse_event(body(MINIMAL_AVATAR))
    assert event == AvatarReady(avatar_id=AVATAR["avatar_id"])
    assert (event.status, event.user_id, event.session_id) == (None, None, None)


def test_avatar_ready_without_status_reads_as_succeeded() -> None:
    event = parse_event(body(MINIMAL_AVATAR))
    assert isinstance(event, AvatarReady)
    assert (event.succeeded, event.failed) == (True, False)


def test_avatar_ready_with_null_status_reads_as_no_status() -> None:
    event = parse_event(body({**MINIMAL_AVATAR, "status": None}))
    assert isinstance(event, AvatarReady)
    assert event.status is None


def test_avatar_ready_with_wrongly_typed_status_names_its_path() -> None:
    error = parse_error(body({**AVATAR, "status": 3}))
    assert (error.path, "null" in str(error)) == ("$.status", True)


def test_minimal_avatar_ready_round_trips_without_inventing_a_status() -> None:
    event = parse_event(body(MINIMAL_AVATAR))
    assert event_to_dict(event) == {**MINIMAL_AVATAR, "user_id": None, "session_id": None}
    assert parse_event(body(event_to_dict(event))) == event


@pytest.mark.parametrize("payload", [EXPORT, RENDER], ids=["export.ready", "render.ready"])
def test_status_stays_required_for_export_and_render_events(payload: dict[str, Any]) -> None:
    data = {k: v for k, v in payload.items() if k != "status"}
    assert parse_error(body(data)).path == "$.status"


def test_optional_fields_default_to_none_when_absent() -> None:
    data = {k: v for k, v in AVATAR.items() if k != "session_id"}
    event = parse_event(body(data))
    assert isinstance(event, AvatarReady)
    assert event.session_id is None


def test_unknown_event_type_becomes_unknown_event_with_raw_body() -> None:
    data = {"event": "avatar.deleted", "avatar_id": "a1", "nested": {"x": [1]}}
    event = parse_event(body(data))
    assert event == UnknownEvent(event="avatar.deleted", raw=data)


def test_unknown_event_needs_no_known_fields() -> None:
    assert parse_event(b'{"event":"x.y"}') == UnknownEvent(event="x.y", raw={"event": "x.y"})


def test_unknown_extra_fields_are_ignored_but_kept_in_raw() -> None:
    event = parse_event(body({**RENDER, "scene": "common/preview"}))
    assert isinstance(event, RenderReady)
    assert event.raw["scene"] == "common/preview"


def test_raw_does_not_take_part_in_equality() -> None:
    plain = parse_event(body(RENDER))
    extended = parse_event(body({**RENDER, "extra": 1}))
    assert plain == extended


def test_events_are_frozen() -> None:
    event = parse_event(body(AVATAR))
    assert isinstance(event, AvatarReady)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.avatar_id = "other"  # type: ignore[misc]


def test_known_events_are_hashable() -> None:
    assert len({parse_event(body(AVATAR)), parse_event(body(AVATAR))}) == 1


def test_unknown_events_are_hashable() -> None:
    assert hash(parse_event(b'{"event":"x.y","a":{}}')) == hash(UnknownEvent(event="x.y"))


def test_repr_redacts_the_query_of_presigned_urls() -> None:
    text = repr(parse_event(body(EXPORT)))
    assert "SECRETSIG" not in text
    assert "https://cdn.example/a1.glb" in text


def test_every_known_event_shares_the_known_event_base() -> None:
    assert all(isinstance(parse_event(body(p)), KnownEvent) for p in PAYLOADS.values())


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
def test_parsed_event_equals_the_one_built_by_init_field_by_field(payload: dict[str, Any]) -> None:
    parsed = parse_event(body(payload))
    cls = type(parsed)
    values = {f.name: getattr(parsed, f.name) for f in attrs.fields(cls)}
    assert values == attrs.asdict(cls(**values), recurse=False)
    assert set(values) - {"raw"} == set(payload) - {"event"}


@pytest.mark.parametrize(("event", "field"), [(e, f) for e, fs in REQUIRED.items() for f in fs])
def test_missing_required_field_names_its_path(event: str, field: str) -> None:
    data = {k: v for k, v in PAYLOADS[event].items() if k != field}
    error = parse_error(body(data))
    assert error.path == f"$.{field}"
    assert "missing" in str(error)


@pytest.mark.parametrize(("event", "field"), [(e, f) for e, fs in REQUIRED.items() for f in fs])
@pytest.mark.parametrize("bad", [12, None, ["x"], True])
def test_wrongly_typed_required_field_names_its_path(event: str, field: str, bad: Any) -> None:
    error = parse_error(body({**PAYLOADS[event], field: bad}))
    assert error.path == f"$.{field}"


@pytest.mark.parametrize(("event", "field"), list(OPTIONAL.items()))
def test_wrongly_typed_optional_field_names_its_path(event: str, field: str) -> None:
    error = parse_error(body({**PAYLOADS[event], field: 5}))
    assert (error.path, "null" in str(error)) == (f"$.{field}", True)


def test_missing_event_name_is_an_error_at_event() -> None:
    assert parse_error(body({"avatar_id": "a"})).path == "$.event"


def test_non_string_event_name_is_an_error_at_event() -> None:
    assert parse_error(body({"event": 3})).path == "$.event"


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"not json", b'{"event":"x"} trailing', b"NaN", b'{"event":"x","n":Infinity}'],
)
def test_invalid_json_is_an_error_at_the_root(raw: bytes) -> None:
    error = parse_error(raw)
    assert error.path == "$"
    assert "not JSON" in str(error)


def test_non_utf8_body_is_an_error() -> None:
    assert "UTF-8" in str(parse_error(b'{"event":"\xff"}'))


def test_a_utf8_byte_order_mark_is_tolerated() -> None:
    event = parse_event(b"\xef\xbb\xbf" + json.dumps(AVATAR).encode())
    assert event == parse_event(json.dumps(AVATAR).encode())


def test_utf16_body_is_not_accepted() -> None:
    parse_error(json.dumps(AVATAR).encode("utf-16"))


@pytest.mark.parametrize("raw", [b"[]", b'"avatar.ready"', b"1", b"null"])
def test_non_object_body_is_an_error_at_the_root(raw: bytes) -> None:
    assert parse_error(raw).path == "$"


def test_deeply_nested_body_is_a_parse_error() -> None:
    assert parse_error(b"[" * 100_000 + b"]" * 100_000).path == "$"


def test_whitespace_around_the_json_is_accepted() -> None:
    assert isinstance(parse_event(b"\n " + body(AVATAR) + b"\r\n"), AvatarReady)


def test_parse_error_does_not_echo_field_values() -> None:
    error = parse_error(body({**EXPORT, "user_id": ["TOPSECRET"]}))
    assert "TOPSECRET" not in str(error)


def test_parse_error_is_a_value_error() -> None:
    assert isinstance(parse_error(b"{"), ValueError)


def test_body_over_the_limit_is_refused() -> None:
    with pytest.raises(WebhookPayloadTooLargeError) as info:
        parse_event(body(AVATAR), max_body_size=10)
    assert info.value.limit == 10


def test_default_limit_is_one_mebibyte() -> None:
    padding = "x" * (1024 * 1024)
    with pytest.raises(WebhookPayloadTooLargeError):
        parse_event(body({**AVATAR, "pad": padding}))


@pytest.mark.parametrize("payload", [AVATAR, EXPORT, RENDER], ids=list(PAYLOADS))
def test_event_to_dict_round_trips(payload: dict[str, Any]) -> None:
    event = parse_event(body(payload))
    assert event_to_dict(event) == payload
    assert parse_event(body(event_to_dict(event))) == event


def test_unknown_event_to_dict_is_its_raw_body() -> None:
    data = {"event": "x.y", "k": [1, 2]}
    assert event_to_dict(parse_event(body(data))) == data


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3)
    ),
    max_leaves=10,
)


@given(
    event=st.sampled_from([*PAYLOADS, "other.event"]),
    fields=st.dictionaries(
        st.sampled_from(
            [
                "avatar_id",
                "user_id",
                "status",
                "id",
                "session_id",
                "export_url",
                "render_url",
                "extra",
            ]
        ),
        json_values,
    ),
)
def test_any_json_object_parses_or_raises_parse_error(event: str, fields: dict[str, Any]) -> None:
    result = parse_or_error(body({"event": event, **fields}))
    if isinstance(result, WebhookParseError):
        assert result.path.startswith("$.")
    else:
        assert result.event == event


@given(st.binary(max_size=64))
def test_arbitrary_bytes_parse_or_raise_parse_error(raw: bytes) -> None:
    with contextlib.suppress(WebhookParseError):
        parse_event(raw)
