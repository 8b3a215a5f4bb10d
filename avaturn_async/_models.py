"""Typed models of the Avaturn API's schemas, with the wire names.

Every model is frozen, slotted and keyword-only. Reading is lenient: unknown
fields are ignored (or kept in ``extra`` where the API document asks for it) and
unknown enum values are kept as plain ``str``, so an Avaturn release that adds a
status never breaks a caller. Writing is strict: see ``_requests`` for the
checks made before a request leaves the process.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import attrs

from ._redact import redact_url, url_repr
from ._wire import WireEnum

__all__ = [
    "AgeModel",
    "Answered",
    "AssetSlot",
    "AssetSlotWithColor",
    "AssetSlots",
    "AvatarListItem",
    "BodyType",
    "BodyTypeName",
    "BoneScale",
    "CreateOrEditExistingSessionConfig",
    "CreateSessionConfig",
    "DownloadedFile",
    "EditExistingSessionConfig",
    "ExportStatus",
    "ExternalAvatarCustomization",
    "NewAvatarResponse",
    "NewExportResponse",
    "NewSessionResponse",
    "NewUserResponse",
    "PhotoUploadResult",
    "RenderFormat",
    "RenderFormatName",
    "RenderResult",
    "RenderStatus",
    "ScanStatus",
    "SessionConfig",
    "redact_url",
]


class ScanStatus(WireEnum):
    """Processing state of an avatar (``AvatarListItem.status``)."""

    PENDING = "pending"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class RenderStatus(WireEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class ExportStatus(WireEnum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class RenderFormat(WireEnum):
    JPG = "jpg"
    PNG = "png"
    WEBP = "webp"


class BodyType(WireEnum):
    MALE = "male"
    FEMALE = "female"


RenderFormatName = Literal["jpg", "png", "webp"]
"""The render formats as strings: a type checker refuses ``format="gif"``."""

BodyTypeName = Literal["male", "female"]
"""The body types as strings: a type checker refuses ``body_type="other"``."""


class AgeModel(WireEnum):
    """Age model of a customization; the API document names ``adult`` only."""

    ADULT = "adult"


class Answered:
    """Base of the models an endpoint returns: a slot, not a field (not compared, shown or
    sent), for the answer they were read from (``response_of()``)."""

    __slots__ = ("_avaturn_answer",)


@attrs.frozen(kw_only=True)
class NewUserResponse(Answered):
    """Answer of Create User."""

    id: str


@attrs.frozen(kw_only=True)
class CreateOrEditExistingSessionConfig:
    """Open the editor on the user's avatar, or create one if there is none (the default)."""

    type: ClassVar[Literal["create_or_edit_existing"]] = "create_or_edit_existing"


@attrs.frozen(kw_only=True)
class CreateSessionConfig:
    """Open the editor to create a new avatar."""

    type: ClassVar[Literal["create"]] = "create"


@attrs.frozen(kw_only=True)
class EditExistingSessionConfig:
    """Open the editor on one existing avatar."""

    type: ClassVar[Literal["edit_existing"]] = "edit_existing"
    avatar_id: str


SessionConfig = CreateOrEditExistingSessionConfig | CreateSessionConfig | EditExistingSessionConfig


@attrs.frozen(kw_only=True)
class NewSessionResponse(Answered):
    """Answer of New Session. ``url`` is opaque and short-lived: open it once."""

    url: str = attrs.field(repr=url_repr)
    id: str
    custom_upload_url: str | None = attrs.field(default=None, repr=url_repr)


@attrs.frozen(kw_only=True)
class AvatarListItem:
    """One avatar of a user. Fields the API adds later are kept in ``extra``."""

    id: str
    status: ScanStatus | str
    extra: Mapping[str, Any] = attrs.field(factory=dict, eq=False)

    @property
    def is_ready(self) -> bool:
        return self.status == ScanStatus.READY


@attrs.frozen(kw_only=True)
class NewAvatarResponse(Answered):
    """Answer of New Avatar: the avatar id and the pre-signed photo upload URL."""

    avatar_id: str
    upload_url: str = attrs.field(repr=url_repr)


@attrs.frozen(kw_only=True)
class AssetSlot:
    id: str


@attrs.frozen(kw_only=True)
class AssetSlotWithColor:
    id: str
    color: str | None = None
    """``#rrggbb`` or ``#rrggbbaa``."""


@attrs.frozen(kw_only=True)
class AssetSlots:
    """At most one asset per slot; ``None`` leaves the slot empty."""

    clothing: AssetSlot | None = None
    hair_and_headwear: AssetSlotWithColor | None = None
    eyewear: AssetSlotWithColor | None = None
    footwear: AssetSlot | None = None


@attrs.frozen(kw_only=True)
class BoneScale:
    """Scale factors; a value the API left out reads as ``None`` and is not sent."""

    head: float | None = None
    arms: float | None = None
    chest: float | None = None


@attrs.frozen(kw_only=True)
class ExternalAvatarCustomization(Answered):
    """An avatar's customization. Fields left ``None`` are not sent."""

    assets: AssetSlots | None = None
    body: str | None = None
    """Body variant id such as ``body_0``."""
    age: AgeModel | str | None = None
    metadata: Mapping[str, str] | None = None
    bone_scale: BoneScale | None = None
    skin_tone_correction: float | None = None


@attrs.frozen(kw_only=True)
class RenderResult(Answered):
    """A render task. ``render_url`` is temporary: download it within 15 minutes."""

    id: str
    status: RenderStatus | str
    render_url: str | None = attrs.field(default=None, repr=url_repr)


@attrs.frozen(kw_only=True)
class NewExportResponse(Answered):
    """``ready`` with a temporary ``url``, or ``pending`` until ``export.ready`` arrives."""

    status: ExportStatus | str
    url: str | None = attrs.field(default=None, repr=url_repr)

    @property
    def is_ready(self) -> bool:
        return self.status == ExportStatus.READY


@attrs.frozen(kw_only=True)
class PhotoUploadResult(Answered):
    """The upload URL's answer (``{"status": "ok"}``-like); the whole body is in ``raw``."""

    status: str | None
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False)


@attrs.frozen(kw_only=True)
class DownloadedFile:
    """A file :meth:`AvaturnClient.download` wrote, whole: ``size`` bytes at ``path``."""

    path: Path
    size: int
