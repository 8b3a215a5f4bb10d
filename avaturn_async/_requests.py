"""Avaturn requests without I/O: what a request and an answer are, and one builder per endpoint.

Each endpoint has a ``build_*`` function that checks its arguments strictly and
returns a :class:`Request`; ``_answers`` reads the :class:`Response` a transport
gives back. The transport (``_transport``) is the only place that talks to the
network.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

import attrs

from . import _converter
from . import _models as m
from ._errors import InvalidRequestError
from ._photos import PhotoUpload
from ._redact import redact_headers, url_repr

__all__ = ["API_PREFIX", "Request", "Response", "encode_query"]

API_PREFIX = "/api/v1"
SCENE_PATTERN = re.compile(r"^[a-zA-Z0-9_/]+$")
COLOR_PATTERN = re.compile(r"^#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-amzn-requestid")


def _shown_headers(headers: Mapping[str, str] | None) -> str:
    return repr(None if headers is None else redact_headers(headers))


@attrs.frozen(kw_only=True)
class Request:
    """One HTTP request, described; what a :class:`Transport` is asked to send.

    ``route`` names the endpoint (``"avatars.create"``) for logs and hooks.
    ``path`` is relative to the client's base URL; ``absolute_url`` is set only for
    the pre-signed photo upload. ``url(base_url)`` gives the whole target.
    ``idempotent`` decides which failures may be retried (see ``_retry``).
    The caller's ``extra_query`` and ``extra_body`` are already merged into
    ``query`` and ``json`` (``_extras``); its ``extra_headers`` travel apart.
    """

    route: str
    method: str
    path: str
    query: str = ""
    """Already encoded (``encode_query``): built once, where the parameters are checked."""
    json: Any = None
    has_json: bool = False
    upload: PhotoUpload | None = None
    absolute_url: str | None = attrs.field(default=None, repr=url_repr)
    authenticated: bool = True
    idempotent: bool
    extra_headers: Mapping[str, str] | None = attrs.field(default=None, repr=_shown_headers)
    """Headers added by the caller (``extra_headers=``); the client's own win a clash."""

    @property
    def params(self) -> dict[str, str]:
        """The query parameters, decoded."""
        return dict(parse_qsl(self.query, keep_blank_values=True))

    def url(self, base_url: str) -> str:
        """The absolute URL to send to, query included.

        The query goes into the URL string rather than to aiohttp as ``params=``:
        the string is then parsed once (and cached by yarl), not extended per request.
        """
        url = self.absolute_url or f"{base_url}{self.path}"
        if self.query:
            url = f"{url}{'&' if '?' in url else '?'}{self.query}"
        return url

    @property
    def display_path(self) -> str:
        """The path for messages: never a query string, which may hold a signature."""
        return self.path if self.absolute_url is None else m.redact_url(self.absolute_url) or ""


@attrs.frozen(kw_only=True)
class Response:
    """An HTTP answer, read whole (API answers are small); what a transport returns."""

    status: int
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b""
    attempts: int = 1
    """Set by the retry loop: the attempts it took to get this answer."""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        """A header by name, any casing."""
        value = self.headers.get(name)
        if value is not None:
            return value
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    @property
    def request_id(self) -> str | None:
        for name in REQUEST_ID_HEADERS:
            value = self.header(name)
            if value:
                return value
        return None


def _check_user_id(user_id: str) -> str:
    if not isinstance(user_id, str) or not user_id or user_id.isspace():
        raise InvalidRequestError("user_id must be a non-empty string")
    return user_id


def _check_uuid(name: str, value: str | uuid.UUID) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise InvalidRequestError(f"{name} must be a UUID, got {value!r}")


_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9_.~-]+")


def _segment(value: str) -> str:
    # Ids are nearly always plain: skip quote() (and its cache lookup) for them.
    return value if _PLAIN_SEGMENT.fullmatch(value) else quote(value, safe="")


def encode_query(params: Mapping[str, str]) -> str:
    """``key=value&...``, every key and value percent-encoded."""
    return "&".join([f"{_segment(key)}={_segment(value)}" for key, value in params.items()])


def _check_customization(c: m.ExternalAvatarCustomization) -> None:
    if not isinstance(c, m.ExternalAvatarCustomization):
        raise InvalidRequestError("customization must be an ExternalAvatarCustomization")
    if c.assets is not None:
        for slot in ("clothing", "hair_and_headwear", "eyewear", "footwear"):
            asset = getattr(c.assets, slot)
            if asset is None:
                continue
            _check_uuid(f"assets.{slot}.id", asset.id)
            color = getattr(asset, "color", None)
            if color is not None and not (isinstance(color, str) and COLOR_PATTERN.match(color)):
                raise InvalidRequestError(
                    f"assets.{slot}.color must look like #rrggbb or #rrggbbaa, got {color!r}"
                )
    for name in ("body", "age"):
        value = getattr(c, name)
        if value is not None and (not isinstance(value, str) or not value):
            raise InvalidRequestError(f"{name} must be a non-empty string")
    if c.metadata is not None and not all(
        isinstance(k, str) and isinstance(v, str) for k, v in c.metadata.items()
    ):
        raise InvalidRequestError("metadata must map strings to strings")
    numbers: dict[str, Any] = {"skin_tone_correction": c.skin_tone_correction}
    if c.bone_scale is not None:
        numbers.update(
            {f"bone_scale.{k}": getattr(c.bone_scale, k) for k in ("head", "arms", "chest")}
        )
    for name, number in numbers.items():
        finite = isinstance(number, (int, float)) and math.isfinite(number)
        if number is not None and (isinstance(number, bool) or not finite):
            raise InvalidRequestError(f"{name} must be a finite number, got {number!r}")


_CREATE_USER = Request(
    route="users.create", method="POST", path=f"{API_PREFIX}/users/new", idempotent=False
)


def build_create_user() -> Request:
    # Immutable and argument-free: built once. Built per call, the SDK's own CPU
    # per users.create went 4.6 -> 6.5 us (``.venv/bin/python benchmarks/client.py
    # --own --rounds 5 --calls 1500``, 8 interleaved runs each, 2026-12-06).
    return _CREATE_USER


def build_delete_user(user_id: str) -> Request:
    path = f"{API_PREFIX}/users/{_segment(_check_user_id(user_id))}"
    return Request(route="users.delete", method="DELETE", path=path, idempotent=True)


def build_create_session(user_id: str, config: m.SessionConfig | None) -> Request:
    body: dict[str, Any] = {"user_id": _check_user_id(user_id)}
    if config is not None:
        if isinstance(config, m.EditExistingSessionConfig):
            avatar_id = _check_uuid("config.avatar_id", config.avatar_id)
            config = m.EditExistingSessionConfig(avatar_id=avatar_id)
        elif not isinstance(config, (m.CreateOrEditExistingSessionConfig, m.CreateSessionConfig)):
            raise InvalidRequestError("config must be one of the session config classes")
        body["config"] = _converter.unstructure(config)
    return Request(
        route="sessions.create",
        method="POST",
        path=f"{API_PREFIX}/sessions/new",
        json=body,
        has_json=True,
        idempotent=False,
    )


# Encoded once: per call, avatars.list went 11.4 -> 13.0 us of the SDK's own CPU
# (``benchmarks/client.py --own``, as for ``build_create_user``).
_INCLUDE_NOT_READY = {
    flag: encode_query({"include_not_ready": "true" if flag else "false"}) for flag in (True, False)
}


def build_list_avatars(user_id: str, include_not_ready: bool) -> Request:
    if not isinstance(include_not_ready, bool):
        raise InvalidRequestError("include_not_ready must be a bool")
    path = f"{API_PREFIX}/users/{_segment(_check_user_id(user_id))}/avatars"
    query = _INCLUDE_NOT_READY[include_not_ready]
    return Request(route="avatars.list", method="GET", path=path, query=query, idempotent=True)


def build_create_avatar(user_id: str) -> Request:
    body = {"user_id": _check_user_id(user_id)}
    path = f"{API_PREFIX}/avatars/new"
    return Request(
        route="avatars.create", method="POST", path=path, json=body, has_json=True, idempotent=False
    )


def build_get_customization(avatar_id: str | uuid.UUID) -> Request:
    path = f"{API_PREFIX}/avatars/{_segment(_check_uuid('avatar_id', avatar_id))}/customization"
    return Request(route="avatars.get_customization", method="GET", path=path, idempotent=True)


def build_set_customization(
    avatar_id: str | uuid.UUID, customization: m.ExternalAvatarCustomization
) -> Request:
    avatar = _check_uuid("avatar_id", avatar_id)
    _check_customization(customization)
    return Request(
        route="avatars.set_customization",
        method="PUT",
        path=f"{API_PREFIX}/avatars/{_segment(avatar)}/customization",
        json=_converter.unstructure(customization),
        has_json=True,
        idempotent=True,
    )


def build_delete_avatar(user_id: str, avatar_id: str | uuid.UUID) -> Request:
    user = _segment(_check_user_id(user_id))
    avatar = _segment(_check_uuid("avatar_id", avatar_id))
    path = f"{API_PREFIX}/users/{user}/avatars/{avatar}"
    return Request(route="avatars.delete", method="DELETE", path=path, idempotent=True)


def build_create_render(
    avatar_id: str | uuid.UUID, scene: str, format: m.RenderFormat | m.RenderFormatName
) -> Request:
    avatar = _check_uuid("avatar_id", avatar_id)
    if not isinstance(scene, str) or not SCENE_PATTERN.match(scene):
        raise InvalidRequestError(f"scene must match {SCENE_PATTERN.pattern}, got {scene!r}")
    try:
        fmt = m.RenderFormat(format)
    except ValueError:
        raise InvalidRequestError(f"format must be jpg, png or webp, got {format!r}") from None
    query = encode_query({"avatar_id": avatar, "scene": scene, "format": fmt.value})
    path = f"{API_PREFIX}/renders/new"
    return Request(route="renders.create", method="POST", path=path, query=query, idempotent=False)


def build_create_export(avatar_id: str | uuid.UUID) -> Request:
    query = encode_query({"avatar_id": _check_uuid("avatar_id", avatar_id)})
    # Idempotent by the API's own rule: asking again answers the same export.
    path = f"{API_PREFIX}/exports/new"
    return Request(route="exports.create", method="POST", path=path, query=query, idempotent=True)


def build_upload(upload_url: str, upload: PhotoUpload) -> Request:
    if not isinstance(upload_url, str) or not upload_url.startswith(("http://", "https://")):
        raise InvalidRequestError("upload_url must be an absolute http(s) URL")
    return Request(
        route="upload",
        method="POST",
        path="",
        absolute_url=upload_url,
        upload=upload,
        authenticated=False,
        idempotent=False,
    )
