"""Removing credentials before they reach a repr, a log, an error or a database.

Pre-signed download URLs carry their signature in the query string (and some
services put tokens in the fragment): both are cut, the rest stays readable. A
proxy URL's user and password are masked, a database URL's password too
(``redact_location``). Headers whose names say they carry a
secret (``Authorization``, ``Cookie``, ``*-Key``, ``*-Token``, ``*-Secret``) keep
their names and lose their values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = [
    "REDACTED",
    "is_secret_header",
    "looks_like_url",
    "redact_headers",
    "redact_location",
    "redact_secrets",
    "redact_url",
    "redact_urls",
    "redact_userinfo",
    "url_repr",
]

REDACTED = "***"
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)
_SECRET_SUFFIXES = ("-key", "-token", "-secret", "_key", "_token", "_secret")
# A URL's user:password@ (group 1 keeps the scheme), and an HTTP credential after
# its scheme word: what a message could carry even though none of ours puts it there.
_USERINFO = re.compile(r"([a-z][a-z0-9+.-]*://)[^/\s@]+@", re.IGNORECASE)
_CREDENTIAL = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)

# A URL up to its query or fragment (group 1), then the query/fragment itself.
_URL_QUERY = re.compile(r"(https?://[^\s?#'\"]+)[?#][^\s'\"]*")


def redact_url(url: str | None) -> str | None:
    """``url`` without its query string and fragment: pre-signed URLs carry credentials there."""
    if url is None:
        return None
    from urllib.parse import urlsplit, urlunsplit  # on first use: ARCHITECTURE.md, cold start

    parts = urlsplit(url)
    if not parts.query and not parts.fragment:
        return url
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "<redacted>", ""))


def url_repr(url: str | None) -> str:
    """The repr of a model's URL field (``attrs.field(repr=url_repr)``), query redacted."""
    return repr(redact_url(url))


def redact_urls(text: str) -> str:
    """``text`` with the query string and fragment of every URL in it replaced."""
    return _URL_QUERY.sub(r"\1?<redacted>", text)


def is_secret_header(name: str) -> bool:
    """Whether a header named ``name`` carries a secret (any casing)."""
    lowered = name.lower()
    return lowered in _SECRET_HEADERS or lowered.endswith(_SECRET_SUFFIXES)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with the values of secret-carrying headers replaced by ``***``."""
    return {name: REDACTED if is_secret_header(name) else value for name, value in headers.items()}


def redact_userinfo(url: str) -> str:
    """``url`` with a ``user:password@`` part masked (``http://***@proxy:3128``)."""
    return _USERINFO.sub(rf"\1{REDACTED}@", url)


def redact_secrets(text: str) -> str:
    """``text`` without URL queries, URL credentials or ``Bearer``/``Basic`` tokens."""
    text = _CREDENTIAL.sub(rf"\1 {REDACTED}", redact_urls(text))
    return redact_userinfo(text) if "@" in text else text


# ``scheme://user:password@`` (group 1 keeps everything up to the password).
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^\s/?#]*@")
_PASSWORD_OPTION = re.compile(r"(?i)(password=)[^&\s]*")


def looks_like_url(value: object) -> bool:
    """``True`` for a string with ``://`` in it: a URL (a DSN), never a file path."""
    return isinstance(value, str) and "://" in value


def redact_location(value: str) -> str:
    """``value`` as it may be printed: a URL loses any password (in its user part or a
    ``password=`` option); anything else, a file path, is returned unchanged."""
    if "://" not in value:
        return value
    return _PASSWORD_OPTION.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", value))
