"""Request building and answer mapping, without a server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from avaturn_async import (
    APIError,
    AssetSlot,
    AssetSlots,
    AssetSlotWithColor,
    AuthenticationError,
    BadRequestError,
    BoneScale,
    ConflictError,
    EditExistingSessionConfig,
    ExternalAvatarCustomization,
    GoneError,
    InvalidRequestError,
    NewUserResponse,
    NotFoundError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    UnprocessableEntityError,
    ValidationErrorItem,
)
from avaturn_async import _answers as a
from avaturn_async import _requests as p

AVATAR = "0b1f6f36-8c1a-4c43-9a4e-2c7b1c4f9b10"


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> p.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return p.Response(status=status, headers=headers or {}, body=raw)


def test_user_id_is_percent_quoted_in_paths() -> None:
    assert p.build_delete_user("a/b c").path == "/api/v1/users/a%2Fb%20c"


def test_avatar_id_must_be_a_uuid() -> None:
    with pytest.raises(InvalidRequestError, match="avatar_id must be a UUID"):
        p.build_create_export("not-a-uuid")


def test_empty_user_id_is_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="user_id"):
        p.build_create_avatar("  ")


def test_render_always_sends_scene_and_format() -> None:
    request = p.build_create_render(AVATAR, "common/preview", "png")
    assert request.params == {"avatar_id": AVATAR, "scene": "common/preview", "format": "png"}


@pytest.mark.parametrize("scene", ["common/pre view", "../etc", "", "scene?x=1"])
def test_render_scene_outside_pattern_is_rejected(scene: str) -> None:
    with pytest.raises(InvalidRequestError, match="scene"):
        p.build_create_render(AVATAR, scene, "jpg")


def test_render_format_outside_enum_is_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="format"):
        p.build_create_render(AVATAR, "common/preview", "gif")  # type: ignore[arg-type]


def test_list_avatars_sends_include_not_ready_as_lowercase_bool() -> None:
    assert p.build_list_avatars("U", True).params == {"include_not_ready": "true"}


def test_request_url_carries_the_encoded_query() -> None:
    request = p.build_create_render(AVATAR, "common/preview", "png")
    assert request.url("http://h") == (
        f"http://h/api/v1/renders/new?avatar_id={AVATAR}&scene=common%2Fpreview&format=png"
    )


def test_encode_query_escapes_reserved_characters_in_keys_and_values() -> None:
    assert p.encode_query({"a b": "x&y=z", "plain": "v-1.2_~"}) == "a%20b=x%26y%3Dz&plain=v-1.2_~"


def test_request_url_without_params_is_base_and_path() -> None:
    assert p.build_create_avatar("U").url("http://h") == "http://h/api/v1/avatars/new"


def test_session_without_config_sends_only_user_id() -> None:
    assert p.build_create_session("U", None).json == {"user_id": "U"}


def test_edit_existing_session_config_checks_avatar_id() -> None:
    with pytest.raises(InvalidRequestError, match=r"config\.avatar_id"):
        p.build_create_session("U", EditExistingSessionConfig(avatar_id="nope"))


def test_customization_rejects_bad_color() -> None:
    bad = ExternalAvatarCustomization(
        assets=AssetSlots(eyewear=AssetSlotWithColor(id=AVATAR, color="red"))
    )
    with pytest.raises(InvalidRequestError, match=r"eyewear\.color"):
        p.build_set_customization(AVATAR, bad)


def test_customization_rejects_non_uuid_asset() -> None:
    bad = ExternalAvatarCustomization(assets=AssetSlots(clothing=AssetSlot(id="shirt")))
    with pytest.raises(InvalidRequestError, match=r"clothing\.id"):
        p.build_set_customization(AVATAR, bad)


def test_customization_rejects_non_finite_bone_scale() -> None:
    bad = ExternalAvatarCustomization(bone_scale=BoneScale(head=float("nan"), arms=1, chest=1))
    with pytest.raises(InvalidRequestError, match=r"bone_scale\.head"):
        p.build_set_customization(AVATAR, bad)


@pytest.mark.parametrize(
    ("route", "idempotent"),
    [
        (p.build_create_user(), False),
        (p.build_create_avatar("U"), False),
        (p.build_create_session("U", None), False),
        (p.build_create_render(AVATAR, "common/preview", "jpg"), False),
        (p.build_create_export(AVATAR), True),
        (p.build_list_avatars("U", False), True),
        (p.build_delete_user("U"), True),
        (p.build_delete_avatar("U", AVATAR), True),
        (p.build_get_customization(AVATAR), True),
    ],
)
def test_requests_declare_whether_they_may_be_repeated(route: p.Request, idempotent: bool) -> None:
    assert route.idempotent is idempotent


def test_upload_request_is_unauthenticated_and_redacts_its_signature() -> None:
    from avaturn_async._photos import prepare_upload
    from tests.support import SAMPLE_JPEG

    jpeg = SAMPLE_JPEG
    upload = prepare_upload(frontal=jpeg, side_1=jpeg, side_2=jpeg, body_type="male")
    request = p.build_upload("https://up.example/u/1?signature=SECRET", upload)
    assert request.authenticated is False
    assert "SECRET" not in request.display_path
    assert "SECRET" not in repr(request)


def test_read_model_parses_success_body() -> None:
    assert a.read_model(answer(200, {"id": "ABC"}), NewUserResponse) == NewUserResponse(id="ABC")


def test_read_model_rejects_non_json_with_decode_error() -> None:
    with pytest.raises(ResponseDecodeError, match="not JSON"):
        a.read_model(answer(200, b"<html>"), NewUserResponse)


def test_read_model_rejects_a_body_that_is_not_utf8_with_decode_error() -> None:
    with pytest.raises(ResponseDecodeError, match="not JSON"):
        a.read_model(answer(200, '{"id": "\u00e9"}'.encode("latin-1")), NewUserResponse)


def test_read_model_reads_a_body_with_surrounding_whitespace() -> None:
    body = b' \r\n{"id": "ABC"}\n'
    assert a.read_model(answer(200, body), NewUserResponse) == NewUserResponse(id="ABC")


def test_read_model_rejects_data_after_the_json_value() -> None:
    with pytest.raises(ResponseDecodeError, match="not JSON"):
        a.read_model(answer(200, b'{"id": "ABC"} {"id": "DEF"}'), NewUserResponse)


def test_read_model_tolerates_a_utf8_byte_order_mark() -> None:
    body = b"\xef\xbb\xbf" + '{"id": "\u00e9"}'.encode()
    assert a.read_model(answer(200, body), NewUserResponse) == NewUserResponse(id="\u00e9")


def test_read_model_refuses_nan_which_is_not_json() -> None:
    with pytest.raises(ResponseDecodeError, match="not JSON"):
        a.read_model(answer(200, b'{"id": NaN}'), NewUserResponse)


def test_read_model_names_missing_field() -> None:
    with pytest.raises(ResponseDecodeError, match=r"\$\.id"):
        a.read_model(answer(200, {}), NewUserResponse)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (409, ConflictError),
        (410, GoneError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_status_maps_to_error_class(status: int, cls: type[APIError]) -> None:
    error = a.error_from_response(answer(status, {"detail": "nope"}), p.build_create_user())
    assert type(error) is cls
    assert error.status == status


def test_error_carries_detail_message_body_and_request_id() -> None:
    error = a.error_from_response(
        answer(404, {"detail": "user not found"}, {"X-Request-Id": "req-1"}),
        p.build_delete_user("U"),
    )
    assert (error.message, error.body, error.request_id) == (
        "user not found",
        {"detail": "user not found"},
        "req-1",
    )
    assert "req-1" in str(error)


def test_validation_error_parses_detail_items() -> None:
    body = {"detail": [{"loc": ["body", "user_id"], "msg": "field required", "type": "missing"}]}
    error = a.error_from_response(answer(422, body), p.build_create_avatar("U"))
    assert isinstance(error, UnprocessableEntityError)
    assert error.detail == (
        ValidationErrorItem(loc=("body", "user_id"), msg="field required", type="missing"),
    )
    assert "body.user_id" in error.message


def test_non_json_error_body_is_kept_as_text() -> None:
    error = a.error_from_response(answer(502, b"Bad Gateway\n<html>"), p.build_create_user())
    assert error.body == "Bad Gateway\n<html>"
    assert error.message == "Bad Gateway"


def test_rate_limit_error_reads_retry_after() -> None:
    error = a.error_from_response(answer(429, None, {"Retry-After": "4"}), p.build_create_user())
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 4.0


def test_validation_errors_are_value_errors() -> None:
    error = a.error_from_response(answer(422, {"detail": []}), p.build_create_user())
    assert isinstance(error, ValueError)
