"""The errors of ``client.download()``, :class:`~avaturn_async.TransportError`\\ s in the
tree of ``_errors``; a host the download guard refuses is ``UnsafeURLError`` instead.
"""

from __future__ import annotations

from typing import Any

from ._errors import TransportError

__all__ = ["DownloadError", "DownloadTooLargeError", "IncompleteDownloadError"]


class DownloadError(TransportError):
    """A file download (a render or an export) failed; nothing was written at the destination.

    ``status`` is the HTTP status when the file server refused the download (a
    pre-signed URL that expired answers 403), else ``None``. ``received`` is how
    many bytes arrived before it failed.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str = "GET",
        status: int | None = None,
        received: int = 0,
        **where: Any,
    ) -> None:
        super().__init__(message, method=method, **where)
        self.status = status
        self.received = received


class IncompleteDownloadError(DownloadError):
    """The body ended before the declared ``Content-Length``, or the connection dropped.

    ``expected`` is the declared length when there was one.
    """

    def __init__(self, message: str, *, expected: int | None = None, **where: Any) -> None:
        super().__init__(message, **where)
        self.expected = expected


class DownloadTooLargeError(DownloadError):
    """The file is larger than the download's ``max_bytes``; reading stopped there."""

    def __init__(self, message: str, *, max_bytes: int, received: int, **where: Any) -> None:
        super().__init__(message, received=received, **where)
        self.max_bytes = max_bytes
