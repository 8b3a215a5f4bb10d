"""Property tests: every model survives writing and reading back, through JSON too.

``structure(unstructure(x)) == x`` with the one converter the SDK uses, for models
built from arbitrary (valid) field values, unknown enum values included.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from avaturn_async import _converter
from avaturn_async import _models as m
from avaturn_async._wire import WireEnum

SETTINGS = settings(max_examples=100, deadline=None)

texts = st.text(max_size=30)
optional_texts = st.none() | texts
numbers = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | numbers | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


def open_enum(enum: type[WireEnum]) -> st.SearchStrategy[Any]:
    """A member, or a value this version does not know (kept as a plain ``str``)."""
    known = {member.value for member in enum}
    return st.sampled_from(list(enum)) | texts.filter(lambda value: value not in known)


asset_slots = st.builds(
    m.AssetSlots,
    clothing=st.none() | st.builds(m.AssetSlot, id=texts),
    hair_and_headwear=st.none() | st.builds(m.AssetSlotWithColor, id=texts, color=optional_texts),
    eyewear=st.none() | st.builds(m.AssetSlotWithColor, id=texts, color=optional_texts),
    footwear=st.none() | st.builds(m.AssetSlot, id=texts),
)
customizations = st.builds(
    m.ExternalAvatarCustomization,
    assets=st.none() | asset_slots,
    body=optional_texts,
    age=st.none() | open_enum(m.AgeModel),
    metadata=st.none() | st.dictionaries(texts, texts, max_size=4),
    bone_scale=st.none() | st.builds(m.BoneScale, head=numbers, arms=numbers, chest=numbers),
    skin_tone_correction=st.none() | numbers,
)
avatar_items = st.builds(
    m.AvatarListItem,
    id=texts,
    status=open_enum(m.ScanStatus),
    extra=st.dictionaries(texts.filter(lambda key: key not in ("id", "status")), json_values),
)
session_configs = (
    st.builds(m.CreateOrEditExistingSessionConfig)
    | st.builds(m.CreateSessionConfig)
    | st.builds(m.EditExistingSessionConfig, avatar_id=texts)
)
models = st.one_of(
    st.builds(m.NewUserResponse, id=texts),
    st.builds(m.NewSessionResponse, url=texts, id=texts, custom_upload_url=optional_texts),
    st.builds(m.NewAvatarResponse, avatar_id=texts, upload_url=texts),
    st.builds(
        m.RenderResult, id=texts, status=open_enum(m.RenderStatus), render_url=optional_texts
    ),
    st.builds(m.NewExportResponse, status=open_enum(m.ExportStatus), url=optional_texts),
    st.builds(m.AssetSlotWithColor, id=texts, color=optional_texts),
    customizations,
)


@SETTINGS
@given(models)
def test_models_round_trip(model: Any) -> None:
    assert _converter.structure(_converter.unstructure(model), type(model)) == model


@SETTINGS
@given(models)
def test_models_round_trip_through_json_text(model: Any) -> None:
    text = json.dumps(_converter.unstructure(model))
    assert _converter.structure(json.loads(text), type(model)) == model


@SETTINGS
@given(st.lists(avatar_items, max_size=4))
def test_avatar_lists_round_trip_with_their_unknown_fields(items: list[m.AvatarListItem]) -> None:
    text = json.dumps(_converter.unstructure(items))
    back = _converter.structure(json.loads(text), list[m.AvatarListItem])
    assert back == items
    assert [item.extra for item in back] == [item.extra for item in items]


@SETTINGS
@given(session_configs)
def test_session_configs_round_trip_through_the_union(config: m.SessionConfig) -> None:
    data = json.loads(json.dumps(_converter.unstructure(config)))
    assert data["type"] == config.type
    assert _converter.structure(data, m.SessionConfig) == config  # type: ignore[arg-type]


@SETTINGS
@given(optional_texts, st.dictionaries(texts.filter(lambda key: key != "status"), json_values))
def test_photo_upload_results_round_trip_with_their_raw_body(
    status: str | None, rest: dict[str, Any]
) -> None:
    result = m.PhotoUploadResult(status=status, raw={**rest, "status": status})
    back = _converter.structure(_converter.unstructure(result), m.PhotoUploadResult)
    assert (back, dict(back.raw)) == (result, dict(result.raw))


@SETTINGS
@given(customizations)
def test_unset_customization_fields_are_not_written(
    customization: m.ExternalAvatarCustomization,
) -> None:
    written = _converter.unstructure(customization)
    assert None not in written.values()
