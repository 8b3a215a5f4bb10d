"""Every exception avaturn_async raises.

One root, :class:`AvaturnError`; each leaf also subclasses the builtin it
behaves like, so ``except ValueError`` keeps working for callers that do not
know this library. A mark such as ``[batch]`` says that the class (and its
subclasses) is imported from that subpackage, ``avaturn_async.batch``; the rest
from ``avaturn_async``. ``tests/test_error_tree.py`` keeps this tree complete::

    AvaturnError
    ├── ConfigurationError (ValueError)        missing API key, bad base URL, bad option
    │   └── EmulatorStoreError [testing]       the emulator's state file is not an emulator's
    ├── ClientClosedError (RuntimeError)       the client was used after ``aclose()``
    ├── EventLoopError (RuntimeError)          a client used in another event loop than its own,
    │                                          or the sync client called inside a running loop
    ├── InvalidRequestError (ValueError)       rejected before sending: nothing left the process
    │   ├── PhotoError                         a photo is missing, empty or not a JPEG
    │   └── UnsafeURLError                     a download's host is inside your network
    ├── TransportError (OSError)               the request may not have had an answer
    │   ├── ConnectError                       never reached the server: safe to retry
    │   │   └── CertificateError               the server's TLS certificate was refused
    │   ├── ConnectionLostError                dropped mid-request: the server may have acted
    │   ├── RequestTimeoutError (TimeoutError) no answer in time: the server may have acted
    │   └── DownloadError                      a file download failed; nothing was left behind
    │       ├── IncompleteDownloadError        the body ended early or the connection dropped
    │       └── DownloadTooLargeError          the file is larger than ``max_bytes``
    ├── APIError                               the server answered with an error status
    │   ├── BadRequestError                    400 and other 4xx without a class of their own
    │   ├── AuthenticationError                401 / 403: the API key is wrong or lacks rights
    │   ├── NotFoundError (LookupError)        404: unknown user, avatar or other id
    │   ├── ConflictError                      409: e.g. an asset put in the wrong slot
    │   ├── GoneError                          410: asset(s) no longer available
    │   ├── UnprocessableEntityError (ValueError)  422: ``detail`` holds the parsed list
    │   ├── RateLimitError                     429: ``retry_after`` seconds when given
    │   └── ServerError                        5xx
    ├── ResponseDecodeError (ValueError)       a 2xx whose body is not what the API documents
    ├── StorageError (RuntimeError)            a database backend (SQLite, PostgreSQL) failed
    │   ├── StorageUnavailableError (ConnectionError)  the database cannot be reached now
    │   └── SchemaVersionError                 the database schema is newer than this code
    ├── JobTimeoutError (TimeoutError)         a job's ``wait(timeout=...)`` ran out first
    ├── JobFailedError                         a job's event said ``failed``; ``event`` holds it
    │   ├── AvatarFailedError                  ``avatar.ready`` with status failed
    │   ├── RenderFailedError                  ``render.ready`` with status failed
    │   └── ExportFailedError                  ``export.ready`` with status failed
    ├── JournalError (ValueError) [batch]      the onboarding journal cannot be used
    │   ├── JournalBusyError                   another live process runs on this journal
    │   └── LeaseLostError                     another run took over this run's row
    ├── ManifestError (ValueError) [batch]     the onboarding manifest cannot be read at all
    ├── OnboardingAbortedError [batch]         so many rows in a row could not reach the API
    └── WebhookError (ValueError)              raised by ``avaturn_async.webhooks``
        ├── WebhookVerificationError           signature, timestamp or token rejected
        ├── WebhookParseError                  not a valid event; ``path`` names the field
        ├── WebhookPayloadTooLargeError        body over the configured limit
        ├── WebhookInputError (TypeError)      not raw body bytes, or not a header value
        ├── InboxError [webhooks]              the inbox database is missing or not an inbox
        └── UnstorableDeliveryError [webhooks] the inbox's database cannot store it (a 422)

Messages never contain the API key, webhook secrets or expected signatures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = [
    "APIError",
    "AuthenticationError",
    "AvatarFailedError",
    "AvaturnError",
    "BadRequestError",
    "CertificateError",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "ConnectError",
    "ConnectionLostError",
    "EventLoopError",
    "ExportFailedError",
    "GoneError",
    "InvalidRequestError",
    "JobFailedError",
    "JobTimeoutError",
    "NotFoundError",
    "PhotoError",
    "RateLimitError",
    "RenderFailedError",
    "RequestTimeoutError",
    "ResponseDecodeError",
    "SchemaVersionError",
    "ServerError",
    "StorageError",
    "StorageUnavailableError",
    "TransportError",
    "UnprocessableEntityError",
    "UnsafeURLError",
    "ValidationErrorItem",
    "WebhookError",
    "WebhookInputError",
    "WebhookParseError",
    "WebhookPayloadTooLargeError",
    "WebhookVerificationError",
]


class AvaturnError(Exception):
    """Root of every exception raised by avaturn_async."""


class ConfigurationError(AvaturnError, ValueError):
    """The client or a helper was configured with missing or invalid settings."""


def option_validator(validator: Callable[[Any, Any, Any], Any]) -> Callable[[Any, Any, Any], None]:
    """``validator`` (attrs' raise ``ValueError``) refusing with a :class:`ConfigurationError`."""

    def check(instance: Any, attribute: Any, value: Any) -> None:
        try:
            validator(instance, attribute, value)
        except ValueError as refused:
            raise ConfigurationError(str(refused)) from None

    return check


#: Validators of the usual option bounds, for attrs fields.
AT_LEAST_ONE = option_validator(attrs.validators.ge(1))
NOT_NEGATIVE = option_validator(attrs.validators.ge(0))


class ClientClosedError(AvaturnError, RuntimeError):
    """The client was used after it was closed."""


class EventLoopError(AvaturnError, RuntimeError):
    """A client was used where it cannot work, and would hang or fail obscurely.

    An ``AvaturnClient``'s connections belong to the event loop it was opened in
    (its first call, or ``async with``): using it from another loop (a second
    ``asyncio.run()``, a Celery task that starts its own loop) raises this at the
    call. ``avaturn_async.sync.AvaturnClient`` raises it when called from inside a
    running event loop, which it would block.
    """


class InvalidRequestError(AvaturnError, ValueError):
    """An argument was rejected before anything was sent."""


class PhotoError(InvalidRequestError):
    """A photo is missing, empty or not a JPEG; no upload was attempted."""


class UnsafeURLError(InvalidRequestError):
    """A download was refused before connecting: its URL, or a redirect, points inside your network.

    The host is, or resolves to, a loopback, private, link-local (the cloud metadata
    address 169.254.169.254), multicast, unspecified or otherwise not globally
    routable address, or a redirect went from ``https`` to ``http``. ``host`` is the
    refused host, ``address`` the refused IP address when there is one. The message
    says how to allow a host that is yours (``AvaturnClient(allowed_download_hosts=...)``).
    Not a :class:`TransportError`: nothing was sent to that host, and retrying
    cannot help.
    """

    def __init__(self, message: str, *, host: str, address: str | None = None) -> None:
        super().__init__(message)
        self.host = host
        self.address = address


class TransportError(AvaturnError, OSError):
    """The request failed below HTTP (connection, timeout).

    ``method`` and ``path`` say which call failed; ``host`` and ``port`` where the
    connection went (the proxy's, when a proxy failed), and the message names
    them too. The URL's query string and any credentials are never included.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        host: str = "",
        port: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.host = host
        self.port = port

    def __str__(self) -> str:
        where = f" ({self.method} {self.path})" if self.method else ""
        return f"{self.message}{where}"


class ConnectError(TransportError):
    """The connection could not be made: the server never saw the request."""


class CertificateError(ConnectError):
    """The server's TLS certificate failed verification: nothing was sent to it.

    ``reason`` is what the TLS library said (an unknown issuer, a name mismatch,
    an expired certificate). Not retried: the next attempt would meet the same
    certificate. A private CA is trusted with ``AvaturnClient(ssl=context)``.
    """

    def __init__(self, message: str, *, reason: str = "", **where: Any) -> None:
        super().__init__(message, **where)
        self.reason = reason


class ConnectionLostError(TransportError):
    """The connection dropped before a complete answer. The server may have acted."""


class RequestTimeoutError(TransportError, TimeoutError):
    """No complete answer in time. The server may have acted on the request."""


@attrs.frozen(kw_only=True)
class ValidationErrorItem:
    """One entry of a 422 ``HTTPValidationError.detail`` list."""

    loc: tuple[str | int, ...]
    msg: str
    type: str


class APIError(AvaturnError):
    """The API answered with a status that is not a success.

    Attributes:
        status: the HTTP status code.
        body: the parsed JSON body, or the body text when it is not JSON.
        request_id: the server's request id header, when present.
        headers: the response headers (read-only mapping).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        body: Any = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.request_id = request_id
        self.headers: Mapping[str, str] = dict(headers or {})
        self.method = method
        self.path = path

    def __str__(self) -> str:
        where = f" ({self.method} {self.path})" if self.method else ""
        request = f" [request id {self.request_id}]" if self.request_id else ""
        return f"{self.status} {self.message}{where}{request}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, message={self.message!r}, "
            f"request_id={self.request_id!r})"
        )


class BadRequestError(APIError):
    """A 4xx answer without a more specific class (400, 405, 413, ...)."""


class AuthenticationError(APIError):
    """401 or 403: the API key is missing, wrong, or not allowed to do this."""


class NotFoundError(APIError, LookupError):
    """404: the user, avatar or other id is unknown."""


class ConflictError(APIError):
    """409: the request conflicts with the resource (e.g. an asset in the wrong slot)."""


class GoneError(APIError):
    """410: the referenced asset(s) are no longer available."""


class UnprocessableEntityError(APIError, ValueError):
    """422: the API rejected the request's content; ``detail`` lists why."""

    def __init__(
        self, message: str, *, detail: tuple[ValidationErrorItem, ...] = (), **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.detail = detail


class RateLimitError(APIError):
    """429: too many requests. ``retry_after`` is in seconds when the server said."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: a fault on the server's side."""


class ResponseDecodeError(AvaturnError, ValueError):
    """A success answer whose body does not match the documented schema."""

    def __init__(self, message: str, *, status: int, request_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.request_id = request_id


class JobTimeoutError(AvaturnError, TimeoutError):
    """A job's ``wait(timeout=...)`` ended first; the work may finish: wait again, or track it."""


class JobFailedError(AvaturnError):
    """Avaturn reported that the work failed; ``event`` is the event that said so."""

    def __init__(self, message: str, *, event: Any) -> None:
        super().__init__(message)
        self.event = event


class AvatarFailedError(JobFailedError):
    """Photo processing failed (``avatar.ready`` with status ``failed``)."""


class RenderFailedError(JobFailedError):
    """The render failed (``render.ready`` with status ``failed``)."""


class ExportFailedError(JobFailedError):
    """The export failed (``export.ready`` with status ``failed``)."""


class WebhookError(AvaturnError, ValueError):
    """Root of webhook verification and parsing errors."""


class WebhookVerificationError(WebhookError):
    """Signature, timestamp or token rejected; ``reason`` (a ``VerificationFailure``) says which."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class WebhookParseError(WebhookError):
    """The webhook body is not a valid event. ``path`` names the offending field."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class WebhookPayloadTooLargeError(WebhookError):
    """The webhook body exceeds the configured size limit."""

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class WebhookInputError(WebhookError, TypeError):
    """A verifier was handed something a request cannot carry.

    The body must be the raw request bytes (decoding and re-encoding can change
    them and break the signature); header values must be ``str`` or ``bytes``.
    This is a bug in the calling code, not a bad delivery.
    """


class StorageError(AvaturnError, RuntimeError):
    """A database backend (SQLite or PostgreSQL) failed; messages name it without its password."""


class StorageUnavailableError(StorageError, ConnectionError):
    """The database could not be reached (refused, timed out, restarting): retry once it is back."""


class SchemaVersionError(StorageError):
    """The database's schema is newer than this avaturn_async knows (raised at start): upgrade."""
