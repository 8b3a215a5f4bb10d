"""Webhook authentication: Standard Webhooks signatures or a shared token.

Avaturn does not document how it signs webhooks, so :class:`WebhookVerifier`
supports the interoperable Standard Webhooks scheme (the one Svix uses) and a
plain shared-token mode. Verification always runs over the raw body bytes.

Standard Webhooks, as checked here:

* headers ``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` (or their
  ``svix-*`` aliases), names in any casing;
* the timestamp is an integer number of seconds within ``tolerance`` of the
  clock, in both directions (a replay guard);
* ``webhook-signature`` holds space-separated ``v1,<base64>`` entries (other
  versions are skipped); any entry matching any configured secret is enough;
* comparisons are constant-time, and no message names a secret or the
  expected signature.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import time
from binascii import b2a_base64
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import NoReturn, TypeAlias

from .._errors import (
    ConfigurationError,
    WebhookInputError,
    WebhookVerificationError,
)
from ._events import DEFAULT_MAX_BODY_SIZE, Event, check_body_size, parse_unchecked_size
from ._signing import SigningKey, decode_secret, signed_content

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_SIGNATURE_ENTRIES",
    "MAX_SIGNATURE_HEADER_LENGTH",
    "MIN_SECRET_BYTES",
    "MIN_TOKEN_LENGTH",
    "VerificationFailure",
    "WebhookVerifier",
    "body_bytes",
    "header_value",
]

_ID_NAMES = ("webhook-id", "svix-id")
_TIMESTAMP_NAMES = ("webhook-timestamp", "svix-timestamp")
_SIGNATURE_NAMES = ("webhook-signature", "svix-signature")
# Bounds int() on hostile input (its cost grows with length, and huge values
# overflow the float comparison); 15 digits reach far past year 30000.
_MAX_DIGITS = 15
_DIGEST_SIZE = hashlib.sha256().digest_size

MIN_SECRET_BYTES = 16
"""Shorter HMAC keys are refused: 128 bits is the least a guessing attack should face."""
MIN_TOKEN_LENGTH = 16
"""Shorter shared tokens are refused."""
MAX_ID_LENGTH = 256
"""A longer ``webhook-id`` is rejected before any HMAC (real ids are ~30 characters)."""
MAX_SIGNATURE_HEADER_LENGTH = 4096
"""A longer ``webhook-signature`` is rejected before any HMAC."""
MAX_SIGNATURE_ENTRIES = 16
"""Entries of ``webhook-signature`` considered; later ones are ignored."""

_GENERATE_SECRET = (
    "generate one with: python -c \"import base64, secrets; "
    "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\""
)
_GENERATE_TOKEN = (
    "generate one with: python -c \"import secrets; print(secrets.token_urlsafe(32))\""
)


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


def _reject(reason: VerificationFailure, message: str) -> NoReturn:
    raise WebhookVerificationError(message, reason=reason.value)


Headers: TypeAlias = "Mapping[str, str] | Mapping[str, bytes] | Mapping[bytes, bytes]"


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


def header_value(headers: Headers, names: Sequence[str]) -> str | None:
    """The first non-empty header among ``names`` (lower-case), in any casing.

    Values may be ``str`` or ``bytes``, and names too (a raw ASGI header list
    turned into a ``dict``). Exact lower-case ``str`` lookups come first: they
    are what ASGI adapters, aiohttp's case-insensitive ``CIMultiDict`` and most
    callers provide, so the scan only runs when those miss. Any other value for
    one of ``names`` (``None``, a number...) is a :class:`WebhookInputError`.
    """
    get = _getter(headers)
    for name in names:
        value = get(name)
        if value:
            return value if type(value) is str else _header_text(name, value)
    found: dict[str, object] = {}
    for key, value in headers.items():
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


def _getter(headers: object) -> Callable[[str], object]:
    get = getattr(headers, "get", None)
    if get is None or not hasattr(headers, "items"):
        raise WebhookInputError(
            f"webhook headers must be a mapping, got {type(headers).__name__}: "
            "pass e.g. request.headers, or dict(scope['headers']) for raw ASGI"
        )
    getter: Callable[[str], object] = get
    return getter


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


def _check_limit(max_body_size: int) -> None:
    if max_body_size <= 0:
        raise ConfigurationError("max_body_size must be positive")


def _items(value: object, what: str) -> tuple[str | bytes, ...]:
    """One or several secrets (or tokens) as a tuple, refusing ``None`` by name."""
    if value is None:
        raise ConfigurationError(
            f"webhook {what} is not set (got None): is the environment variable you read it "
            "from (e.g. AVATURN_WEBHOOK_SECRET) defined?"
        )
    if isinstance(value, (str, bytes)):
        value = (value,)
    if not isinstance(value, Iterable):
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


def _coerce_secrets(secrets: object) -> tuple[bytes, ...]:
    keys = tuple(decode_secret(item) for item in _items(secrets, "secret"))
    for key in keys:
        if len(key) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"webhook secret is too weak: a {len(key)}-byte key, at least "
                f"{MIN_SECRET_BYTES} are required; use the secret Avaturn gave you, or "
                + _GENERATE_SECRET
            )
    return keys


def _coerce_tokens(tokens: object) -> tuple[bytes, ...]:
    encoded: list[bytes] = []
    for item in _items(tokens, "token"):
        text = item.decode("utf-8", "surrogateescape") if isinstance(item, bytes) else item
        if len(text) < MIN_TOKEN_LENGTH or not text.strip() or text.strip() != text:
            raise ConfigurationError(
                f"shared webhook token is too weak: at least {MIN_TOKEN_LENGTH} characters, "
                "not whitespace and no leading or trailing whitespace (HTTP strips it); "
                + _GENERATE_TOKEN
            )
        encoded.append(item.encode() if isinstance(item, str) else item)
    return tuple(encoded)


class WebhookVerifier:
    """Authenticates webhook deliveries; never shows its secrets in ``repr`` or errors.

    ``WebhookVerifier(secret_or_secrets)`` checks Standard Webhooks signatures:
    secrets are ``whsec_<base64>`` strings or raw key bytes (at least 16 bytes
    of key), several at once during a key rotation.
    ``WebhookVerifier.shared_token(token)`` compares a header (or query
    parameter) with a shared token instead.

    ``max_body_size`` is enforced before any hashing or parsing; ``now`` is the
    clock (seconds since the epoch), injectable for tests. Work per delivery is
    bounded: one HMAC per secret over the body, whatever the headers hold.
    """

    __slots__ = (
        "_keys",
        "_now",
        "_query_param",
        "_token_header",
        "_tokens",
        "_tolerance",
        "max_body_size",
    )

    def __init__(
        self,
        secret_or_secrets: str | bytes | Iterable[str | bytes],
        *,
        tolerance: timedelta = timedelta(minutes=5),
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        now: Callable[[], float] = time.time,
    ) -> None:
        if tolerance < timedelta(0):
            raise ConfigurationError("tolerance must not be negative")
        _check_limit(max_body_size)
        self._keys = tuple(SigningKey(key) for key in _coerce_secrets(secret_or_secrets))
        self._tolerance = tolerance.total_seconds()
        self._now = now
        self._tokens: tuple[bytes, ...] = ()
        self._token_header: str | None = None
        self._query_param: str | None = None
        self.max_body_size = max_body_size

    @classmethod
    def shared_token(
        cls,
        token: str | bytes | Iterable[str | bytes],
        header: str | None = "x-avaturn-token",
        *,
        query_param: str | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> WebhookVerifier:
        """A verifier that accepts a delivery carrying one of the shared ``token`` values.

        The token is read from ``header`` (any casing) or, when that header is
        absent, from the ``query_param`` the adapters pass in as ``query``; set
        ``header=None`` to accept the query parameter only. Tokens shorter than
        16 characters, or made of whitespace, are refused.
        """
        if header is None and query_param is None:
            raise ConfigurationError("shared_token needs a header, a query_param or both")
        _check_limit(max_body_size)
        self = cls.__new__(cls)
        self._keys = ()
        self._tolerance = 0.0
        self._now = time.time
        self._tokens = _coerce_tokens(token)
        self._token_header = header.lower() if header is not None else None
        self._query_param = query_param
        self.max_body_size = max_body_size
        return self

    @property
    def mode(self) -> str:
        """``"standard_webhooks"`` or ``"shared_token"``."""
        return "shared_token" if self._tokens else "standard_webhooks"

    def __repr__(self) -> str:
        if self._tokens:
            where = f"header={self._token_header!r}, query_param={self._query_param!r}"
            return f"WebhookVerifier.shared_token(tokens={len(self._tokens)}, {where})"
        return (
            f"WebhookVerifier(secrets={len(self._keys)}, "
            f"tolerance={timedelta(seconds=self._tolerance)!s})"
        )

    def verify(
        self,
        body: bytes,
        headers: Headers,
        *,
        query: Mapping[str, str] | None = None,
    ) -> None:
        """Raise :class:`WebhookVerificationError` unless the delivery is authentic.

        ``body`` must be the raw request body (``bytes``), never a decoded or
        re-serialized one; header values may be ``str`` or ``bytes``. Anything
        else raises :class:`WebhookInputError`. ``query`` (the request's query
        parameters) is only read in shared-token mode with a ``query_param``.
        Raises :class:`WebhookPayloadTooLargeError` for a body over ``max_body_size``.
        """
        if type(body) is not bytes:
            body = body_bytes(body)
        if len(body) > self.max_body_size:
            check_body_size(body, self.max_body_size)
        if self._tokens:
            self._verify_token(headers, query)
        else:
            self._verify_signature(body, headers)

    def verify_and_parse(
        self,
        body: bytes,
        headers: Headers,
        *,
        query: Mapping[str, str] | None = None,
    ) -> Event:
        """:meth:`verify`, then :func:`parse_event`: the one call a receiver needs."""
        # verify() inlined: this is the hot path, and a call is measurable here.
        if type(body) is not bytes:
            body = body_bytes(body)
        if len(body) > self.max_body_size:
            check_body_size(body, self.max_body_size)
        if self._tokens:
            self._verify_token(headers, query)
        else:
            self._verify_signature(body, headers)
        return parse_unchecked_size(body)

    # -- shared token -------------------------------------------------------------

    def _verify_token(self, headers: Headers, query: Mapping[str, str] | None) -> None:
        given: str | None = None
        if self._token_header is not None:
            given = header_value(headers, (self._token_header,))
        if given is None and self._query_param is not None and query is not None:
            given = query.get(self._query_param) or None
        if given is None:
            _reject(VerificationFailure.MISSING_TOKEN, "webhook token is missing")
        candidate = given.encode("utf-8", "surrogateescape")
        # No early exit: every configured token is compared, so timing does not
        # reveal which one (if any) matched.
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(candidate, token)
        if not matched:
            _reject(VerificationFailure.INVALID_TOKEN, "webhook token does not match")

    # -- Standard Webhooks --------------------------------------------------------

    def _verify_signature(self, body: bytes, headers: Headers) -> None:
        # The hot path of every delivery, kept flat (each call costs a few percent
        # here): exact lower-case str lookups first, aliases, other casings and
        # bytes only when those miss; one HMAC per key; a constant-time string
        # comparison per ``v1`` entry. Failures are explained by the slow path.
        get = _getter(headers)
        msg_id = get("webhook-id")
        timestamp = get("webhook-timestamp")
        signatures = get("webhook-signature")
        if not (type(msg_id) is str and msg_id):
            msg_id = header_value(headers, _ID_NAMES)
        if not (type(timestamp) is str and timestamp):
            timestamp = header_value(headers, _TIMESTAMP_NAMES)
        if not (type(signatures) is str and signatures):
            signatures = header_value(headers, _SIGNATURE_NAMES)
        if msg_id is None or timestamp is None or signatures is None:
            _reject_missing(msg_id, timestamp, signatures)
        if len(msg_id) > MAX_ID_LENGTH or len(signatures) > MAX_SIGNATURE_HEADER_LENGTH:
            _reject(VerificationFailure.HEADER_TOO_LONG, "webhook header is too long")
        if not (timestamp.isdigit() and timestamp.isascii() and len(timestamp) <= _MAX_DIGITS):
            _reject(VerificationFailure.INVALID_TIMESTAMP, "webhook-timestamp is not an integer")
        skew = int(timestamp) - self._now()
        if skew < -self._tolerance or skew > self._tolerance:
            _reject_skew(skew)
        signed = signed_content(msg_id, timestamp, body)
        entries = signatures.split(" ", MAX_SIGNATURE_ENTRIES)[:MAX_SIGNATURE_ENTRIES]
        if not signatures.isascii():
            entries = []
        digests: list[bytes] = []
        for key in self._keys:
            digest = key.digest(signed)
            expected = "v1," + b2a_base64(digest, newline=False).decode()
            for entry in entries:
                if hmac.compare_digest(entry, expected):
                    return
            digests.append(digest)
        failure = _slow_match(signatures, digests)
        if failure is not None:
            _reject(failure, _FAILURE_MESSAGES[failure])


def _reject_skew(skew: float) -> NoReturn:
    if skew < 0:
        _reject(VerificationFailure.TIMESTAMP_TOO_OLD, "webhook timestamp is too old")
    _reject(VerificationFailure.TIMESTAMP_TOO_NEW, "webhook timestamp is too new")


def _reject_missing(msg_id: str | None, timestamp: str | None, signatures: str | None) -> NoReturn:
    found = {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": signatures}
    missing = ", ".join(name for name, value in found.items() if value is None)
    _reject(VerificationFailure.MISSING_HEADER, f"missing webhook header(s): {missing}")


_FAILURE_MESSAGES = {
    VerificationFailure.NO_MATCHING_SIGNATURE: "no webhook signature matched",
    VerificationFailure.INVALID_SIGNATURE: "webhook-signature header is malformed",
    VerificationFailure.UNSUPPORTED_SIGNATURE_VERSION: "webhook-signature has no v1 signature",
}


def _slow_match(signatures: str, expected: list[bytes]) -> VerificationFailure | None:
    """Failures only: decode the entries considered to say precisely why none matched.

    Returns ``None`` on a match: a non-canonical base64 spelling of a correct
    signature (missed by the fast string comparison) is accepted, as the
    reference library does. At most ``MAX_SIGNATURE_ENTRIES`` entries are read.
    """
    well_formed = malformed = False
    for entry in signatures.split()[:MAX_SIGNATURE_ENTRIES]:
        version, comma, value = entry.partition(",")
        if not comma:
            malformed = True
            continue
        if version != "v1":
            continue
        try:
            digest = base64.b64decode(value.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error, ValueError):
            malformed = True
            continue
        if len(digest) != _DIGEST_SIZE:
            malformed = True
            continue
        well_formed = True
        if any(hmac.compare_digest(digest, e) for e in expected):
            return None
    if well_formed:
        return VerificationFailure.NO_MATCHING_SIGNATURE
    if malformed:
        return VerificationFailure.INVALID_SIGNATURE
    return VerificationFailure.UNSUPPORTED_SIGNATURE_VERSION
