"""Escape hatches: ``extra_headers=``, ``extra_query=`` and ``extra_body=`` on every endpoint.

Avaturn documents only part of its API, so a parameter it accepts may have no argument
here yet. As in openai-python, each endpoint merges these (``extra_body`` only where the
request has a JSON body) into the request it built, and **what the SDK sends wins** every
clash (the rules: docs/reference/client.md). Extras are checked here, before anything is
sent (:class:`InvalidRequestError`); secret-looking headers are redacted in reprs and logs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, urlsplit

import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from ._errors import InvalidRequestError
from ._requests import Request, encode_query

__all__ = [
    "RESERVED_HEADERS",
    "ExtraBody",
    "ExtraHeaders",
    "ExtraQuery",
    "merge_headers",
    "with_extras",
]

ExtraHeaders: TypeAlias = Mapping[str, str]
"""Headers added to one request: ``{"X-Avaturn-Beta": "1"}``."""
ExtraQuery: TypeAlias = Mapping[str, "str | int | float | bool"]
"""Query parameters added to one request; ``True`` is sent as ``true``."""
ExtraBody: TypeAlias = Mapping[str, Any]
"""Fields added to one request's JSON body; any JSON value."""

RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "transfer-encoding", "host", "connection"}
)
"""Headers that describe the body or the connection: never taken from extras."""


def _checked_headers(headers: ExtraHeaders) -> dict[str, str]:
    if not isinstance(headers, Mapping):
        raise InvalidRequestError("extra_headers must be a mapping of header names to values")
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not name or not isinstance(value, str):
            raise InvalidRequestError(f"extra_headers: {name!r} must map a name to a str value")
        if any(char in name + value for char in "\r\n"):
            raise InvalidRequestError(f"extra_headers: {name!r} contains a line break")
        checked[name] = value
    return checked


def _query_value(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise InvalidRequestError(f"extra_query: {name!r} must be a str, int, float or bool")


def _merged_query(request: Request, extra: ExtraQuery) -> str:
    if not isinstance(extra, Mapping):
        raise InvalidRequestError("extra_query must be a mapping of parameter names to values")
    if any(not isinstance(name, str) or not name for name in extra):
        raise InvalidRequestError("extra_query: parameter names must be non-empty strings")
    documented = request.params
    if request.absolute_url is not None:  # a pre-signed URL's own parameters are kept too
        documented |= dict(parse_qsl(urlsplit(request.absolute_url).query))
    added = {
        name: _query_value(name, value) for name, value in extra.items() if name not in documented
    }
    if not added:
        return request.query
    joined = encode_query(added)
    return f"{request.query}&{joined}" if request.query else joined


def _merged_body(request: Request, extra: ExtraBody) -> dict[str, Any]:
    if not request.has_json or not isinstance(request.json, dict):
        raise InvalidRequestError(f"{request.route} has no JSON body: extra_body cannot apply")
    if not isinstance(extra, Mapping) or not all(isinstance(key, str) for key in extra):
        raise InvalidRequestError("extra_body must be a mapping with string keys")
    try:
        json.dumps(extra, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"extra_body is not JSON: {exc}") from None
    documented: dict[str, Any] = request.json
    return {**documented, **{key: value for key, value in extra.items() if key not in documented}}


def with_extras(
    request: Request, headers: ExtraHeaders | None, query: ExtraQuery | None, body: ExtraBody | None
) -> Request:
    """``request`` with the extras merged in; the documented values win every clash."""
    changes: dict[str, Any] = {}
    if headers:
        changes["extra_headers"] = _checked_headers(headers)
    if query:
        changes["query"] = _merged_query(request, query)
    if body:
        changes["json"] = _merged_body(request, body)
    return attrs.evolve(request, **changes) if changes else request


def merge_headers(own: CIMultiDictProxy[str], extra: Mapping[str, str]) -> CIMultiDictProxy[str]:
    """The client's headers plus the extras it does not set itself (``own`` wins)."""
    merged = CIMultiDict(
        (name, value)
        for name, value in extra.items()
        if name not in own and name.lower() not in RESERVED_HEADERS
    )
    merged.extend(own)
    return CIMultiDictProxy(merged)
