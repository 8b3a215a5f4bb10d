"""The emulator's data and rules, free of I/O so every decision can be tested on its own.

Everything here works on plain JSON-like values (dicts, lists, strings) because the
emulator must speak the wire format independently of the SDK's models. Failures are
raised as :class:`EmulatorHTTPError`, which the server turns into a response.
"""

from __future__ import annotations

import base64
import re
import secrets
import struct
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, TypeVar

__all__ = [
    "ASSET_SLOTS",
    "COLOR_SLOTS",
    "DEFAULT_ASSETS",
    "RENDER_FILES",
    "RENDER_FORMATS",
    "SAMPLE_ASSETS",
    "AvatarRecord",
    "EmulatorHTTPError",
    "EmulatorState",
    "ExportRecord",
    "RenderRecord",
    "SessionRecord",
    "UserRecord",
    "default_customization",
    "error_item",
    "glb_chunks",
    "parse_bool",
    "parse_format",
    "parse_scene",
    "parse_uuid",
    "validation_error",
]

Loc = Sequence[str | int]
Outcome = Literal["ready", "failed"]
_R = TypeVar("_R")

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

# Stable ids (uuid5 of a name) so that demos and docs can refer to them across runs.
_ASSET_NAMESPACE = uuid.UUID("6f1c2d8e-5a4b-4c3d-9e8f-7a6b5c4d3e2f")
_CATALOG_NAMES = {
    "clothing": ("tshirt_white", "hoodie_black", "suit_navy"),
    "hair_and_headwear": ("hair_short", "hair_long", "cap_red"),
    "eyewear": ("glasses_round", "sunglasses_aviator"),
    "footwear": ("sneakers_white", "boots_brown"),
}
DEFAULT_ASSETS: Mapping[str, str] = {
    str(uuid.uuid5(_ASSET_NAMESPACE, f"{slot}/{name}")): slot
    for slot, names in _CATALOG_NAMES.items()
    for name in names
}
"""The emulator's asset catalog at start: asset id -> slot."""

SAMPLE_ASSETS: Mapping[str, str] = {
    slot: str(uuid.uuid5(_ASSET_NAMESPACE, f"{slot}/{names[0]}"))
    for slot, names in _CATALOG_NAMES.items()
}
"""One valid asset id per slot: slot -> asset id."""


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


def _missing(loc: Loc) -> EmulatorHTTPError:
    return validation_error(error_item(loc, "Field required", "missing"))


def _not_found(what: str) -> EmulatorHTTPError:
    return EmulatorHTTPError(404, f"{what} not found")


def new_user_id() -> str:
    # 20 random bytes are exactly 32 base32 characters, without padding.
    return base64.b32encode(secrets.token_bytes(20)).decode()


def _now() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------- scalar validation


def parse_uuid(value: object, loc: Loc) -> str:
    """The canonical (lowercase, hyphenated) form of a UUID, or a 422."""
    if value is None:
        raise _missing(loc)
    if not isinstance(value, str):
        raise validation_error(
            error_item(loc, "UUID input should be a string, bytes or UUID object", "uuid_type")
        )
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise validation_error(
            error_item(loc, "Input should be a valid UUID", "uuid_parsing")
        ) from None


def parse_scene(value: str | None) -> str:
    if value is None:
        return "common/preview"
    if not _SCENE_RE.match(value):
        raise validation_error(
            error_item(
                ("query", "scene"),
                f"String should match pattern '{SCENE_PATTERN}'",
                "string_pattern_mismatch",
                pattern=SCENE_PATTERN,
            )
        )
    return value


def parse_format(value: str | None) -> str:
    if value is None:
        return "jpg"
    if value not in RENDER_FORMATS:
        raise validation_error(
            error_item(
                ("query", "format"),
                "Input should be 'jpg', 'png' or 'webp'",
                "enum",
                expected="'jpg', 'png' or 'webp'",
            )
        )
    return value


def parse_bool(value: str | None, loc: Loc, *, default: bool = False) -> bool:
    """Query/form booleans, with the words pydantic accepts."""
    if value is None:
        return default
    parsed = _BOOL_WORDS.get(value.strip().lower())
    if parsed is None:
        raise validation_error(
            error_item(
                loc, "Input should be a valid boolean, unable to interpret input", "bool_parsing"
            )
        )
    return parsed


def _require_object(value: object, loc: Loc) -> Mapping[str, Any]:
    if value is None:
        raise _missing(loc)
    if not isinstance(value, dict):
        raise validation_error(
            error_item(
                loc,
                "Input should be a valid dictionary or object to extract fields from",
                "model_attributes_type",
            )
        )
    return value


def _require_str(body: Mapping[str, Any], key: str, loc: Loc) -> str:
    if key not in body:
        raise _missing((*loc, key))
    value = body[key]
    if not isinstance(value, str):
        raise validation_error(
            error_item((*loc, key), "Input should be a valid string", "string_type")
        )
    return value


def _optional_number(body: Mapping[str, Any], key: str, loc: Loc) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    # bool is an int subclass, but JSON true is not a number for the API.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise validation_error(
            error_item((*loc, key), "Input should be a valid number", "float_type")
        )
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


def _parse_slot(slot: str, value: object, loc: Loc) -> dict[str, Any] | None:
    if value is None:
        return None
    obj = _require_object(value, loc)
    allowed = {"id", "color"} if slot in COLOR_SLOTS else {"id"}
    for key in obj:
        if key not in allowed:
            raise validation_error(
                error_item((*loc, key), "Extra inputs are not permitted", "extra_forbidden")
            )
    parsed: dict[str, Any] = {"id": parse_uuid(obj.get("id"), (*loc, "id"))}
    color = obj.get("color")
    if color is not None:
        if not isinstance(color, str):
            raise validation_error(
                error_item((*loc, "color"), "Input should be a valid string", "string_type")
            )
        if not _COLOR_RE.match(color):
            raise validation_error(
                error_item(
                    (*loc, "color"),
                    "Value error, color must be '#rrggbb' or '#rrggbbaa'",
                    "value_error",
                )
            )
        parsed["color"] = color
    return parsed


def _parse_assets(value: object, loc: Loc) -> dict[str, Any]:
    if value is None:
        return {}
    obj = _require_object(value, loc)
    assets: dict[str, Any] = {}
    for slot, slot_value in obj.items():
        if slot not in ASSET_SLOTS:
            raise validation_error(
                error_item((*loc, slot), "Extra inputs are not permitted", "extra_forbidden")
            )
        parsed = _parse_slot(slot, slot_value, (*loc, slot))
        if parsed is not None:
            assets[slot] = parsed
    return assets


def _parse_metadata(value: object, loc: Loc) -> dict[str, str]:
    if value is None:
        return {}
    obj = _require_object(value, loc)
    for key, item in obj.items():
        if not isinstance(item, str):
            raise validation_error(
                error_item((*loc, key), "Input should be a valid string", "string_type")
            )
    return dict(obj)


def _parse_bone_scale(value: object, loc: Loc) -> dict[str, float]:
    scale: dict[str, float] = dict(default_customization()["bone_scale"])
    if value is None:
        return scale
    obj = _require_object(value, loc)
    for key in ("head", "arms", "chest"):
        number = _optional_number(obj, key, loc)
        if number is not None:
            scale[key] = number
    return scale


def parse_customization(body: object) -> dict[str, Any]:
    """Validate an ``ExternalAvatarCustomization``; absent fields take the defaults."""
    loc: Loc = ("body",)
    obj = _require_object(body, loc)
    result = default_customization()
    result["assets"] = _parse_assets(obj.get("assets"), (*loc, "assets"))
    for key in ("body", "age"):
        if obj.get(key) is not None:
            result[key] = _require_str(obj, key, loc)
    result["metadata"] = _parse_metadata(obj.get("metadata"), (*loc, "metadata"))
    result["bone_scale"] = _parse_bone_scale(obj.get("bone_scale"), (*loc, "bone_scale"))
    tone = _optional_number(obj, "skin_tone_correction", loc)
    if tone is not None:
        result["skin_tone_correction"] = tone
    return result


# ---------------------------------------------------------------- records


@dataclass
class UserRecord:
    id: str
    created_at: datetime


@dataclass
class AvatarRecord:
    """One avatar. ``status`` follows pending -> processing -> ready | failed."""

    id: str
    user_id: str
    created_at: datetime
    upload_signature: str = field(repr=False)
    status: str = "pending"
    upload_state: Literal["none", "receiving", "done"] = "none"
    body_type: str | None = None
    telephoto: bool | None = None
    upload_bytes: int = 0
    photo_sizes: dict[str, int] = field(default_factory=dict)
    photo_sha256: dict[str, str] = field(default_factory=dict)
    customization: dict[str, Any] | None = None
    version: int = 0

    @property
    def customized(self) -> bool:
        return self.customization is not None

    def list_item(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "created_at": self.created_at.isoformat()}


@dataclass
class RenderRecord:
    id: str
    avatar_id: str
    user_id: str
    scene: str
    format: str
    status: str = "pending"


@dataclass
class ExportRecord:
    """One export job of one avatar version; ``token`` names its file."""

    token: str
    avatar_id: str
    user_id: str
    version: int
    status: str = "pending"


@dataclass
class SessionRecord:
    id: str
    user_id: str
    config: dict[str, Any]


@dataclass
class UploadedPhoto:
    size: int
    sha256: str
    head: bytes


# ---------------------------------------------------------------- the state machine


class EmulatorState:
    """Users, avatars, renders, exports and sessions, with the API's rules."""

    def __init__(self, *, require_customization: bool = True) -> None:
        self.require_customization = require_customization
        self.users: dict[str, UserRecord] = {}
        self.avatars: dict[str, AvatarRecord] = {}
        self.renders: dict[str, RenderRecord] = {}
        self.exports: dict[str, ExportRecord] = {}
        self.sessions: dict[str, SessionRecord] = {}
        self.assets: dict[str, str] = dict(DEFAULT_ASSETS)
        self.retired_assets: set[str] = set()

    # users and sessions

    def create_user(self) -> UserRecord:
        user = UserRecord(id=new_user_id(), created_at=_now())
        self.users[user.id] = user
        return user

    def user(self, user_id: str) -> UserRecord:
        user = self.users.get(user_id)
        if user is None:
            raise _not_found("User")
        return user

    def delete_user(self, user_id: str) -> None:
        self.user(user_id)
        del self.users[user_id]
        self._drop(self.avatars, lambda a: a.user_id == user_id)
        self._drop(self.renders, lambda r: r.user_id == user_id)
        self._drop(self.exports, lambda e: e.user_id == user_id)
        self._drop(self.sessions, lambda s: s.user_id == user_id)

    @staticmethod
    def _drop(records: dict[str, _R], doomed: Callable[[_R], bool]) -> None:
        for key in [key for key, record in records.items() if doomed(record)]:
            del records[key]

    def create_session(self, body: object) -> SessionRecord:
        obj = _require_object(body, ("body",))
        user_id = _require_str(obj, "user_id", ("body",))
        config = self._parse_session_config(obj.get("config"))
        self.user(user_id)
        if config["type"] == "edit_existing":
            self.owned_avatar(user_id, config["avatar_id"])
        session = SessionRecord(id=str(uuid.uuid4()), user_id=user_id, config=config)
        self.sessions[session.id] = session
        return session

    @staticmethod
    def _parse_session_config(value: object) -> dict[str, Any]:
        loc: Loc = ("body", "config")
        if value is None:
            return {"type": "create_or_edit_existing"}
        obj = _require_object(value, loc)
        kind = obj.get("type")
        if kind is None:
            raise validation_error(
                error_item(
                    loc,
                    "Unable to extract tag using discriminator 'type'",
                    "union_tag_not_found",
                    discriminator="'type'",
                )
            )
        if kind not in SESSION_TYPES:
            expected = ", ".join(f"'{t}'" for t in SESSION_TYPES)
            raise validation_error(
                error_item(
                    loc,
                    f"Input tag '{kind}' found using 'type' does not match any of the "
                    f"expected tags: {expected}",
                    "union_tag_invalid",
                    discriminator="'type'",
                    tag=str(kind),
                    expected_tags=expected,
                )
            )
        if kind != "edit_existing":
            return {"type": kind}
        avatar_id = parse_uuid(obj.get("avatar_id"), (*loc, kind, "avatar_id"))
        return {"type": kind, "avatar_id": avatar_id}

    # avatars

    def create_avatar(self, body: object) -> AvatarRecord:
        obj = _require_object(body, ("body",))
        user_id = _require_str(obj, "user_id", ("body",))
        self.user(user_id)
        avatar = AvatarRecord(
            id=str(uuid.uuid4()),
            user_id=user_id,
            created_at=_now(),
            upload_signature=secrets.token_urlsafe(24),
        )
        self.avatars[avatar.id] = avatar
        return avatar

    def avatar(self, avatar_id: str) -> AvatarRecord:
        avatar = self.avatars.get(avatar_id)
        if avatar is None:
            raise _not_found("Avatar")
        return avatar

    def owned_avatar(self, user_id: str, avatar_id: str) -> AvatarRecord:
        avatar = self.avatar(avatar_id)
        if avatar.user_id != user_id:
            # Another user's avatar is reported like a missing one: ids do not leak.
            raise _not_found("Avatar")
        return avatar

    def list_avatars(self, user_id: str, *, include_not_ready: bool) -> list[dict[str, Any]]:
        self.user(user_id)
        return [
            avatar.list_item()
            for avatar in self.avatars.values()
            if avatar.user_id == user_id and (include_not_ready or avatar.status == "ready")
        ]

    def delete_avatar(self, user_id: str, avatar_id: str) -> None:
        self.user(user_id)
        self.owned_avatar(user_id, avatar_id)
        del self.avatars[avatar_id]
        self._drop(self.exports, lambda e: e.avatar_id == avatar_id)

    # photo upload

    def begin_upload(self, avatar_id: str, signature: str | None) -> AvatarRecord:
        """Claim the avatar's single upload; :meth:`abort_upload` gives it back."""
        avatar = self.avatar(avatar_id)
        if signature is None or not secrets.compare_digest(
            signature.encode(), avatar.upload_signature.encode()
        ):
            raise EmulatorHTTPError(403, "invalid or missing upload signature")
        if avatar.upload_state != "none":
            raise EmulatorHTTPError(409, "photos were already uploaded for this avatar")
        avatar.upload_state = "receiving"
        return avatar

    def abort_upload(self, avatar: AvatarRecord) -> None:
        if avatar.upload_state == "receiving":
            avatar.upload_state = "none"

    def complete_upload(
        self,
        avatar: AvatarRecord,
        photos: Mapping[str, UploadedPhoto],
        fields: Mapping[str, str],
    ) -> None:
        """Validate the received form; on success the avatar starts processing."""
        errors = [*_photo_errors(photos), *_form_errors(fields)]
        if errors:
            raise validation_error(*errors)
        avatar.body_type = fields["body-type"]
        avatar.telephoto = fields.get("telephoto") == "true"
        avatar.photo_sizes = {name: photo.size for name, photo in photos.items()}
        avatar.photo_sha256 = {name: photo.sha256 for name, photo in photos.items()}
        avatar.upload_state = "done"
        avatar.status = "processing"

    def finish_processing(self, avatar_id: str, outcome: Outcome) -> dict[str, Any] | None:
        """The ``avatar.ready`` event, or None when the avatar was deleted meanwhile."""
        avatar = self.avatars.get(avatar_id)
        if avatar is None:
            return None
        avatar.status = outcome
        return {
            "event": "avatar.ready",
            "avatar_id": avatar.id,
            "user_id": avatar.user_id,
            "status": outcome,
            "session_id": None,
        }

    # customization

    def get_customization(self, avatar_id: str) -> dict[str, Any]:
        avatar = self.avatar(avatar_id)
        return avatar.customization or default_customization()

    def set_customization(self, avatar_id: str, body: object) -> None:
        # Like FastAPI, the body is validated (422) before the handler looks anything up.
        customization = parse_customization(body)
        avatar = self.avatar(avatar_id)
        self._check_assets(customization["assets"])
        avatar.customization = customization
        avatar.version += 1

    def _check_assets(self, assets: Mapping[str, Mapping[str, Any]]) -> None:
        gone = [slot["id"] for slot in assets.values() if slot["id"] not in self.assets]
        if gone:
            raise EmulatorHTTPError(410, f"asset(s) no longer available: {', '.join(gone)}")
        for slot, chosen in assets.items():
            actual = self.assets[chosen["id"]]
            if actual != slot:
                raise EmulatorHTTPError(
                    409, f"asset {chosen['id']} belongs in slot '{actual}', not '{slot}'"
                )

    def retire_asset(self, asset_id: str) -> None:
        if self.assets.pop(asset_id, None) is not None:
            self.retired_assets.add(asset_id)

    def add_asset(self, asset_id: str, slot: str) -> None:
        if slot not in ASSET_SLOTS:
            raise ValueError(f"unknown slot {slot!r}; expected one of {ASSET_SLOTS}")
        canonical = str(uuid.UUID(asset_id))
        self.assets[canonical] = slot
        self.retired_assets.discard(canonical)

    # renders and exports

    def _renderable(self, avatar_id: str, action: str) -> AvatarRecord:
        avatar = self.avatar(avatar_id)
        if avatar.status != "ready":
            raise EmulatorHTTPError(409, f"avatar is {avatar.status}, not ready: cannot {action}")
        if self.require_customization and not avatar.customized:
            raise EmulatorHTTPError(
                409,
                f"avatar was made from uploaded photos and has no customization yet: "
                f"set a customization first, then {action}",
            )
        return avatar

    def create_render(self, avatar_id: str, scene: str, fmt: str) -> RenderRecord:
        avatar = self._renderable(avatar_id, "render")
        render = RenderRecord(
            id=str(uuid.uuid4()),
            avatar_id=avatar.id,
            user_id=avatar.user_id,
            scene=scene,
            format=fmt,
        )
        self.renders[render.id] = render
        return render

    def finish_render(self, render_id: str, outcome: Outcome) -> RenderRecord | None:
        render = self.renders.get(render_id)
        if render is None or render.avatar_id not in self.avatars:
            return None
        render.status = outcome
        return render

    def request_export(self, avatar_id: str) -> tuple[ExportRecord, bool]:
        """The export of the avatar's current version, and whether a new job started."""
        avatar = self._renderable(avatar_id, "export")
        for export in self.exports.values():
            if (
                export.avatar_id == avatar.id
                and export.version == avatar.version
                and export.status != "failed"
            ):
                return export, False
        export = ExportRecord(
            token=secrets.token_urlsafe(16),
            avatar_id=avatar.id,
            user_id=avatar.user_id,
            version=avatar.version,
        )
        self.exports[export.token] = export
        return export, True

    def finish_export(self, token: str, outcome: Outcome) -> ExportRecord | None:
        export = self.exports.get(token)
        if export is None:
            return None
        export.status = outcome
        return export


PHOTO_FIELDS = ("image-frontal", "image-side-1", "image-side-2")
JPEG_MAGIC = b"\xff\xd8\xff"


def _photo_errors(photos: Mapping[str, UploadedPhoto]) -> Iterable[dict[str, Any]]:
    for name in PHOTO_FIELDS:
        loc = ("body", name)
        photo = photos.get(name)
        if photo is None:
            yield error_item(loc, "Field required", "missing")
        elif photo.size == 0:
            yield error_item(loc, "Value error, the photo is empty", "value_error")
        elif not photo.head.startswith(JPEG_MAGIC):
            yield error_item(loc, "Value error, the photo is not a JPEG image", "value_error")


def _form_errors(fields: Mapping[str, str]) -> Iterable[dict[str, Any]]:
    body_type = fields.get("body-type")
    if body_type is None:
        yield error_item(("body", "body-type"), "Field required", "missing")
    elif body_type not in ("male", "female"):
        yield error_item(
            ("body", "body-type"),
            "Input should be 'male' or 'female'",
            "literal_error",
            expected="'male' or 'female'",
        )
    telephoto = fields.get("telephoto")
    if telephoto is not None and telephoto not in ("true", "false"):
        yield error_item(
            ("body", "telephoto"),
            "Input should be 'true' or 'false'",
            "literal_error",
            expected="'true' or 'false'",
        )


# ---------------------------------------------------------------- served files

RENDER_FILES: Mapping[str, tuple[str, bytes]] = {
    "jpg": ("image/jpeg", b"\xff\xd8\xff\xe0" + bytes(64) + b"\xff\xd9"),
    "png": ("image/png", b"\x89PNG\r\n\x1a\n" + bytes(64)),
    "webp": ("image/webp", b"RIFF" + struct.pack("<I", 68) + b"WEBP" + bytes(60)),
}
"""Bytes served for a ready render, by format: (content type, body)."""

_PATTERN_SIZE = 64 * 1024


def glb_chunks(size: int) -> Iterator[bytes]:
    """A GLB header then a repeating byte pattern, so truncation or mixing shows."""
    header = b"glTF" + struct.pack("<II", 2, size)
    yield header
    pattern = bytes(range(256)) * (_PATTERN_SIZE // 256)
    remaining = size - len(header)
    while remaining > 0:
        chunk = pattern[:remaining]
        remaining -= len(chunk)
        yield chunk
