"""The emulator's state and rules, free of network I/O so every decision can be tested alone.

:class:`EmulatorState` holds the records (``_records``) and applies the API's
rules to plain JSON-like request bodies, validated by ``_validation``.
Failures are raised as :class:`EmulatorHTTPError`, which the server turns into a
response. With a ``state_file``, each change is also saved through ``_store``.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from ..._errors import ConfigurationError
from .._webhooks import random_user_id
from ._records import AvatarRecord, ExportRecord, Outcome, RenderRecord, SessionRecord, UserRecord
from ._store import EmulatorStore
from ._validation import (
    ASSET_SLOTS,
    SESSION_TYPES,
    EmulatorHTTPError,
    Loc,
    UploadedPhoto,
    default_customization,
    form_errors,
    invalid,
    not_found,
    optional_object,
    parse_customization,
    photo_errors,
    require_object,
    require_str,
    require_uuid,
    validation_error,
)

__all__ = ["DEFAULT_ASSETS", "SAMPLE_ASSETS", "EmulatorState"]

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
        # The photos each avatar was made from, by form field: memory only, never saved.
        self.photos: dict[str, dict[str, bytes]] = {}
        # Avatar ids by user, in creation order: listing one user's avatars must not
        # scan every avatar (a poll per row would make a run quadratic).
        self._avatars_of: dict[str, dict[str, None]] = {}
        self._store: EmulatorStore | None = None

    # persistence (``_store``)

    def attach(self, store: EmulatorStore) -> None:
        """Load the records ``store`` holds (replacing these) and save every change there."""
        tables, catalog = store.load()
        self.users, self.avatars = tables["users"], tables["avatars"]
        self.renders, self.exports = tables["renders"], tables["exports"]
        self.sessions = tables["sessions"]
        if catalog is not None:
            self.assets = dict(catalog["assets"])
            self.retired_assets = set(catalog["retired"])
        self._avatars_of = {}
        for avatar in sorted(self.avatars.values(), key=lambda a: a.created_at):
            self._avatars_of.setdefault(avatar.user_id, {})[avatar.id] = None
            if avatar.upload_state == "receiving":
                avatar.upload_state = "none"  # its connection died with the old process
        self._store = store

    def _save(self, kind: str, key: str) -> None:
        """Write one record (gone from its table: deleted) before the change is answered."""
        if self._store is not None:
            self._store.save(kind, key, getattr(self, kind).get(key))

    def _save_catalog(self) -> None:
        if self._store is not None:
            self._store.save_catalog(self.assets, self.retired_assets)

    # users and sessions

    def create_user(self) -> UserRecord:
        user = UserRecord(id=random_user_id(), created_at=datetime.now(timezone.utc))
        self.users[user.id] = user
        self._save("users", user.id)
        return user

    def user(self, user_id: str) -> UserRecord:
        user = self.users.get(user_id)
        if user is None:
            raise not_found("User")
        return user

    def delete_user(self, user_id: str) -> None:
        self.user(user_id)
        del self.users[user_id]
        self._save("users", user_id)
        self._drop("avatars", lambda a: a.user_id == user_id)
        for avatar_id in self._avatars_of.pop(user_id, {}):
            self.photos.pop(avatar_id, None)
        self._drop("renders", lambda r: r.user_id == user_id)
        self._drop("exports", lambda e: e.user_id == user_id)
        self._drop("sessions", lambda s: s.user_id == user_id)

    def _drop(self, kind: str, doomed: Callable[[Any], bool]) -> None:
        records: dict[str, Any] = getattr(self, kind)
        for key in [key for key, record in records.items() if doomed(record)]:
            del records[key]
            self._save(kind, key)

    def create_session(self, body: object) -> SessionRecord:
        obj = require_object(body, ("body",))
        user_id = require_str(obj, "user_id", ("body",))
        config = self._parse_session_config(optional_object(obj, "config", ("body",)))
        self.user(user_id)
        if config["type"] == "edit_existing":
            self.owned_avatar(user_id, config["avatar_id"])
        session = SessionRecord(id=str(uuid.uuid4()), user_id=user_id, config=config)
        self.sessions[session.id] = session
        self._save("sessions", session.id)
        return session

    @staticmethod
    def _parse_session_config(obj: Mapping[str, Any] | None) -> dict[str, Any]:
        loc: Loc = ("body", "config")
        if obj is None:
            return {"type": "create_or_edit_existing"}
        kind = obj.get("type")
        if kind is None:
            message = "Unable to extract tag using discriminator 'type'"
            raise invalid(loc, message, "union_tag_not_found", discriminator="'type'")
        if kind not in SESSION_TYPES:
            expected = ", ".join(f"'{t}'" for t in SESSION_TYPES)
            message = (
                f"Input tag '{kind}' found using 'type' does not match any of the "
                f"expected tags: {expected}"
            )
            ctx = {"discriminator": "'type'", "tag": str(kind), "expected_tags": expected}
            raise invalid(loc, message, "union_tag_invalid", **ctx)
        if kind != "edit_existing":
            return {"type": kind}
        avatar_id = require_uuid(obj, "avatar_id", (*loc, kind))
        return {"type": kind, "avatar_id": avatar_id}

    # avatars

    def create_avatar(self, body: object) -> AvatarRecord:
        obj = require_object(body, ("body",))
        user_id = require_str(obj, "user_id", ("body",))
        self.user(user_id)
        avatar = AvatarRecord(
            id=str(uuid.uuid4()),
            user_id=user_id,
            created_at=datetime.now(timezone.utc),
            upload_signature=secrets.token_urlsafe(24),
        )
        self.avatars[avatar.id] = avatar
        self._avatars_of.setdefault(user_id, {})[avatar.id] = None
        self._save("avatars", avatar.id)
        return avatar

    def avatar(self, avatar_id: str) -> AvatarRecord:
        avatar = self.avatars.get(avatar_id)
        if avatar is None:
            raise not_found("Avatar")
        return avatar

    def owned_avatar(self, user_id: str, avatar_id: str) -> AvatarRecord:
        avatar = self.avatar(avatar_id)
        if avatar.user_id != user_id:
            # Another user's avatar is reported like a missing one: ids do not leak.
            raise not_found("Avatar")
        return avatar

    def list_avatars(self, user_id: str, *, include_not_ready: bool) -> list[dict[str, Any]]:
        self.user(user_id)
        owned = (self.avatars[avatar_id] for avatar_id in self._avatars_of.get(user_id, ()))
        return [
            avatar.list_item() for avatar in owned if include_not_ready or avatar.status == "ready"
        ]

    def delete_avatar(self, user_id: str, avatar_id: str) -> None:
        self.user(user_id)
        self.owned_avatar(user_id, avatar_id)
        del self.avatars[avatar_id]
        self.photos.pop(avatar_id, None)
        self._avatars_of.get(user_id, {}).pop(avatar_id, None)
        self._save("avatars", avatar_id)
        self._drop("exports", lambda e: e.avatar_id == avatar_id)

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
        self, avatar: AvatarRecord, photos: Mapping[str, UploadedPhoto], fields: Mapping[str, str]
    ) -> None:
        """Validate the received form; on success the avatar starts processing."""
        errors = [*photo_errors(photos), *form_errors(fields)]
        if errors:
            raise validation_error(*errors)
        avatar.body_type = fields["body-type"]
        avatar.telephoto = fields.get("telephoto") == "true"
        avatar.photo_sizes = {name: photo.size for name, photo in photos.items()}
        avatar.photo_sha256 = {name: photo.sha256 for name, photo in photos.items()}
        avatar.upload_bytes = sum(photo.size for photo in photos.values())
        self.photos[avatar.id] = {name: photo.data for name, photo in photos.items()}
        avatar.upload_state = "done"
        avatar.status = "processing"
        self._save("avatars", avatar.id)

    def finish_processing(self, avatar: AvatarRecord, outcome: Outcome) -> dict[str, Any]:
        """The avatar's processing ends: its ``avatar.ready`` event."""
        avatar.status = outcome
        self._save("avatars", avatar.id)
        ids = {"avatar_id": avatar.id, "user_id": avatar.user_id}
        return {"event": "avatar.ready", **ids, "status": outcome, "session_id": None}

    # customization

    def get_customization(self, avatar_id: str) -> dict[str, Any]:
        return self.avatar(avatar_id).customization or default_customization()

    def set_customization(self, avatar_id: str, body: object) -> None:
        # Like FastAPI, the body is validated (422) before the handler looks anything up.
        customization = parse_customization(body)
        avatar = self.avatar(avatar_id)
        self._check_assets(customization["assets"])
        avatar.customization = customization
        avatar.version += 1
        self._save("avatars", avatar.id)

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
            self._save_catalog()

    def add_asset(self, asset_id: str, slot: str) -> None:
        if slot not in ASSET_SLOTS:
            raise ConfigurationError(f"unknown slot {slot!r}; expected one of {ASSET_SLOTS}")
        canonical = str(uuid.UUID(asset_id))
        self.assets[canonical] = slot
        self.retired_assets.discard(canonical)
        self._save_catalog()

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
        self._save("renders", render.id)
        return render

    def finish_render(self, render_id: str, outcome: Outcome) -> RenderRecord | None:
        render = self.renders.get(render_id)
        if render is None or render.avatar_id not in self.avatars:
            return None
        render.status = outcome
        self._save("renders", render.id)
        return render

    def request_export(self, avatar_id: str) -> tuple[ExportRecord, bool]:
        """The export of the avatar's current version, and whether a new job started."""
        avatar = self._renderable(avatar_id, "export")
        current = (avatar.id, avatar.version)
        for export in self.exports.values():
            if (export.avatar_id, export.version) == current and export.status != "failed":
                return export, False
        export = ExportRecord(
            token=secrets.token_urlsafe(16),
            avatar_id=avatar.id,
            user_id=avatar.user_id,
            version=avatar.version,
        )
        self.exports[export.token] = export
        self._save("exports", export.token)
        return export, True

    def finish_export(self, token: str, outcome: Outcome) -> ExportRecord | None:
        export = self.exports.get(token)
        if export is None:
            return None
        export.status = outcome
        self._save("exports", token)
        return export
