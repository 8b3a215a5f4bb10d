"""Removing credentials from URLs before they reach a repr, a log or a database.

Pre-signed download URLs carry their signature in the query string (and some
services put tokens in the fragment): both are cut, the rest stays readable.
"""

from __future__ import annotations

import re

__all__ = ["looks_like_url", "redact_location", "redact_url", "redact_urls"]

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


def redact_urls(text: str) -> str:
    """``text`` with the query string and fragment of every URL in it replaced."""
    return _URL_QUERY.sub(r"\1?<redacted>", text)


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
