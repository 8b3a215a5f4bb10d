"""Shared-token authentication: for deployments that put Avaturn behind a token-protected URL.

The token is read from a header (any casing) or a query parameter and compared
in constant time with every configured token, so timing reveals neither whether
nor which one matched.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping

from .._errors import ConfigurationError
from .._events import DEFAULT_MAX_BODY_SIZE, Event, check_body_size, parse_unchecked_size
from ._boundary import (
    Headers,
    VerificationFailure,
    body_bytes,
    check_limit,
    configured_values,
    header_value,
    reject,
)

__all__ = ["MIN_TOKEN_LENGTH", "SharedTokenVerifier"]

MIN_TOKEN_LENGTH = 16
"""Shorter shared tokens are refused."""

_GENERATE_TOKEN = 'generate one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'


def _coerce_tokens(tokens: object) -> tuple[bytes, ...]:
    encoded: list[bytes] = []
    for item in configured_values(tokens, "token"):
        text = item.decode("utf-8", "surrogateescape") if isinstance(item, bytes) else item
        if len(text) < MIN_TOKEN_LENGTH or not text.strip() or text.strip() != text:
            raise ConfigurationError(
                f"shared webhook token is too weak: at least {MIN_TOKEN_LENGTH} characters, "
                "not whitespace and no leading or trailing whitespace (HTTP strips it); "
                + _GENERATE_TOKEN
            )
        encoded.append(item.encode() if isinstance(item, str) else item)
    return tuple(encoded)


class SharedTokenVerifier:
    """Accepts a delivery carrying one of the shared ``token`` values; never shows them.

    The token is read from ``header`` (any casing) or, when that header is
    absent, from the ``query_param`` the adapters pass in as ``query``; set
    ``header=None`` to accept the query parameter only. Tokens shorter than 16
    characters, or made of whitespace, are refused at construction.
    ``WebhookVerifier.shared_token(...)`` builds one too.
    """

    __slots__ = ("_query_param", "_token_header", "_tokens", "max_body_size")

    mode = "shared_token"

    def __init__(
        self,
        token: str | bytes | Iterable[str | bytes],
        header: str | None = "x-avaturn-token",
        *,
        query_param: str | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        if header is None and query_param is None:
            raise ConfigurationError("shared_token needs a header, a query_param or both")
        check_limit(max_body_size)
        self._tokens = _coerce_tokens(token)
        self._token_header = header.lower() if header is not None else None
        self._query_param = query_param
        self.max_body_size: int = max_body_size

    def __repr__(self) -> str:
        where = f"header={self._token_header!r}, query_param={self._query_param!r}"
        return f"SharedTokenVerifier(tokens={len(self._tokens)}, {where})"

    def verify(
        self, body: bytes, headers: Headers, *, query: Mapping[str, str] | None = None
    ) -> None:
        """Raise :class:`WebhookVerificationError` unless a configured token came along.

        ``body`` must be the raw request body (``bytes``); it is only checked
        against ``max_body_size`` (:class:`WebhookPayloadTooLargeError`).
        """
        if type(body) is not bytes:
            body = body_bytes(body)
        if len(body) > self.max_body_size:
            check_body_size(body, self.max_body_size)
        self._verify_token(headers, query)

    def verify_and_parse(
        self, body: bytes, headers: Headers, *, query: Mapping[str, str] | None = None
    ) -> Event:
        """:meth:`verify`, then :func:`parse_event`: the one call a receiver needs."""
        if type(body) is not bytes:
            body = body_bytes(body)
        self.verify(body, headers, query=query)
        return parse_unchecked_size(body)

    def _verify_token(self, headers: Headers, query: Mapping[str, str] | None) -> None:
        given: str | None = None
        if self._token_header is not None:
            given = header_value(headers, (self._token_header,))
        if given is None and self._query_param is not None and query is not None:
            given = query.get(self._query_param) or None
        if given is None:
            reject(VerificationFailure.MISSING_TOKEN, "webhook token is missing")
        candidate = given.encode("utf-8", "surrogatepass")
        # No early exit: every configured token is compared, so timing does not
        # reveal which one (if any) matched.
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(candidate, token)
        if not matched:
            reject(VerificationFailure.INVALID_TOKEN, "webhook token does not match")
