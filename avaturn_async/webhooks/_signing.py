"""Standard Webhooks signing primitives, shared by the verifier, the emulator and ``testing``.

Pure functions, no I/O, and nothing hand-rolled: HMAC-SHA256 is the standard
library's ``hmac``, keyed once per secret (:class:`SigningKey`) and copied per
message. The scheme: ``webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{raw body}">``; the secret is ``whsec_<base64 key>`` or raw bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from .._errors import ConfigurationError

__all__ = ["SECRET_PREFIX", "SigningKey", "decode_secret", "sign", "signed_content"]

SECRET_PREFIX = "whsec_"


def decode_secret(secret: str | bytes) -> bytes:
    """Return the HMAC key for a ``whsec_<base64>`` string or raw key bytes."""
    if isinstance(secret, bytes):
        if not secret:
            raise ConfigurationError("webhook secret is empty")
        return secret
    encoded = secret.removeprefix(SECRET_PREFIX).strip()
    # The reference libraries accept unpadded secrets; so do we.
    encoded += "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            "webhook secret is not valid base64 (expected 'whsec_<base64>' or raw bytes)"
        ) from None
    if not key:
        raise ConfigurationError("webhook secret is empty")
    return key


def signed_content(msg_id: str, timestamp: str, body: bytes) -> bytes:
    """The bytes a signature covers: ``{id}.{timestamp}.{body}``."""
    return f"{msg_id}.{timestamp}.".encode("utf-8", "surrogatepass") + body


class SigningKey:
    """One HMAC-SHA256 key: ``hmac.new`` once, ``.copy()`` per message.

    Copying the keyed object skips the key schedule that a one-shot
    ``hmac.digest`` redoes on every call. The key never appears in ``repr``.
    """

    __slots__ = ("_mac",)

    def __init__(self, key: bytes) -> None:
        self._mac = hmac.new(key, digestmod=hashlib.sha256)

    def __repr__(self) -> str:
        return "SigningKey(<redacted>)"

    def digest(self, message: bytes) -> bytes:
        """The raw HMAC-SHA256 of ``message``."""
        mac = self._mac.copy()
        mac.update(message)
        return mac.digest()

    def signature(self, message: bytes) -> str:
        """The ``v1,<base64>`` signature entry for ``message``."""
        return "v1," + binascii.b2a_base64(self.digest(message), newline=False).decode()


def sign(key: bytes, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """One ``v1,<base64>`` signature entry for a ``webhook-signature`` header."""
    return SigningKey(key).signature(signed_content(msg_id, str(timestamp), body))
