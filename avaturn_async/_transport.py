"""The one layer that does HTTP I/O: an aiohttp session behind a small seam.

:class:`Transport` is what the client needs (send one request, get the whole
answer, or stream a file to disk); :class:`AiohttpTransport` implements it. Tests
or unusual deployments can pass their own ``transport=``.

aiohttp's exceptions become ours here (``_network.network_error``). Proxies and the
TLS context are ``_network``'s; they apply to API calls, uploads and downloads alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import secrets
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

import aiohttp
import anyio
import attrs
import yarl
from aiohttp.abc import AbstractResolver

from ._download_errors import DownloadError, DownloadTooLargeError, IncompleteDownloadError
from ._models import redact_url
from ._network import Proxy, network_error, read_network
from ._photos import PhotoUpload
from ._requests import Request, Response
from ._ssrf import DownloadPool, open_download

__all__ = ["AiohttpTransport", "Timeouts", "Transport"]


@attrs.frozen(kw_only=True)
class Timeouts:
    """Per-attempt time limits, in seconds.

    Attributes:
        connect: to open a new connection.
        request: for a whole API call, answer included.
        upload: for a whole photo upload or file download; long, since files are large.
    """

    connect: float = 10.0
    request: float = 60.0
    upload: float = 600.0


@runtime_checkable
class Transport(Protocol):
    """Sends one request and returns the whole answer; raises ``TransportError``s.

    ``url`` is absolute, query included (``request.url(base_url)``); ``headers``
    are complete. ``request`` says the method and the JSON body or photo upload.
    """

    async def send(
        self, request: Request, *, url: str, headers: Mapping[str, str], timeouts: Timeouts
    ) -> Response: ...

    async def download(
        self,
        url: str,
        destination: Path,
        *,
        headers: Mapping[str, str],
        timeouts: Timeouts,
        max_bytes: int | None = None,
    ) -> int:
        """Stream ``url`` to ``destination``; returns the bytes written.

        Must leave nothing at ``destination`` unless the whole body arrived, and
        raise :class:`DownloadError` subclasses for a refused, partial or too large file.
        """
        ...

    async def aclose(self) -> None: ...


# Every character RFC 3986 allows in a URL, percent signs included: a URL made only
# of these is already encoded, and is sent as it is.
_ENCODED_URL = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")


def exact_url(url: str) -> yarl.URL | str:
    """``url`` as aiohttp should send it: byte for byte when it is already encoded.

    aiohttp re-quotes a string URL (``?sig=s3cr%2Ft`` goes out as ``?sig=s3cr/t``),
    which breaks a pre-signed URL whose signature covers the raw query. A URL with
    characters that need encoding (a space, say) is left to aiohttp to encode.
    """
    if _ENCODED_URL.fullmatch(url):
        return yarl.URL(url, encoded=True)
    return url


def _form(upload: PhotoUpload) -> tuple[aiohttp.FormData, list[object]]:
    """The multipart body; file streams are opened here and closed by aiohttp after sending."""
    form = aiohttp.FormData(quote_fields=False)
    streams: list[object] = []
    for field, source in upload.photos():
        stream = source.open()
        streams.append(stream)
        form.add_field(field, stream, filename=f"{source.name}.jpg", content_type="image/jpeg")
    form.add_field("body-type", upload.body_type.value)
    form.add_field("telephoto", "true" if upload.telephoto else "false")
    return form, streams


class AiohttpTransport:
    """The default transport: one ``aiohttp.ClientSession``, owned or borrowed.

    Downloads go through a pool of their own (also when ``session`` is borrowed),
    which checks every address it connects to against the calling client's
    download guard (``_ssrf``); ``resolver`` (aiohttp's default unless given) is
    how that pool looks host names up.

    ``proxy``, ``trust_env`` and ``ssl`` mean what :class:`~avaturn_async.AvaturnClient`'s
    do, for every request this transport sends (on a borrowed session too: they are
    passed with each request). The environment is read here, once.
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        connection_limit: int = 16,
        resolver: AbstractResolver | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
        ssl: ssl.SSLContext | None = None,
    ) -> None:
        self._session = session
        self._owns_session = session is None
        self._connection_limit = connection_limit
        self._resolver = resolver
        self._downloads: DownloadPool | None = None
        self._network = read_network(proxy=proxy, trust_env=trust_env, ssl_context=ssl)
        self._ssl = self._network.ssl_argument
        # The proxy of each origin (scheme://host:port) met: decided once, not per request.
        self._proxies: dict[str, Proxy | None] | None = {} if self._network.uses_proxies else None

    def __repr__(self) -> str:
        network = self._network
        proxy = network.proxy or dict(network.environment) or None
        return f"AiohttpTransport(proxy={proxy!r}, ssl={network.ssl is not None})"

    def _proxy_for(self, url: str) -> Proxy | None:
        """The proxy for ``url``; the map is ``None`` (and this never called) without proxies."""
        proxies = self._proxies
        assert proxies is not None
        end = url.find("/", url.find("://") + 3)
        origin = url if end < 0 else url[:end]
        if origin not in proxies:
            proxies[origin] = self._network.proxy_for(yarl.URL(origin))
        return proxies[origin]

    async def send(
        self, request: Request, *, url: str, headers: Mapping[str, str], timeouts: Timeouts
    ) -> Response:
        session = self._session
        if session is None:  # made lazily: aiohttp wants a running loop when a session is made
            connector = self._network.connector(limit=self._connection_limit)
            session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
            self._session = session
        total = timeouts.upload if request.upload is not None else timeouts.request
        timeout = _client_timeout(total, timeouts.connect)
        streams: list[object] = []
        data: aiohttp.FormData | None = None
        if request.upload is not None:
            data, streams = _form(request.upload)
        target: yarl.URL | str = url if request.absolute_url is None else exact_url(url)
        proxy = None if self._proxies is None else self._proxy_for(url)
        https = proxy is not None and url.startswith("https:")
        routing = {"headers": headers} if proxy is None else proxy.arguments(https, headers)
        sending = session.request(
            request.method,
            target,
            json=request.json if request.has_json else None,
            data=data,
            timeout=timeout,
            allow_redirects=False,
            ssl=self._ssl,
            **routing,
        )
        try:
            async with sending as answer:
                body = await answer.read()
                # The answer's headers are an immutable case-insensitive mapping: no copy.
                return Response(status=answer.status, headers=answer.headers, body=body)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            method, path = request.method, request.display_path
            raise network_error(
                exc, method=method, path=path, url=url, proxy=proxy, total=total
            ) from None
        finally:
            for stream in streams:
                with contextlib.suppress(Exception):
                    stream.close()  # type: ignore[attr-defined]

    async def download(
        self,
        url: str,
        destination: Path,
        *,
        headers: Mapping[str, str],
        timeouts: Timeouts,
        max_bytes: int | None = None,
    ) -> int:
        """The protocol's ``download``, written under a temporary name renamed when whole
        (removed on any failure, cancellation included); redirects checked hop by hop."""
        if self._downloads is None:  # made lazily: aiohttp wants a running loop
            self._downloads = DownloadPool(
                limit=self._connection_limit, resolver=self._resolver, network=self._network
            )
        timeout = _client_timeout(timeouts.upload, timeouts.connect)
        shown = redact_url(url) or ""
        partial = destination.with_name(f".{destination.name}.{secrets.token_hex(4)}.part")
        try:
            async with open_download(
                self._downloads, exact_url(url), headers=headers, timeout=timeout, shown=shown
            ) as answer:
                written = await _receive(answer, partial, shown, max_bytes)
            await anyio.Path(partial).rename(destination)
            return written
        except aiohttp.ClientPayloadError:
            message = "connection lost before the whole file arrived"
            raise IncompleteDownloadError(message, path=shown) from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            proxy, total = self._network.proxy_for(yarl.URL(shown)), timeouts.upload
            raise network_error(
                exc, method="GET", path=shown, url=shown, proxy=proxy, total=total
            ) from None
        finally:
            with contextlib.suppress(OSError):
                await anyio.Path(partial).unlink(missing_ok=True)

    async def aclose(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None
        if self._downloads is not None:
            await self._downloads.aclose()
            self._downloads = None


async def _receive(
    answer: aiohttp.ClientResponse, partial: Path, shown: str, max_bytes: int | None
) -> int:
    """Check the status and the declared size, then write the whole body to ``partial``."""
    if answer.status != 200:
        raise DownloadError(f"download answered {answer.status}", path=shown, status=answer.status)
    expected = answer.content_length
    if answer.headers.get("Content-Encoding", "identity").lower() != "identity":
        expected = None  # aiohttp decompresses: the length counts the compressed bytes
    if expected is not None and max_bytes is not None and expected > max_bytes:
        message = f"file is {expected} bytes, over max_bytes={max_bytes}"
        raise DownloadTooLargeError(message, path=shown, max_bytes=max_bytes, received=0)
    written = 0
    async with await anyio.open_file(partial, "wb") as out:
        async for chunk in answer.content.iter_chunked(1 << 16):
            written += len(chunk)
            if max_bytes is not None and written > max_bytes:
                message = f"file is over max_bytes={max_bytes}"
                raise DownloadTooLargeError(
                    message, path=shown, max_bytes=max_bytes, received=written
                )
            await out.write(chunk)
    if expected is not None and written != expected:
        message = f"download ended after {written} of {expected} bytes"
        raise IncompleteDownloadError(message, path=shown, received=written, expected=expected)
    return written


@functools.lru_cache(maxsize=16)
def _client_timeout(total: float, connect: float) -> aiohttp.ClientTimeout:
    # sock_connect, not connect: ``connect`` also times the wait for a pooled
    # connection, arming one more timer per request, and the client's own limiter
    # already keeps requests in flight within the pool's size.
    return aiohttp.ClientTimeout(total=total, sock_connect=connect)
