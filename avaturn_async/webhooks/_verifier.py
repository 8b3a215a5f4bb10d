"""Webhook authentication with Standard Webhooks signatures.

Avaturn does not document how it signs webhooks, so :class:`WebhookVerifier`
checks the interoperable Standard Webhooks scheme (the one Svix uses);
:class:`SharedTokenVerifier` (``_token``) covers the plain shared-token mode.
Verification always runs over the raw body bytes.

Standard Webhooks, as checked here:

* headers ``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` (or their
  ``svix-*`` aliases), names in any casing;
* the timestamp is an integer number of seconds within ``tolerance`` of the
  clock, in both directions (a replay guard);
* ``webhook-signature`` holds space-separated ``v1,<base64>`` entries (other
  versions are skipped); any entry matching any configured secret is enough;
* comparisons are constant-time, and no message names a secret or the
  expected signature;
* work is bounded whatever the headers hold: ``webhook-id`` and
  ``webhook-signature`` are length-capped before any HMAC, at most
  ``MAX_SIGNATURE_ENTRIES`` entries are considered, and each secret costs one
  HMAC over the (size-limited) body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from binascii import b2a_base64
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import NoReturn

from .._errors import ConfigurationError
from .._events import DEFAULT_MAX_BODY_SIZE, Event, check_body_size, parse_unchecked_size
from ._boundary import (
    ID_HEADERS,
    SIGNATURE_HEADERS,
    TIMESTAMP_HEADERS,
    Headers,
    VerificationFailure,
    body_bytes,
    check_limit,
    configured_values,
    header_getter,
    header_value,
    reject,
)
from ._signing import SigningKey, decode_secret
from ._token import SharedTokenVerifier

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_SIGNATURE_ENTRIES",
    "MAX_SIGNATURE_HEADER_LENGTH",
    "MIN_SECRET_BYTES",
    "WebhookVerifier",
]

# Bounds int() on hostile input (its cost grows with length, and huge values
# overflow the float comparison); 15 digits reach far past year 30000.
_MAX_DIGITS = 15
_DIGEST_SIZE = hashlib.sha256().digest_size

MIN_SECRET_BYTES = 16
"""Shorter HMAC keys are refused: 128 bits is the least a guessing attack should face."""
MAX_ID_LENGTH = 256
"""A longer ``webhook-id`` is rejected before any HMAC (real ids are ~30 characters)."""
MAX_SIGNATURE_HEADER_LENGTH = 4096
"""A longer ``webhook-signature`` is rejected before any HMAC."""
MAX_SIGNATURE_ENTRIES = 16
"""Entries of ``webhook-signature`` considered; later ones are ignored."""

_GENERATE_SECRET = (
    'generate one with: python -c "import base64, secrets; '
    "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\""
)


def _coerce_secrets(secrets: object) -> tuple[bytes, ...]:
    keys = tuple(decode_secret(item) for item in configured_values(secrets, "secret"))
    for key in keys:
        if len(key) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"webhook secret is too weak: a {len(key)}-byte key, at least "
                f"{MIN_SECRET_BYTES} are required; use the secret Avaturn gave you, or "
                + _GENERATE_SECRET
            )
    return keys


class WebhookVerifier:
    """Checks Standard Webhooks signatures; never shows its secrets in ``repr`` or errors.

    Secrets are ``whsec_<base64>`` strings or raw key bytes (at least 16 bytes
    of key), several at once during a key rotation. For the shared-token mode,
    see :class:`SharedTokenVerifier` (also built by :meth:`shared_token`).

    ``max_body_size`` is enforced before any hashing or parsing; ``now`` is the
    clock (seconds since the epoch), injectable for tests. Work per delivery is
    bounded: one HMAC per secret over the body, whatever the headers hold.
    """

    __slots__ = ("_keys", "_now", "_tolerance", "max_body_size")

    mode = "standard_webhooks"

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
        check_limit(max_body_size)
        self._keys = tuple(SigningKey(key) for key in _coerce_secrets(secret_or_secrets))
        self._tolerance = tolerance.total_seconds()
        self._now = now
        self.max_body_size: int = max_body_size

    @staticmethod
    def shared_token(
        token: str | bytes | Iterable[str | bytes],
        header: str | None = "x-avaturn-token",
        *,
        query_param: str | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> SharedTokenVerifier:
        """A :class:`SharedTokenVerifier`: same arguments, kept here for discoverability."""
        return SharedTokenVerifier(
            token, header, query_param=query_param, max_body_size=max_body_size
        )

    def __repr__(self) -> str:
        return (
            f"WebhookVerifier(secrets={len(self._keys)}, "
            f"tolerance={timedelta(seconds=self._tolerance)!s})"
        )

    def verify(
        self, body: bytes, headers: Headers, *, query: Mapping[str, str] | None = None
    ) -> None:
        """Raise :class:`WebhookVerificationError` unless the delivery is authentic.

        ``body`` must be the raw request body (``bytes``), never a decoded or
        re-serialized one; header values may be ``str`` or ``bytes``. Anything
        else raises :class:`WebhookInputError`. ``query`` is accepted for
        symmetry with :class:`SharedTokenVerifier` and ignored. Raises
        :class:`WebhookPayloadTooLargeError` for a body over ``max_body_size``.
        """
        self._authentic(body, headers)

    def verify_and_parse(
        self, body: bytes, headers: Headers, *, query: Mapping[str, str] | None = None
    ) -> Event:
        """:meth:`verify`, then :func:`parse_event`: the one call a receiver needs."""
        return parse_unchecked_size(self._authentic(body, headers))

    def _authentic(self, body: bytes, headers: Headers) -> bytes:
        """``body`` if the delivery is authentic. Kept flat: a call costs a few percent here."""
        if type(body) is not bytes:
            body = body_bytes(body)
        if len(body) > self.max_body_size:
            check_body_size(body, self.max_body_size)
        get: Callable[[str], object]
        try:
            get = headers.get  # type: ignore[assignment]
        except AttributeError:
            get = header_getter(headers)  # raises WebhookInputError: not a mapping
        msg_id = get("webhook-id")
        timestamp = get("webhook-timestamp")
        signatures = get("webhook-signature")
        if not (type(msg_id) is str and msg_id):
            msg_id = header_value(headers, ID_HEADERS)
        if not (type(timestamp) is str and timestamp):
            timestamp = header_value(headers, TIMESTAMP_HEADERS)
        if not (type(signatures) is str and signatures):
            signatures = header_value(headers, SIGNATURE_HEADERS)
        if msg_id is None or timestamp is None or signatures is None:
            _reject_missing(msg_id, timestamp, signatures)
        if len(msg_id) > MAX_ID_LENGTH or len(signatures) > MAX_SIGNATURE_HEADER_LENGTH:
            reject(VerificationFailure.HEADER_TOO_LONG, "webhook header is too long")
        if not (timestamp.isdigit() and timestamp.isascii() and len(timestamp) <= _MAX_DIGITS):
            reject(VerificationFailure.INVALID_TIMESTAMP, "webhook-timestamp is not an integer")
        skew = int(timestamp) - self._now()
        if skew < -self._tolerance or skew > self._tolerance:
            _reject_skew(skew)
        signed = f"{msg_id}.{timestamp}.".encode("utf-8", "surrogatepass") + body
        # One signature is compared whole before any split; non-ASCII never matches here.
        ascii_only = signatures.isascii()
        entries: list[str] | None = None
        digests: list[bytes] = []
        for key in self._keys:
            digest = key.digest(signed)
            expected = "v1," + b2a_base64(digest, newline=False).decode()
            if ascii_only:
                if hmac.compare_digest(signatures, expected):
                    return body
                if entries is None:
                    entries = signatures.split(" ", MAX_SIGNATURE_ENTRIES)[:MAX_SIGNATURE_ENTRIES]
                for entry in entries:
                    if hmac.compare_digest(entry, expected):
                        return body
            digests.append(digest)
        failure = _slow_match(signatures, digests)
        if failure is not None:
            reject(failure, _FAILURE_MESSAGES[failure])
        return body


def _reject_skew(skew: float) -> NoReturn:
    if skew < 0:
        reject(VerificationFailure.TIMESTAMP_TOO_OLD, "webhook timestamp is too old")
    reject(VerificationFailure.TIMESTAMP_TOO_NEW, "webhook timestamp is too new")


def _reject_missing(msg_id: str | None, timestamp: str | None, signatures: str | None) -> NoReturn:
    found = {"webhook-id": msg_id, "webhook-timestamp": timestamp, "webhook-signature": signatures}
    missing = ", ".join(name for name, value in found.items() if value is None)
    reject(VerificationFailure.MISSING_HEADER, f"missing webhook header(s): {missing}")


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
