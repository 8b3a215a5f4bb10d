"""Models and the converter: lenient reading, strict and minimal writing."""

from __future__ import annotations

import attrs
import cattrs
import pytest

from avaturn_async import (
    AgeModel,
    AssetSlot,
    AssetSlots,
    AssetSlotWithColor,
    AvatarListItem,
    BoneScale,
    CreateOrEditExistingSessionConfig,
    CreateSessionConfig,
    EditExistingSessionConfig,
    ExportStatus,
    ExternalAvatarCustomization,
    NewAvatarResponse,
    NewExportResponse,
    RenderResult,
    RenderStatus,
    ScanStatus,
    SessionConfig,
)
from avaturn_async._converter import _slot_writers, describe_error, structure, unstructure

AVATAR = "0b1f6f36-8c1a-4c43-9a4e-2c7b1c4f9b10"


def test_unknown_fields_are_ignored() -> None:
    result = structure(
        {"id": AVATAR, "status": "ready", "render_url": None, "new": 1}, RenderResult
    )
    assert result == RenderResult(id=AVATAR, status=RenderStatus.READY)


def test_unknown_enum_value_is_kept_as_string() -> None:
    item = structure({"id": AVATAR, "status": "queued"}, AvatarListItem)
    assert item.status == "queued"
    assert not isinstance(item.status, ScanStatus)


def test_known_enum_value_becomes_the_enum() -> None:
    assert structure({"id": AVATAR, "status": "failed"}, AvatarListItem).status is ScanStatus.FAILED


def test_avatar_list_item_keeps_unknown_fields_in_extra() -> None:
    item = structure({"id": AVATAR, "status": "ready", "created_at": "2026-01-01"}, AvatarListItem)
    assert item.extra == {"created_at": "2026-01-01"}


def test_wrong_primitive_type_is_an_error_naming_the_field() -> None:
    with pytest.raises(cattrs.ClassValidationError) as info:
        structure({"id": 17, "status": "ready"}, AvatarListItem)
    assert describe_error(info.value)[0] == "$.id"


def test_missing_required_field_is_an_error_naming_the_field() -> None:
    with pytest.raises(cattrs.ClassValidationError) as info:
        structure({"upload_url": "https://x"}, NewAvatarResponse)
    assert describe_error(info.value) == ("$.avatar_id", "required field missing")


def test_customization_round_trips() -> None:
    original = ExternalAvatarCustomization(
        assets=AssetSlots(
            clothing=AssetSlot(id=AVATAR),
            hair_and_headwear=AssetSlotWithColor(id=AVATAR, color="#112233"),
        ),
        body="body_3",
        age=AgeModel.ADULT,
        metadata={"k": "v"},
        bone_scale=BoneScale(head=1.0, arms=0.9, chest=1.1),
        skin_tone_correction=0.2,
    )
    assert structure(unstructure(original), ExternalAvatarCustomization) == original


def test_customization_writes_no_unset_fields() -> None:
    written = unstructure(
        ExternalAvatarCustomization(assets=AssetSlots(eyewear=AssetSlotWithColor(id=AVATAR)))
    )
    assert written == {"assets": {"eyewear": {"id": AVATAR}}}


def test_customization_keeps_unknown_age_and_body() -> None:
    read = structure({"age": "teen", "body": "body_99"}, ExternalAvatarCustomization)
    assert (read.age, read.body) == ("teen", "body_99")


@pytest.mark.parametrize(
    ("config", "wire"),
    [
        (CreateOrEditExistingSessionConfig(), {"type": "create_or_edit_existing"}),
        (CreateSessionConfig(), {"type": "create"}),
        (
            EditExistingSessionConfig(avatar_id=AVATAR),
            {"type": "edit_existing", "avatar_id": AVATAR},
        ),
    ],
)
def test_session_config_is_written_with_its_type(
    config: SessionConfig, wire: dict[str, str]
) -> None:
    assert unstructure(config) == wire
    assert structure(wire, SessionConfig) == config  # type: ignore[arg-type]


def test_session_config_with_unknown_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="session config"):
        structure({"type": "teleport"}, SessionConfig)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("scale", "expected"),
    [
        ({"head": 1.2}, BoneScale(head=1.2)),
        ({"arms": 0.9, "chest": 1.1}, BoneScale(arms=0.9, chest=1.1)),
        ({}, BoneScale()),
    ],
    ids=["head-only", "two-of-three", "empty"],
)
def test_partial_bone_scale_parses_with_missing_values_unset(
    scale: dict[str, float], expected: BoneScale
) -> None:
    parsed = structure({"bone_scale": scale}, ExternalAvatarCustomization)
    assert parsed.bone_scale == expected


def test_partial_bone_scale_writes_only_the_values_it_has() -> None:
    written = unstructure(ExternalAvatarCustomization(bone_scale=BoneScale(head=1.2)))
    assert written == {"bone_scale": {"head": 1.2}}


def test_export_status_knows_failed() -> None:
    parsed = structure({"status": "failed", "url": None}, NewExportResponse)
    assert parsed.status is ExportStatus.FAILED
    assert not parsed.is_ready


def test_export_ready_property() -> None:
    assert structure({"status": "ready", "url": "https://f"}, NewExportResponse).is_ready


def test_presigned_urls_are_redacted_in_repr() -> None:
    created = NewAvatarResponse(
        avatar_id=AVATAR, upload_url="https://up.example/x?signature=SECRET"
    )
    assert "SECRET" not in repr(created)
    assert created.upload_url.endswith("SECRET")


def test_models_are_frozen() -> None:
    item = AvatarListItem(id=AVATAR, status=ScanStatus.READY)
    with pytest.raises(AttributeError):
        item.id = "x"  # type: ignore[misc]


def test_models_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        AssetSlot(AVATAR)  # type: ignore[call-arg]


def test_list_item_built_on_the_fast_path_equals_one_built_by_init() -> None:
    item = structure({"id": AVATAR, "status": "ready", "created_at": "2026-01-01"}, AvatarListItem)
    expected = AvatarListItem(
        id=AVATAR, status=ScanStatus.READY, extra={"created_at": "2026-01-01"}
    )
    assert (item, hash(item), repr(item)) == (expected, hash(expected), repr(expected))


def test_list_item_extra_is_a_copy_not_the_answer_dict() -> None:
    answer = {"id": AVATAR, "status": "ready", "created_at": "2026-01-01"}
    item = structure(answer, AvatarListItem)
    answer["created_at"] = "changed"
    assert item.extra == {"created_at": "2026-01-01"}


def test_slot_writers_refuse_a_class_with_a_validator() -> None:
    @attrs.frozen(kw_only=True)
    class Checked:
        id: str = attrs.field(validator=attrs.validators.instance_of(str))

    with pytest.raises(TypeError, match="needs its __init__"):
        _slot_writers(Checked, "id")


def test_slot_writers_refuse_to_leave_a_field_unwritten() -> None:
    with pytest.raises(TypeError, match="every field"):
        _slot_writers(AvatarListItem, "id", "status")
