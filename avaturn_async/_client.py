"""``AvaturnClient``: configuration, the retry loop and the concurrency limit.

The endpoints themselves live in ``_resources`` as ``client.<area>.<verb>()``.
"""

from __future__ import annotations

import logging
import os
import platform
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import aiohttp
import anyio
import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from ._adaptive import AdaptiveConcurrency, AdaptiveLimiter
from ._errors import (
    APIError,
    ClientClosedError,
    ConfigurationError,
    ConnectError,
    InvalidRequestError,
    RequestTimeoutError,
    TransportError,
)
from ._hub import EventHub
from ._limiter import RequestLimiter
from ._models import DownloadedFile
from ._observe import (
    ErrorInfo,
    Hook,
    RequestInfo,
    ResponseInfo,
    RetryInfo,
    Tracer,
    attach_metadata,
    call_hook,
    record_status,
)
from ._protocol import Request, Response, error_from_response, read_model, retry_after_seconds
from ._resources import Avatars, Exports, Renders, Sessions, Users
from ._retry import FailureKind, RetryPolicy, retry_delay
from ._transport import AiohttpTransport, Timeouts, Transport
from ._version import __version__

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MAX_DOWNLOAD_BYTES", "AvaturnClient"]

T = TypeVar("T")

DEFAULT_BASE_URL = "https://api.avaturn.me"
DEFAULT_MAX_DOWNLOAD_BYTES = 1 << 30
"""The default cap of :meth:`AvaturnClient.download`: 1 GiB (exported models are MBs)."""
logger = logging.getLogger("avaturn_async")

USER_AGENT = (
    f"avaturn-async/{__version__} python/{platform.python_version()} aiohttp/{aiohttp.__version__}"
)


_DEFAULT_ADAPTIVE = AdaptiveConcurrency()


def _response_info(
    request: Request, response: Response, attempt: int, elapsed: float
) -> ResponseInfo:
    return ResponseInfo(
        route=request.route,
        method=request.method,
        path=request.display_path,
        attempt=attempt,
        status=response.status,
        headers=response.headers,
        request_id=response.request_id,
        elapsed=elapsed,
    )


def _failure_kind(exc: TransportError) -> FailureKind:
    if isinstance(exc, ConnectError):
        return FailureKind.CONNECT
    if isinstance(exc, RequestTimeoutError):
        return FailureKind.TIMEOUT
    return FailureKind.CONNECTION_LOST


class AvaturnClient:
    """An async client for every Avaturn endpoint.

    Use it as an async context manager so its HTTP session is closed::

        async with AvaturnClient() as client:
            user = await client.users.create()

    Args:
        api_key: the secret API key; defaults to ``$AVATURN_API_KEY``. It is sent as a
            bearer token and never shown in reprs, logs or errors.
        base_url: defaults to ``$AVATURN_BASE_URL``, then ``https://api.avaturn.me``.
        retry: the :class:`RetryPolicy` (on by default; ``RetryPolicy.disabled()`` turns it off).
        timeouts: per-attempt :class:`Timeouts`.
        max_concurrency: requests in flight at once from this client, across all tasks.
        session: an ``aiohttp.ClientSession`` to borrow; the client then does not close it.
        transport: a custom :class:`Transport` (overrides ``session``).
        event_hub: the :class:`EventHub` your webhook receiver publishes into; jobs'
            ``wait()`` listen to it (and fall back to polling without it).
        user_agent: replaces the default ``User-Agent``.
        adaptive: shared backoff on rate limiting (:class:`AdaptiveConcurrency`); on by
            default, ``None`` turns it off so each task only retries for itself.
        on_request, on_response, on_retry, on_error: lifecycle hooks, sync or async,
            called with :class:`RequestInfo`, :class:`ResponseInfo`, :class:`RetryInfo`
            and :class:`ErrorInfo`. A hook that raises is logged and ignored.
        tracing: OpenTelemetry client spans; by default on when ``opentelemetry-api``
            is installed.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        max_concurrency: int = 16,
        session: aiohttp.ClientSession | None = None,
        transport: Transport | None = None,
        user_agent: str | None = None,
        event_hub: EventHub | None = None,
        adaptive: AdaptiveConcurrency | None = _DEFAULT_ADAPTIVE,
        on_request: Hook | None = None,
        on_response: Hook | None = None,
        on_retry: Hook | None = None,
        on_error: Hook | None = None,
        tracing: bool | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("AVATURN_API_KEY")
        if not key or not key.strip():
            raise ConfigurationError(
                "no API key: pass api_key=... or set the AVATURN_API_KEY environment variable"
            )
        url = base_url or os.environ.get("AVATURN_BASE_URL") or DEFAULT_BASE_URL
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"base_url must start with http:// or https://, got {url!r}")
        if max_concurrency < 1:
            raise ConfigurationError("max_concurrency must be at least 1")
        self._api_key = key.strip()
        self.base_url = url.rstrip("/")
        self.retry = retry if retry is not None else RetryPolicy()
        self.timeouts = timeouts if timeouts is not None else Timeouts()
        self.max_concurrency = max_concurrency
        self._transport: Transport = transport or AiohttpTransport(
            session=session, connection_limit=max_concurrency
        )
        self._user_agent = user_agent or USER_AGENT
        # Built once, as the immutable case-insensitive mapping aiohttp would convert
        # a dict into on every request: it copies them as they are.
        plain = {"User-Agent": self._user_agent, "Accept": "application/json"}
        self._plain_headers = CIMultiDictProxy(CIMultiDict(plain))
        self._download_headers = CIMultiDictProxy(CIMultiDict({"User-Agent": self._user_agent}))
        self._auth_headers = CIMultiDictProxy(
            CIMultiDict({**plain, "Authorization": f"Bearer {self._api_key}"})
        )
        self.event_hub = event_hub
        self._limiter = RequestLimiter(max_concurrency)
        self._closed = False
        # Seams for tests: the retry loop's clock, sleep and jitter source.
        self._sleep: Callable[[float], Awaitable[None]] = anyio.sleep
        self._clock: Callable[[], float] = time.monotonic
        self._random: Callable[[], float] = random.random
        self.adaptive = (
            AdaptiveLimiter(adaptive, max_concurrency, clock=self._now)
            if adaptive is not None
            else None
        )
        self.on_request = on_request
        self.on_response = on_response
        self.on_retry = on_retry
        self.on_error = on_error
        self._tracer = Tracer(tracing)

        self.users = Users(self)
        self.sessions = Sessions(self)
        self.avatars = Avatars(self)
        self.renders = Renders(self)
        self.exports = Exports(self)

    def __repr__(self) -> str:
        return f"AvaturnClient(base_url={self.base_url!r}, api_key='***')"

    async def __aenter__(self) -> AvaturnClient:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session (unless borrowed). Calling it twice is harmless."""
        if not self._closed:
            self._closed = True
            await self._transport.aclose()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("this AvaturnClient is closed; create a new one")

    def _now(self) -> float:
        return self._clock()

    def _adapt(self, response: Response, retry_after: float | None, sent_at: float) -> None:
        """Feed the shared backoff, and resize the limiter when its limit moved."""
        adaptive = self.adaptive
        if adaptive is None:
            return
        status = response.status
        if status == 429 or (status == 503 and retry_after is not None):
            adaptive.on_rate_limited(retry_after=retry_after, sent_at=sent_at)
        elif not (200 <= status < 300 and adaptive.on_success()):
            return
        limit = adaptive.limit
        if limit != self._limiter.total_tokens:
            self._limiter.total_tokens = limit

    async def _send(self, request: Request) -> Response:
        """Send with retries; returns a 2xx answer or raises a typed error.

        One coroutine does the whole loop, attempt included: every extra layer is
        walked again each time aiohttp resumes the call, and this is the hot path.
        """
        self._check_open()
        url = request.url(self.base_url)
        headers = self._auth_headers if request.authenticated else self._plain_headers
        limiter = self._limiter
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            error: TransportError | APIError
            response: Response | None = None
            failure: TransportError | None = None
            if not limiter.acquire_nowait():
                await limiter.acquire()
            try:
                if self._closed:  # closed while this call waited for a slot
                    self._check_open()
                sent_at = self._clock()
                adaptive = self.adaptive
                if adaptive is not None and adaptive.resume_at > sent_at:  # the gate is shut
                    await self._sleep(adaptive.pause_remaining())
                    sent_at = self._clock()
                if self.on_request is not None:
                    await call_hook(self.on_request, self._request_info(request, attempt))
                if self._tracer.enabled:
                    response = await self._traced_send(request, url, headers, attempt)
                else:
                    response = await self._transport.send(
                        request, url=url, headers=headers, timeouts=self.timeouts
                    )
            except TransportError as exc:
                failure = exc
            finally:
                limiter.release()

            if response is None:
                assert failure is not None  # a transport answers or raises
                error = failure
                kind = _failure_kind(failure)
                reason = kind.value
                delay = retry_delay(
                    self.retry,
                    attempt=attempt,
                    kind=kind,
                    idempotent=request.idempotent,
                    elapsed=self._clock() - started,
                    random=self._random,
                )
            else:
                elapsed = self._clock() - sent_at
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "%s %s -> %d in %.3f s",
                        request.method,
                        request.display_path,
                        response.status,
                        elapsed,
                    )
                ok = 200 <= response.status < 300
                retry_after = None if ok else retry_after_seconds(response)
                if adaptive is not None and not (ok and adaptive.at_max):
                    self._adapt(response, retry_after, sent_at)
                if self.on_response is not None:
                    await call_hook(
                        self.on_response, _response_info(request, response, attempt, elapsed)
                    )
                if ok:
                    return attrs.evolve(response, attempts=attempt) if attempt > 1 else response
                error = error_from_response(response, request)
                reason = f"status {response.status}"
                delay = retry_delay(
                    self.retry,
                    attempt=attempt,
                    kind=FailureKind.STATUS,
                    status=response.status,
                    retry_after=retry_after,
                    idempotent=request.idempotent,
                    elapsed=self._clock() - started,
                    random=self._random,
                )
            if delay is None:
                await self._give_up(request, attempt, error)
                raise error
            path = request.display_path
            logger.info(
                "retrying %s %s in %.2f s (attempt %d: %s)",
                request.method,
                path,
                delay,
                attempt,
                reason,
            )
            await call_hook(
                self.on_retry,
                RetryInfo(
                    route=request.route,
                    method=request.method,
                    path=path,
                    attempt=attempt,
                    delay=delay,
                    reason=reason,
                ),
            )
            await self._sleep(delay)

    def _request_info(self, request: Request, attempt: int) -> RequestInfo:
        return RequestInfo(
            route=request.route, method=request.method, path=request.display_path, attempt=attempt
        )

    async def _traced_send(
        self, request: Request, url: str, headers: Mapping[str, str], attempt: int
    ) -> Response:
        with self._tracer.span(
            request.route, request.method, request.display_path, attempt
        ) as span:
            response = await self._transport.send(
                request, url=url, headers=headers, timeouts=self.timeouts
            )
            record_status(span, response.status)
        return response

    async def _give_up(self, request: Request, attempts: int, error: Exception) -> None:
        path = request.display_path
        if attempts > 1:
            logger.warning(
                "giving up on %s %s after %d attempts: %s", request.method, path, attempts, error
            )
        if self.on_error is not None:
            await call_hook(
                self.on_error,
                ErrorInfo(
                    route=request.route,
                    method=request.method,
                    path=path,
                    attempts=attempts,
                    error=error,
                ),
            )

    async def _call(self, request: Request, model: type[T]) -> T:
        response = await self._send(request)
        return self._with_metadata(read_model(response, model), request, response)

    def _with_metadata(self, obj: T, request: Request, response: Response) -> T:
        """Make ``response_of(obj)`` answer this response's metadata (built when asked)."""
        return attach_metadata(obj, request.route, response)

    async def download(
        self,
        url: str,
        destination: str | os.PathLike[str],
        *,
        max_bytes: int | None = DEFAULT_MAX_DOWNLOAD_BYTES,
    ) -> DownloadedFile:
        """Stream a render or export URL to ``destination``; returns what was written.

        The URLs Avaturn hands out are pre-signed and temporary: download at once.
        The URL is sent exactly as received (no API key goes with it). The body is
        written to a temporary file beside ``destination`` and renamed only once
        it is whole, so a file at ``destination`` is always complete.

        Raises:
            DownloadTooLargeError: the file is over ``max_bytes`` (``None``: no cap).
            IncompleteDownloadError: the body ended before its ``Content-Length``,
                or the connection dropped mid-body.
            DownloadError: the file server refused (``status``; 403 when expired).
            RequestTimeoutError: not finished within ``timeouts.upload`` seconds.
        """
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidRequestError("url must be an absolute http(s) URL")
        if max_bytes is not None and (isinstance(max_bytes, bool) or max_bytes < 0):
            raise InvalidRequestError("max_bytes must be a non-negative int or None")
        self._check_open()
        path = Path(destination)
        async with self._limiter:
            size = await self._transport.download(
                url,
                path,
                headers=self._download_headers,
                timeouts=self.timeouts,
                max_bytes=max_bytes,
            )
        return DownloadedFile(path=path, size=size)
