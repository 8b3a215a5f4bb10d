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
from typing import NoReturn

from .._errors import ConfigurationError, WebhookVerificationError
from .._events import DEFAULT_MAX_BODY_SIZE, Event, check_body_size, parse_unchecked_size
from .._public import public
from ._signing import decode_secret

__all__ = ["VerificationFailure", "WebhookVerifier", "header_value"]

_ID_NAMES = ("webhook-id", "svix-id")
_TIMESTAMP_NAMES = ("webhook-timestamp", "svix-timestamp")
_SIGNATURE_NAMES = ("webhook-signature", "svix-signature")
# Bounds int() on hostile input (its cost grows with length, and huge values
# overflow the float comparison); 15 digits reach far past year 30000.
_MAX_DIGITS = 15
_DIGEST_SIZE = hashlib.sha256().digest_size
_BLOCK_SIZE = hashlib.sha256().block_size
_IPAD = bytes(byte ^ 0x36 for byte in range(256))
_OPAD = bytes(byte ^ 0x5C for byte in range(256))


class VerificationFailure(str, enum.Enum):
    """Why a webhook was rejected (``WebhookVerificationError.reason``)."""

    MISSING_HEADER = "missing_header"
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


def header_value(headers: Mapping[str, str], names: Sequence[str]) -> str | None:
    """The first non-empty header among ``names`` (lower-case), in any casing.

    Exact lower-case lookups come first: they are what ASGI adapters, aiohttp's
    case-insensitive ``CIMultiDict`` and most callers provide, so the scan that
    handles plain dicts with other casings only runs when those miss.
    """
    for name in names:
        value = headers.get(name)
        if value:
            return value
    lowered = {key.lower(): value for key, value in headers.items()}
    for name in names:
        value = lowered.get(name)
        if value:
            return value
    return None


def _check_limit(max_body_size: int) -> None:
    if max_body_size <= 0:
        raise ConfigurationError("max_body_size must be positive")


def _coerce_secrets(secrets: str | bytes | Iterable[str | bytes]) -> tuple[bytes, ...]:
    items: Iterable[str | bytes] = (secrets,) if isinstance(secrets, (str, bytes)) else secrets
    keys = tuple(decode_secret(item) for item in items)
    if not keys:
        raise ConfigurationError("at least one webhook secret is required")
    return keys


def _coerce_tokens(tokens: str | bytes | Iterable[str | bytes]) -> tuple[bytes, ...]:
    items: Iterable[str | bytes] = (tokens,) if isinstance(tokens, (str, bytes)) else tokens
    encoded = tuple(item.encode() if isinstance(item, str) else bytes(item) for item in items)
    if not encoded or not all(encoded):
        raise ConfigurationError("shared webhook tokens must be non-empty")
    return encoded


class WebhookVerifier:
    """Authenticates webhook deliveries; never shows its secrets in ``repr`` or errors.

    ``WebhookVerifier(secret_or_secrets)`` checks Standard Webhooks signatures:
    secrets are ``whsec_<base64>`` strings or raw key bytes, several at once
    during a key rotation. ``WebhookVerifier.shared_token(token)`` compares a
    header (or query parameter) with a shared token instead.

    ``max_body_size`` is enforced before any hashing or parsing; ``now`` is the
    clock (seconds since the epoch), injectable for tests.
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
        self._keys = tuple(_HmacKey(key) for key in _coerce_secrets(secret_or_secrets))
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
        ``header=None`` to accept the query parameter only.
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
        headers: Mapping[str, str],
        *,
        query: Mapping[str, str] | None = None,
    ) -> None:
        """Raise :class:`WebhookVerificationError` unless the delivery is authentic.

        ``body`` must be the raw request body, never a re-serialized one.
        ``query`` (the request's query parameters) is only read in shared-token
        mode with a ``query_param``. Raises :class:`WebhookPayloadTooLargeError`
        for a body over ``max_body_size``.
        """
        if len(body) > self.max_body_size:
            check_body_size(body, self.max_body_size)
        if self._tokens:
            self._verify_token(headers, query)
        else:
            self._verify_signature(body, headers)

    def verify_and_parse(
        self,
        body: bytes,
        headers: Mapping[str, str],
        *,
        query: Mapping[str, str] | None = None,
    ) -> Event:
        """:meth:`verify`, then :func:`parse_event`: the one call a receiver needs."""
        # verify() inlined: this is the hot path, and a call is measurable here.
        if len(body) > self.max_body_size:
            check_body_size(body, self.max_body_size)
        if self._tokens:
            self._verify_token(headers, query)
        else:
            self._verify_signature(body, headers)
        return parse_unchecked_size(body)

    # -- shared token -------------------------------------------------------------

    def _verify_token(self, headers: Mapping[str, str], query: Mapping[str, str] | None) -> None:
        given: str | None = None
        if self._token_header is not None:
            given = header_value(headers, (self._token_header,))
        if given is None and self._query_param is not None and query is not None:
            given = query.get(self._query_param) or None
        if given is None:
            _reject(VerificationFailure.MISSING_TOKEN, "webhook token is missing")
        candidate = given.encode("utf-8", "surrogatepass")
        # No early exit: every configured token is compared, so timing does not
        # reveal which one (if any) matched.
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(candidate, token)
        if not matched:
            _reject(VerificationFailure.INVALID_TOKEN, "webhook token does not match")

    # -- Standard Webhooks --------------------------------------------------------

    def _verify_signature(self, body: bytes, headers: Mapping[str, str]) -> None:
        # The hot path of every delivery, kept flat (each call costs a few percent
        # here): exact lower-case header lookups first, aliases and other casings
        # only when those miss; one HMAC per key; a constant-time string comparison
        # per ``v1`` entry. Failures are explained by the slow path.
        get = headers.get
        msg_id = get("webhook-id") or header_value(headers, _ID_NAMES)
        timestamp = get("webhook-timestamp") or header_value(headers, _TIMESTAMP_NAMES)
        signatures = get("webhook-signature") or header_value(headers, _SIGNATURE_NAMES)
        if msg_id is None or timestamp is None or signatures is None:
            _reject_missing(msg_id, timestamp, signatures)
        if not (timestamp.isdigit() and timestamp.isascii() and len(timestamp) <= _MAX_DIGITS):
            _reject(VerificationFailure.INVALID_TIMESTAMP, "webhook-timestamp is not an integer")
        skew = int(timestamp) - self._now()
        if skew < -self._tolerance or skew > self._tolerance:
            _reject_skew(skew)
        signed = f"{msg_id}.{timestamp}.".encode("utf-8", "surrogatepass") + body
        if signatures.isascii():
            entries = signatures.split(" ")
            for key in self._keys:
                # HmacKey.digest, inlined: a method call is ~2% of this path.
                inner = key.inner.copy()
                inner.update(signed)
                outer = key.outer.copy()
                outer.update(inner.digest())
                expected = "v1," + b2a_base64(outer.digest(), newline=False).decode()
                for entry in entries:
                    if hmac.compare_digest(entry, expected):
                        return
        failure = _slow_match(signatures, [key.digest(signed) for key in self._keys])
        if failure is not None:
            _reject(failure, _FAILURE_MESSAGES[failure])


class _HmacKey:
    """HMAC-SHA256 (RFC 2104) with the key schedule done once, not per message.

    ``hmac.digest`` re-derives the padded inner and outer keys on every call;
    copying two pre-fed SHA-256 states instead halves the cost for webhook-sized
    bodies. Tests check it against ``hmac.digest`` for keys of every length class.
    """

    __slots__ = ("inner", "outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK_SIZE:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK_SIZE, b"\0")
        self.inner = hashlib.sha256(key.translate(_IPAD))
        self.outer = hashlib.sha256(key.translate(_OPAD))

    def __repr__(self) -> str:
        return "_HmacKey(<redacted>)"

    def digest(self, message: bytes) -> bytes:
        inner = self.inner.copy()
        inner.update(message)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.digest()


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
    """Failures only: decode every entry to say precisely why none matched.

    Returns ``None`` on a match: a non-canonical base64 spelling of a correct
    signature (missed by the fast string comparison) is accepted, as the
    reference library does.
    """
    well_formed = malformed = False
    for entry in signatures.split():
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


public("avaturn_async.webhooks", VerificationFailure, WebhookVerifier)
