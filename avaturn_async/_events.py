"""Typed webhook events and the parser that turns a raw body into one.

The parser is hand-written rather than driven by the shared cattrs converter:
it sits on the hot path of every delivery and is several times faster, while
keeping the project's reading rules: primitives are checked, not coerced; an
unknown ``status`` is kept as a plain ``str``; unknown fields are ignored but
stay readable in ``raw``; a field the API does not guarantee may be missing (an
``avatar.ready`` is only sure to carry ``event`` and ``avatar_id``); an unknown
event type becomes :class:`UnknownEvent`; any other mismatch raises
:class:`WebhookParseError` naming the field path, and nothing is half-built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NoReturn, TypeAlias, TypeVar

import attrs

from ._errors import WebhookParseError, WebhookPayloadTooLargeError
from ._redact import url_repr
from ._wire import WireEnum, decode_json

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "AvatarReady",
    "Event",
    "EventStatus",
    "ExportReady",
    "KnownEvent",
    "RenderReady",
    "UnknownEvent",
    "check_body_size",
    "event_to_dict",
    "parse_event",
]

DEFAULT_MAX_BODY_SIZE = 1024 * 1024
"""1 MiB: far above any real Avaturn event, low enough to refuse abuse cheaply."""


class EventStatus(WireEnum):
    """Outcome carried by every known event. Unknown values are kept as ``str``."""

    READY = "ready"
    FAILED = "failed"


@attrs.frozen(kw_only=True)
class KnownEvent:
    """Fields and helpers shared by the three documented events."""

    event: ClassVar[str]
    """The wire name, e.g. ``"avatar.ready"``."""
    avatar_id: str
    status: EventStatus | str | None = None
    """``EventStatus.READY`` or ``FAILED``; a value this version does not know stays a ``str``.

    Only ``avatar.ready`` may leave it out (``None``): the API guarantees that event
    nothing but ``event`` and ``avatar_id``. The other events always carry one.
    """
    user_id: str | None = None
    """The Avaturn user; ``None`` when the event does not say (``avatar.ready`` may not)."""
    raw: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)
    """The whole decoded body, including fields this version does not know."""

    @property
    def succeeded(self) -> bool:
        """The work finished and its result (if any) can be downloaded."""
        return self.status == EventStatus.READY

    @property
    def failed(self) -> bool:
        """Avaturn reported a failure. An unknown status is neither succeeded nor failed."""
        return self.status == EventStatus.FAILED


@attrs.frozen(kw_only=True)
class AvatarReady(KnownEvent):
    """``avatar.ready``: photo processing of an avatar finished (or failed)."""

    event: ClassVar[str] = "avatar.ready"
    session_id: str | None = None
    """The editor session the avatar came from, if any."""

    @property
    def succeeded(self) -> bool:
        """The avatar is ready: status ``ready``, or none at all (the event's name says so)."""
        return self.status is None or self.status == EventStatus.READY


@attrs.frozen(kw_only=True)
class ExportReady(KnownEvent):
    """``export.ready``: an export finished. ``export_url`` is temporary: download at once."""

    event: ClassVar[str] = "export.ready"
    status: EventStatus | str
    export_url: str | None = attrs.field(default=None, repr=url_repr)


@attrs.frozen(kw_only=True)
class RenderReady(KnownEvent):
    """``render.ready``: render task ``id`` finished. ``render_url`` lasts 15 minutes."""

    event: ClassVar[str] = "render.ready"
    status: EventStatus | str
    id: str
    """The render task id, as answered by ``renders/new``."""
    render_url: str | None = attrs.field(default=None, repr=url_repr)

    @property
    def render_id(self) -> str:
        """Alias of ``id``, for readability at call sites."""
        return self.id


@attrs.frozen(kw_only=True)
class UnknownEvent:
    """An event type this version does not know; ``raw`` holds the whole decoded body."""

    event: str
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, hash=False)


Event: TypeAlias = AvatarReady | ExportReady | RenderReady | UnknownEvent
"""Every value :func:`parse_event` can return."""

_STATUSES: dict[str, EventStatus] = {s.value: s for s in EventStatus}


def _fail(path: str, message: str) -> NoReturn:
    raise WebhookParseError(f"{message} at {path}", path=path)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__
    )


def _bad_str(data: dict[str, Any], name: str, *, optional: bool = False) -> NoReturn:
    """Raise for field ``name``, which the caller found is not a string."""
    if name not in data and not optional:
        _fail(f"$.{name}", "missing required field")
    expected = "a string or null" if optional else "a string"
    _fail(f"$.{name}", f"expected {expected}, got {_type_name(data[name])}")


def _optional_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and type(value) is not str:
        _bad_str(data, name, optional=True)
    return value


def _slot_setter(cls: type[Any], name: str) -> Callable[[Any, Any], None]:
    setter: Callable[[Any, Any], None] = getattr(cls, name).__set__
    return setter


# The parsers below fill the slots of a fresh instance directly instead of
# calling the attrs ``__init__``; every value is checked first. Measured
# 2026-12-06, the ``__init__`` moved ours / json floor from 1.10x to 1.26x at
# 250 B and 1.06x to 1.21x at 570 B, past the 1.1x target (``.venv/bin/python
# benchmarks/webhooks.py --quick``, 8 interleaved runs each, medians). Tests
# compare the result with the ``__init__`` path field by field, so a field
# added but not parsed fails them.
_new = object.__new__
_set_avatar_id = _slot_setter(KnownEvent, "avatar_id")
_set_user_id = _slot_setter(KnownEvent, "user_id")
_set_status = _slot_setter(KnownEvent, "status")
_set_raw = _slot_setter(KnownEvent, "raw")
_set_session_id = _slot_setter(AvatarReady, "session_id")
_set_export_url = _slot_setter(ExportReady, "export_url")
_set_render_id = _slot_setter(RenderReady, "id")
_set_render_url = _slot_setter(RenderReady, "render_url")

_K = TypeVar("_K", bound=KnownEvent)


def _common(cls: type[_K], data: dict[str, Any], *, status_optional: bool = False) -> _K:
    """A new ``cls`` with the fields every known event has, checked and set."""
    avatar_id = data.get("avatar_id")
    user_id = data.get("user_id")
    status = data.get("status")
    if type(avatar_id) is not str:
        _bad_str(data, "avatar_id")
    if user_id is not None and type(user_id) is not str:
        _bad_str(data, "user_id", optional=True)
    if type(status) is not str and not (status is None and status_optional):
        _bad_str(data, "status", optional=status_optional)
    event: _K = _new(cls)
    _set_avatar_id(event, avatar_id)
    _set_user_id(event, user_id)
    _set_status(event, None if status is None else _STATUSES.get(status, status))
    _set_raw(event, data)
    return event


def _avatar_ready(data: dict[str, Any]) -> AvatarReady:
    event = _common(AvatarReady, data, status_optional=True)
    _set_session_id(event, _optional_str(data, "session_id"))
    return event


def _export_ready(data: dict[str, Any]) -> ExportReady:
    event = _common(ExportReady, data)
    _set_export_url(event, _optional_str(data, "export_url"))
    return event


def _render_ready(data: dict[str, Any]) -> RenderReady:
    event = _common(RenderReady, data)
    render_id = data.get("id")
    if type(render_id) is not str:
        _bad_str(data, "id")
    _set_render_id(event, render_id)
    _set_render_url(event, _optional_str(data, "render_url"))
    return event


_PARSERS: dict[str, Callable[[dict[str, Any]], Event]] = {
    AvatarReady.event: _avatar_ready,
    ExportReady.event: _export_ready,
    RenderReady.event: _render_ready,
}


def check_body_size(body: bytes, max_body_size: int) -> None:
    """Raise :class:`WebhookPayloadTooLargeError` if ``body`` exceeds ``max_body_size``."""
    if len(body) > max_body_size:
        raise WebhookPayloadTooLargeError(
            f"webhook body of {len(body)} bytes exceeds the limit of {max_body_size} bytes",
            limit=max_body_size,
        )


# With the optional ``speedups`` extra, orjson reads bodies (several times faster
# than the standard library on webhook-sized bodies). Results are the same, with
# one difference outside the typed fields: an integer past 64 bits in ``raw``
# reads as a float, as orjson reads it. Whatever orjson refuses goes to the
# standard library, which words every error.
_UNRESOLVED: Any = object()
_fast_loads: Callable[[bytes], Any] | None = _UNRESOLVED
"""orjson's ``loads`` if installed, else ``None``; looked up on the first parse
(the webhook path's cold start, ARCHITECTURE.md)."""


def _resolve_fast_loads() -> Callable[[bytes], Any] | None:
    global _fast_loads
    try:
        from orjson import loads
    except ImportError:
        _fast_loads = None
    else:
        _fast_loads = loads
    return _fast_loads


def _decode(body: bytes) -> Any:
    """The standard library's reading of a body the first read refused; words every error."""
    try:
        return decode_json(body)
    except UnicodeDecodeError:
        _fail("$", "body is not UTF-8")
    except RecursionError:
        _fail("$", "body is nested too deeply")
    except ValueError as exc:
        # JSONDecodeError.msg is the parser's own wording, never body content.
        detail = getattr(exc, "msg", None) or str(exc)
        raise WebhookParseError(f"body is not JSON ({detail}) at $", path="$") from None


def parse_event(body: bytes, *, max_body_size: int = DEFAULT_MAX_BODY_SIZE) -> Event:
    """Parse a webhook body (raw bytes, UTF-8 JSON) into a typed :data:`Event`.

    Does not verify anything: use :meth:`WebhookVerifier.verify_and_parse` on
    untrusted input. Raises :class:`WebhookPayloadTooLargeError` before reading
    a body over ``max_body_size`` bytes, and :class:`WebhookParseError` (whose
    ``path`` names the field, e.g. ``$.avatar_id``) for anything malformed.
    """
    check_body_size(body, max_body_size)
    return parse_unchecked_size(body)


def parse_unchecked_size(body: bytes) -> Event:
    """:func:`parse_event` for a body whose size the caller has already checked."""
    loads = _fast_loads
    if loads is _UNRESOLVED:
        loads = _resolve_fast_loads()
    try:
        data = decode_json(body) if loads is None else loads(body)
    except (ValueError, RecursionError):
        # orjson refuses a few things the standard library reads (integers past
        # 64 bits, lone surrogate escapes): the standard library decides, and
        # words every error the same way with or without orjson.
        data = _decode(body)
    if type(data) is not dict:
        _fail("$", f"expected a JSON object, got {_type_name(data)}")
    name = data.get("event")
    if type(name) is not str:
        _bad_str(data, "event")
    parser = _PARSERS.get(name)
    return UnknownEvent(event=name, raw=data) if parser is None else parser(data)


def event_to_dict(event: Event) -> dict[str, Any]:
    """The wire form of ``event`` (what Avaturn would POST), ready for ``json.dumps``.

    Known events are written from their typed fields (``raw`` is not merged in);
    an :class:`UnknownEvent` is written as its ``raw`` body.
    """
    if isinstance(event, UnknownEvent):
        return {**event.raw, "event": event.event}
    data: dict[str, Any] = {"event": event.event}
    for field in attrs.fields(type(event)):
        value = getattr(event, field.name)
        if field.name == "raw" or (field.name == "status" and value is None):
            continue  # raw is not merged in; an avatar.ready may say nothing of its status
        data[field.name] = value.value if isinstance(value, EventStatus) else value
    return data
