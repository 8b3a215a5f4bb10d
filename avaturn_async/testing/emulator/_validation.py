"""Request validation for the emulator: FastAPI-shaped 422s, scalar parsers, the
customization schema and the photo-upload form. Pure functions, no I/O.

Everything works on plain JSON-like values (dicts, lists, strings) because the
emulator must read the wire format independently of the SDK's models. Failures
are raised as :class:`EmulatorHTTPError`, which the server turns into a response.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..._photos import JPEG_MAGIC

__all__ = [
    "ASSET_SLOTS",
    "JPEG_MAGIC",
    "PHOTO_FIELDS",
    "SESSION_TYPES",
    "EmulatorHTTPError",
    "Loc",
    "UploadedPhoto",
    "default_customization",
    "form_errors",
    "invalid",
    "not_found",
    "optional_object",
    "parse_bool",
    "parse_customization",
    "parse_format",
    "parse_scene",
    "parse_uuid",
    "photo_errors",
    "require_object",
    "require_str",
    "require_uuid",
    "validation_error",
]

Loc = Sequence[str | int]

ASSET_SLOTS = ("clothing", "hair_and_headwear", "eyewear", "footwear")
COLOR_SLOTS = frozenset({"hair_and_headwear", "eyewear"})
RENDER_FORMATS = ("jpg", "png", "webp")
SESSION_TYPES = ("create_or_edit_existing", "create", "edit_existing")
SCENE_PATTERN = "^[a-zA-Z0-9_/]+$"
_SCENE_RE = re.compile(SCENE_PATTERN)
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$")
_BOOL_WORDS = {
    **dict.fromkeys(("true", "1", "yes", "on", "t", "y"), True),
    **dict.fromkeys(("false", "0", "no", "off", "f", "n"), False),
}


class EmulatorHTTPError(Exception):
    """An error answer: ``detail`` becomes the JSON body ``{"detail": ...}``."""

    def __init__(self, status: int, detail: Any, headers: Mapping[str, str] | None = None):
        super().__init__(f"{status}: {detail!r}")
        self.status = status
        self.detail = detail
        self.headers: Mapping[str, str] = dict(headers or {})


def error_item(loc: Loc, msg: str, type_: str, **ctx: Any) -> dict[str, Any]:
    """One FastAPI-style ``HTTPValidationError`` entry."""
    item: dict[str, Any] = {"loc": list(loc), "msg": msg, "type": type_}
    if ctx:
        item["ctx"] = ctx
    return item


def validation_error(*items: dict[str, Any]) -> EmulatorHTTPError:
    return EmulatorHTTPError(422, list(items))


def invalid(loc: Loc, msg: str, type_: str, **ctx: Any) -> EmulatorHTTPError:
    """A 422 of one entry."""
    return validation_error(error_item(loc, msg, type_, **ctx))


def missing(loc: Loc) -> EmulatorHTTPError:
    return invalid(loc, "Field required", "missing")


def not_found(what: str) -> EmulatorHTTPError:
    return EmulatorHTTPError(404, f"{what} not found")


# ---------------------------------------------------------------- scalar validation


def parse_uuid(value: object, loc: Loc) -> str:
    """The canonical (lowercase, hyphenated) form of a UUID, or a 422."""
    if value is None:
        raise missing(loc)
    if not isinstance(value, str):
        raise invalid(loc, _UUID_TYPE, "uuid_type")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise invalid(loc, "Input should be a valid UUID", "uuid_parsing") from None


def parse_scene(value: str | None) -> str:
    if value is None:
        return "common/preview"
    if not _SCENE_RE.match(value):
        message = f"String should match pattern '{SCENE_PATTERN}'"
        raise invalid(("query", "scene"), message, "string_pattern_mismatch", pattern=SCENE_PATTERN)
    return value


def parse_format(value: str | None) -> str:
    if value is None:
        return "jpg"
    if value not in RENDER_FORMATS:
        expected = "'jpg', 'png' or 'webp'"
        raise invalid(("query", "format"), f"Input should be {expected}", "enum", expected=expected)
    return value


def parse_bool(value: str | None, loc: Loc, *, default: bool = False) -> bool:
    """Query/form booleans, with the words pydantic accepts."""
    if value is None:
        return default
    parsed = _BOOL_WORDS.get(value.strip().lower())
    if parsed is None:
        message = "Input should be a valid boolean, unable to interpret input"
        raise invalid(loc, message, "bool_parsing")
    return parsed


_OBJECT_MSG = "Input should be a valid dictionary or object to extract fields from"
_UUID_TYPE = "UUID input should be a string, bytes or UUID object"


def require_object(value: object, loc: Loc) -> Mapping[str, Any]:
    """A whole request body: absent (``None``) is missing, anything but an object a 422."""
    if value is None:
        raise missing(loc)
    if not isinstance(value, dict):
        raise invalid(loc, _OBJECT_MSG, "model_attributes_type")
    return value


# Fields inside a body follow one rule, as pydantic's do: an absent optional field
# takes its default, but an explicit ``null`` is a wrong type unless the schema says
# the field is nullable (no request field of the API is). Unknown keys are ignored at
# every level: the API document does not say the API refuses them.


def optional_object(body: Mapping[str, Any], key: str, loc: Loc) -> Mapping[str, Any] | None:
    """``body[key]`` if present (``None`` if absent); ``null`` or a non-object is a 422."""
    if key not in body:
        return None
    value = body[key]
    if not isinstance(value, dict):
        raise invalid((*loc, key), _OBJECT_MSG, "model_attributes_type")
    return value


def require_str(body: Mapping[str, Any], key: str, loc: Loc) -> str:
    if key not in body:
        raise missing((*loc, key))
    value = body[key]
    if not isinstance(value, str):
        raise invalid((*loc, key), "Input should be a valid string", "string_type")
    return value


def optional_str(body: Mapping[str, Any], key: str, loc: Loc) -> str | None:
    return require_str(body, key, loc) if key in body else None


def require_uuid(body: Mapping[str, Any], key: str, loc: Loc) -> str:
    """A UUID field of a JSON body: absent is missing, ``null`` a wrong type."""
    if key not in body:
        raise missing((*loc, key))
    value = body[key]
    if value is None:
        raise invalid((*loc, key), _UUID_TYPE, "uuid_type")
    return parse_uuid(value, (*loc, key))


def optional_number(body: Mapping[str, Any], key: str, loc: Loc) -> float | None:
    if key not in body:
        return None
    value = body[key]
    # bool is an int subclass, but JSON true is not a number for the API.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid((*loc, key), "Input should be a valid number", "float_type")
    return float(value)


# ---------------------------------------------------------------- customization


def default_customization() -> dict[str, Any]:
    """What GET customization answers before any PUT."""
    return {
        "assets": {},
        "body": "body_0",
        "age": "adult",
        "metadata": {},
        "bone_scale": {"head": 1.0, "arms": 1.0, "chest": 1.0},
        "skin_tone_correction": 0.0,
    }


def _parse_slot(slot: str, obj: Mapping[str, Any], loc: Loc) -> dict[str, Any]:
    parsed: dict[str, Any] = {"id": require_uuid(obj, "id", loc)}
    if slot not in COLOR_SLOTS:
        return parsed  # an AssetSlot has no color: the key is ignored like any unknown one
    color = optional_str(obj, "color", loc)
    if color is not None:
        if not _COLOR_RE.match(color):
            message = "Value error, color must be '#rrggbb' or '#rrggbbaa'"
            raise invalid((*loc, "color"), message, "value_error")
        parsed["color"] = color
    return parsed


def _parse_assets(obj: Mapping[str, Any] | None, loc: Loc) -> dict[str, Any]:
    assets: dict[str, Any] = {}
    for slot in ASSET_SLOTS:
        slot_obj = optional_object(obj or {}, slot, loc)
        if slot_obj is not None:
            assets[slot] = _parse_slot(slot, slot_obj, (*loc, slot))
    return assets


def _parse_metadata(body: Mapping[str, Any], loc: Loc) -> dict[str, str]:
    if "metadata" not in body:
        return {}
    obj = body["metadata"]
    if not isinstance(obj, dict):
        raise invalid((*loc, "metadata"), "Input should be a valid dictionary", "dict_type")
    for key in obj:
        require_str(obj, key, (*loc, "metadata"))
    return dict(obj)


def _parse_bone_scale(obj: Mapping[str, Any] | None, loc: Loc) -> dict[str, float]:
    scale: dict[str, float] = dict(default_customization()["bone_scale"])
    for key in ("head", "arms", "chest"):
        number = optional_number(obj or {}, key, loc)
        if number is not None:
            scale[key] = number
    return scale


def parse_customization(body: object) -> dict[str, Any]:
    """Validate an ``ExternalAvatarCustomization``; absent fields take the defaults."""
    loc: Loc = ("body",)
    obj = require_object(body, loc)
    result = default_customization()
    result["assets"] = _parse_assets(optional_object(obj, "assets", loc), (*loc, "assets"))
    for key in ("body", "age"):
        text = optional_str(obj, key, loc)
        if text is not None:
            result[key] = text
    result["metadata"] = _parse_metadata(obj, loc)
    bone_scale = optional_object(obj, "bone_scale", loc)
    result["bone_scale"] = _parse_bone_scale(bone_scale, (*loc, "bone_scale"))
    tone = optional_number(obj, "skin_tone_correction", loc)
    if tone is not None:
        result["skin_tone_correction"] = tone
    return result


# ---------------------------------------------------------------- the photo upload form


PHOTO_FIELDS = ("image-frontal", "image-side-1", "image-side-2")


@dataclass
class UploadedPhoto:
    """What the emulator keeps of one received photo: its size, digest, first bytes and
    (in memory only) its bytes, for ``AvaturnEmulator.uploaded_photos``."""

    size: int
    sha256: str
    head: bytes
    data: bytes = b""


def photo_errors(photos: Mapping[str, UploadedPhoto]) -> Iterable[dict[str, Any]]:
    for name in PHOTO_FIELDS:
        loc = ("body", name)
        photo = photos.get(name)
        if photo is None:
            yield error_item(loc, "Field required", "missing")
        elif photo.size == 0:
            yield error_item(loc, "Value error, the photo is empty", "value_error")
        elif not photo.head.startswith(JPEG_MAGIC):
            yield error_item(loc, "Value error, the photo is not a JPEG image", "value_error")


def form_errors(fields: Mapping[str, str]) -> Iterable[dict[str, Any]]:
    body_type = fields.get("body-type")
    if body_type is None:
        yield error_item(("body", "body-type"), "Field required", "missing")
    elif body_type not in ("male", "female"):
        yield _not_literal("body-type", "'male' or 'female'")
    telephoto = fields.get("telephoto")
    if telephoto is not None and telephoto not in ("true", "false"):
        yield _not_literal("telephoto", "'true' or 'false'")


def _not_literal(field: str, expected: str) -> dict[str, Any]:
    message = f"Input should be {expected}"
    return error_item(("body", field), message, "literal_error", expected=expected)
