"""What every verifier shares: the protocol, failure reasons, and the input boundary.

Requests reach a verifier from many frameworks: header values as ``str``
(aiohttp, Starlette) or ``bytes`` (raw ASGI), names in any casing. This module
turns them into text once, and turns what no request can carry (a ``str`` body,
an ``int`` header) into a :class:`WebhookInputError` that says what to pass.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NoReturn, Protocol, TypeAlias

from .._errors import ConfigurationError, WebhookInputError, WebhookVerificationError
from .._events import Event

__all__ = [
    "ID_HEADERS",
    "SIGNATURE_HEADERS",
    "TIMESTAMP_HEADERS",
    "Headers",
    "VerificationFailure",
    "Verifier",
    "body_bytes",
    "check_limit",
    "configured_values",
    "header_getter",
    "header_value",
    "reject",
]

Headers: TypeAlias = "Mapping[str, str] | Mapping[str, bytes] | Mapping[bytes, bytes]"
"""Request headers as frameworks hand them over: values (and names) ``str`` or ``bytes``."""

# Standard Webhooks' header names, then Svix's aliases: for :func:`header_value`.
ID_HEADERS = ("webhook-id", "svix-id")
TIMESTAMP_HEADERS = ("webhook-timestamp", "svix-timestamp")
SIGNATURE_HEADERS = ("webhook-signature", "svix-signature")


class VerificationFailure(str, enum.Enum):
    """Why a webhook was rejected (``WebhookVerificationError.reason``)."""

    MISSING_HEADER = "missing_header"
    HEADER_TOO_LONG = "header_too_long"
    """``webhook-id`` or ``webhook-signature`` is longer than any real one (bounded work)."""
    INVALID_TIMESTAMP = "invalid_timestamp"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    TIMESTAMP_TOO_NEW = "timestamp_too_new"
    INVALID_SIGNATURE = "invalid_signature"
    """The signature header is malformed (no ``version,`` prefix, bad base64, wrong length)."""
    NO_MATCHING_SIGNATURE = "no_matching_signature"
    UNSUPPORTED_SIGNATURE_VERSION = "unsupported_signature_version"
    MISSING_TOKEN = "missing_token"
    INVALID_TOKEN = "invalid_token"


class Verifier(Protocol):
    """What the pipeline and the adapters need from a verifier.

    :class:`WebhookVerifier` (Standard Webhooks signatures) and
    :class:`SharedTokenVerifier` satisfy it.
    """

    @property
    def max_body_size(self) -> int:
        """Adapters stop reading a body past this many bytes."""
        ...

    def verify(
        self, body: bytes, headers: Headers, *, query: Mapping[str, str] | None = None
    ) -> None:
        """Raise :class:`WebhookVerificationError` unless the delivery is authentic."""
        ...

    def verify_and_parse(
        self, body: bytes, headers: Headers, *, query: Mapping[str, str] | None = None
    ) -> Event:
        """:meth:`verify`, then parse the body into a typed event."""
        ...


def reject(reason: VerificationFailure, message: str) -> NoReturn:
    raise WebhookVerificationError(message, reason=reason.value)


def _header_text(name: str, value: object) -> str:
    """A header value as text: ``bytes`` (raw ASGI) are decoded as aiohttp does."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    raise WebhookInputError(
        f"header {name!r} must be str or bytes, got {type(value).__name__}: pass the "
        "request's headers as your framework gives them (a mapping of names to str or bytes)"
    )


def header_getter(headers: object) -> Callable[[str], object]:
    """``headers.get``, or a :class:`WebhookInputError` if ``headers`` is not a mapping."""
    try:
        getter: Callable[[str], object] = headers.get  # type: ignore[attr-defined]
    except AttributeError:
        _not_a_mapping(headers)
    return getter


def _not_a_mapping(headers: object) -> NoReturn:
    raise WebhookInputError(
        f"webhook headers must be a mapping, got {type(headers).__name__}: "
        "pass e.g. request.headers, or dict(scope['headers']) for raw ASGI"
    )


def header_value(headers: Headers, names: Sequence[str]) -> str | None:
    """The first non-empty header among ``names`` (lower-case), in any casing.

    Values may be ``str`` or ``bytes``, and names too (a raw ASGI header list
    turned into a ``dict``). Exact lower-case ``str`` lookups come first: they
    are what ASGI adapters, aiohttp's case-insensitive ``CIMultiDict`` and most
    callers provide, so the scan only runs when those miss. Any other value for
    one of ``names`` (``None``, a number...) is a :class:`WebhookInputError`.
    """
    get = header_getter(headers)
    for name in names:
        value = get(name)
        if value:
            return value if type(value) is str else _header_text(name, value)
    found: dict[object, object] = {}
    items = getattr(headers, "items", None)
    if items is None:
        _not_a_mapping(headers)
    for key, value in items():
        text = key.decode("latin-1") if isinstance(key, (bytes, bytearray)) else key
        lowered = text.lower() if isinstance(text, str) else text
        if lowered in names:
            found.setdefault(lowered, value)
    for name in names:
        if name in found:
            text = _header_text(name, found[name])
            if text:
                return text
    return None


def body_bytes(body: object) -> bytes:
    """``body`` as ``bytes``; a ``str`` or anything else is a :class:`WebhookInputError`."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, str):
        raise WebhookInputError(
            "webhook body must be the raw request body as bytes, got str: pass the bytes "
            "exactly as received (e.g. await request.body()); decoding and re-encoding "
            "can change them and break the signature"
        )
    raise WebhookInputError(
        f"webhook body must be the raw request body as bytes, got {type(body).__name__}"
    )


def check_limit(max_body_size: int) -> None:
    if max_body_size <= 0:
        raise ConfigurationError("max_body_size must be positive")


def configured_values(value: object, what: str) -> tuple[str | bytes, ...]:
    """One or several secrets (or tokens) as a tuple, refusing ``None`` by name."""
    if value is None:
        raise ConfigurationError(
            f"webhook {what} is not set (got None): is the environment variable you read it "
            "from (e.g. AVATURN_WEBHOOK_SECRET) defined?"
        )
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        value = (value,)
    items: list[str | bytes] = []
    for item in value:
        if not isinstance(item, (str, bytes)):
            kind = type(item).__name__
            raise ConfigurationError(f"webhook {what} must be str or bytes, got {kind}")
        items.append(item)
    if not items:
        raise ConfigurationError(f"at least one webhook {what} is required")
    return tuple(items)
