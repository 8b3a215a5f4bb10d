"""Standard Webhooks signing primitives, shared by the verifier, the emulator and ``testing``.

Pure functions, no I/O. The scheme: ``webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{raw body}">``; the secret is ``whsec_<base64 key>`` or raw bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from .._errors import ConfigurationError

__all__ = ["SECRET_PREFIX", "decode_secret", "sign", "signature_digest"]

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


def signature_digest(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    """The raw HMAC-SHA256 digest over ``{id}.{timestamp}.{body}``."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    mac.update(msg_id.encode())
    mac.update(b".")
    mac.update(timestamp.encode())
    mac.update(b".")
    mac.update(body)
    return mac.digest()


def sign(key: bytes, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """One ``v1,<base64>`` signature entry for a ``webhook-signature`` header."""
    digest = signature_digest(key, msg_id, str(timestamp), body)
    return "v1," + base64.b64encode(digest).decode()
