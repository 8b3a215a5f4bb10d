"""``AvaturnClient``: configuration, the retry loop and the concurrency limit.

The endpoints themselves live in ``_resources`` as ``client.<area>.<verb>()``.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from ._adaptive import AdaptiveConcurrency, AdaptiveLimiter
from ._answers import read_model, retry_after_seconds
from ._clock import Clock
from ._decide import decide
from ._errors import (
    ClientClosedError,
    ConfigurationError,
    InvalidRequestError,
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
from ._options import adaptive_settings, or_default, tracing_mode
from ._public import public
from ._requests import Request, Response
from ._resources import Avatars, Exports, Renders, Sessions, Users
from ._retry import RetryPolicy
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


DEFAULT_RETRY = RetryPolicy()
DEFAULT_TIMEOUTS = Timeouts()
DEFAULT_CLOCK = Clock()
_UNSET: Any = object()
_HOOKS = ("on_request", "on_response", "on_retry", "on_error")
_RESOURCES = ("users", "sessions", "avatars", "renders", "exports")


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


@attrs.frozen(slots=True)
class _Shared:
    """What a client and the clients derived from it by ``with_options`` share."""

    transport: Transport
    limiter: RequestLimiter
    backoff: AdaptiveLimiter | None
    closed: list[bool]
    """One cell: the pool's owner was closed (then every derived client is too)."""


class AvaturnClient:
    """An async client for every Avaturn endpoint.

    Use it as an async context manager so its HTTP session is closed::

        async with AvaturnClient() as client:
            user = await client.users.create()

    Every option has one meaning, and the options that can be off have an
    explicit off value (the table is in ``docs/client.md``).

    Args:
        api_key: the secret API key; defaults to ``$AVATURN_API_KEY``. It is sent as a
            bearer token and never shown in reprs, logs or errors.
        base_url: defaults to ``$AVATURN_BASE_URL``, then ``https://api.avaturn.me``.
        retry: the :class:`RetryPolicy`; ``RetryPolicy.off()`` turns retrying off.
        timeouts: per-attempt :class:`Timeouts`.
        max_concurrency: requests in flight at once from this client, across all tasks.
        session: an ``aiohttp.ClientSession`` to borrow; the client then does not close it.
        transport: a custom :class:`Transport` (overrides ``session``).
        user_agent: replaces the default ``User-Agent``.
        event_hub: the :class:`EventHub` your webhook receiver publishes into; jobs'
            ``wait()`` listen to it (and fall back to polling without it).
        adaptive: shared backoff on rate limiting: ``True`` (default settings),
            an :class:`AdaptiveConcurrency`, or ``False`` (each task retries for itself).
        on_request, on_response, on_retry, on_error: lifecycle hooks, sync or async,
            called with :class:`RequestInfo`, :class:`ResponseInfo`, :class:`RetryInfo`
            and :class:`ErrorInfo`. A hook that raises is logged and ignored.
        tracing: OpenTelemetry client spans: ``"auto"`` (on once a tracer provider is
            installed), ``True`` or ``False``.
        clock: where the retry loop and jobs read the time, sleep and draw jitter
            (a seam for tests).
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        max_concurrency: int = 16,
        session: aiohttp.ClientSession | None = None,
        transport: Transport | None = None,
        user_agent: str | None = None,
        event_hub: EventHub | None = None,
        adaptive: AdaptiveConcurrency | bool = True,
        on_request: Hook | None = None,
        on_response: Hook | None = None,
        on_retry: Hook | None = None,
        on_error: Hook | None = None,
        tracing: bool | Literal["auto"] = "auto",
        clock: Clock = DEFAULT_CLOCK,
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
        self.base_url: str = url.rstrip("/")
        self.max_concurrency = max_concurrency
        self._set_clock(clock)
        self.adaptive: AdaptiveConcurrency | None = adaptive_settings(adaptive)
        self._shared = _Shared(
            transport=transport
            or AiohttpTransport(session=session, connection_limit=max_concurrency),
            limiter=RequestLimiter(max_concurrency),
            backoff=None
            if self.adaptive is None
            else AdaptiveLimiter(self.adaptive, max_concurrency, now=self._now),
            closed=[False],
        )
        self._closed = False
        self._owns_pool = True
        self._build_headers(user_agent or USER_AGENT)
        self.event_hub = event_hub
        self.retry: RetryPolicy = or_default(retry, DEFAULT_RETRY, "retry")
        self.timeouts: Timeouts = or_default(timeouts, DEFAULT_TIMEOUTS, "timeouts")
        self.on_request = on_request
        self.on_response = on_response
        self.on_retry = on_retry
        self.on_error = on_error
        self._tracer = Tracer(tracing_mode(tracing))

    def _set_clock(self, clock: Clock) -> None:
        if not isinstance(clock, Clock):
            raise ConfigurationError("clock must be an avaturn_async.Clock")
        self.clock = clock
        # Bound once: the retry loop reads them on every attempt.
        self._now: Callable[[], float] = clock.now
        self._sleep: Callable[[float], Awaitable[None]] = clock.sleep

    def _build_headers(self, user_agent: str) -> None:
        self._user_agent = user_agent
        # Built once, as the immutable case-insensitive mapping aiohttp would convert
        # a dict into on every request: it copies them as they are.
        plain = {"User-Agent": user_agent, "Accept": "application/json"}
        self._plain_headers = CIMultiDictProxy(CIMultiDict(plain))
        self._download_headers = CIMultiDictProxy(CIMultiDict({"User-Agent": user_agent}))
        self._auth_headers = CIMultiDictProxy(
            CIMultiDict({**plain, "Authorization": f"Bearer {self._api_key}"})
        )

    # The endpoint groups, made on first use: ``with_options`` stays cheap.
    @functools.cached_property
    def users(self) -> Users:
        return Users(self)

    @functools.cached_property
    def sessions(self) -> Sessions:
        return Sessions(self)

    @functools.cached_property
    def avatars(self) -> Avatars:
        return Avatars(self)

    @functools.cached_property
    def renders(self) -> Renders:
        return Renders(self)

    @functools.cached_property
    def exports(self) -> Exports:
        return Exports(self)

    @property
    def backoff(self) -> AdaptiveLimiter | None:
        """The live shared backoff (gate and concurrency limit); ``None`` when off."""
        return self._shared.backoff

    @property
    def concurrency_limit(self) -> int:
        """Requests this client lets in flight now: ``max_concurrency``, less while backing off."""
        return self._shared.limiter.total_tokens

    @property
    def requests_waiting(self) -> int:
        """Calls waiting for one of the ``concurrency_limit`` slots now."""
        return self._shared.limiter.waiting

    def with_options(
        self,
        *,
        retry: RetryPolicy = _UNSET,
        max_attempts: int = _UNSET,
        timeouts: Timeouts = _UNSET,
        timeout: float = _UNSET,
        on_request: Hook | None = _UNSET,
        on_response: Hook | None = _UNSET,
        on_retry: Hook | None = _UNSET,
        on_error: Hook | None = _UNSET,
        tracing: bool | Literal["auto"] = _UNSET,
    ) -> AvaturnClient:
        """A client with some options changed, sharing this one's connections.

        The derived client uses the same connection pool, request limit, shared
        backoff and event hub, so it is cheap enough to make per call::

            await client.with_options(timeout=5, max_attempts=2).users.create()

        ``timeout`` sets ``timeouts.request``; ``max_attempts`` sets the retry policy's.
        Closing the derived client closes nothing shared; closing this one closes both.
        """
        derived = object.__new__(AvaturnClient)
        state = dict(self.__dict__)
        for name in _RESOURCES:
            state.pop(name, None)
        derived.__dict__.update(state)
        derived._closed = False
        derived._owns_pool = False
        if retry is not _UNSET:
            derived.retry = retry
        if max_attempts is not _UNSET:
            derived.retry = attrs.evolve(derived.retry, max_attempts=max_attempts)
        if timeouts is not _UNSET:
            derived.timeouts = timeouts
        if timeout is not _UNSET:
            derived.timeouts = attrs.evolve(derived.timeouts, request=timeout)
        derived._set_hooks(on_request, on_response, on_retry, on_error)
        if tracing is not _UNSET:
            derived._tracer = Tracer(tracing_mode(tracing))
        return derived

    def _set_hooks(self, *hooks: Hook | None) -> None:
        for name, hook in zip(_HOOKS, hooks, strict=True):
            if hook is not _UNSET:
                setattr(self, name, hook)

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
        """Close the HTTP session (unless borrowed). Calling it twice is harmless.

        A client made by :meth:`with_options` closes only itself: the connections
        belong to the client it was derived from.
        """
        if self._closed:
            return
        self._closed = True
        if self._owns_pool:
            self._shared.closed[0] = True
            await self._shared.transport.aclose()

    @property
    def closed(self) -> bool:
        return self._closed or self._shared.closed[0]

    def _check_open(self) -> None:
        if self._closed or self._shared.closed[0]:
            raise ClientClosedError("this AvaturnClient is closed; create a new one")

    def _adapt(self, response: Response, retry_after: float | None, sent_at: float) -> None:
        """Feed the shared backoff, and resize the limiter when its limit moved."""
        adaptive = self._shared.backoff
        if adaptive is None:
            return
        status = response.status
        if status == 429 or (status == 503 and retry_after is not None):
            adaptive.on_rate_limited(retry_after=retry_after, sent_at=sent_at)
        elif not (200 <= status < 300 and adaptive.on_success()):
            return
        limit = adaptive.limit
        limiter = self._shared.limiter
        if limit != limiter.total_tokens:
            limiter.total_tokens = limit

    async def _send(self, request: Request) -> Response:
        """Send with retries; returns a 2xx answer or raises a typed error.

        Three steps, as httpx splits ``send``: :meth:`_attempt` sends once,
        :func:`decide` says what to do about a failure (pure), and
        :meth:`_give_up` reports the error that is then raised.
        """
        if self._closed or self._shared.closed[0]:
            self._check_open()
        url = request.url(self.base_url)
        headers = self._auth_headers if request.authenticated else self._plain_headers
        started = now = self._now()
        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt(request, url, headers, attempt, now)
            if type(outcome) is Response and 200 <= outcome.status < 300:
                return attrs.evolve(outcome, attempts=attempt) if attempt > 1 else outcome
            decision = decide(
                self.retry,
                request,
                outcome,
                attempt=attempt,
                elapsed=self._now() - started,
                random=self.clock.random,
            )
            if decision.delay is None:
                await self._give_up(request, attempt, decision.error)
                raise decision.error
            await self._before_retry(request, attempt, decision.reason, decision.delay)
            await self._sleep(decision.delay)
            now = self._now()

    async def _attempt(
        self, request: Request, url: str, headers: Mapping[str, str], attempt: int, now: float
    ) -> Response | TransportError:
        """One attempt under the request limit: the answer (any status) or the failure.

        ``now`` is the clock read by the caller just before: one read less per call.
        """
        shared = self._shared
        limiter = shared.limiter
        sent_at = now
        if not limiter.acquire_nowait():
            await limiter.acquire()
            sent_at = self._now()
        try:
            if self._closed or shared.closed[0]:  # closed while this call waited for a slot
                self._check_open()
            adaptive = shared.backoff
            if adaptive is not None and adaptive.resume_at > sent_at:  # the gate is shut
                await self._sleep(adaptive.pause_remaining())
                sent_at = self._now()
            if self.on_request is not None:
                await call_hook(self.on_request, self._request_info(request, attempt))
            if self._tracer.enabled_at(sent_at):
                response = await self._traced_send(request, url, headers, attempt)
            else:
                response = await shared.transport.send(
                    request, url=url, headers=headers, timeouts=self.timeouts
                )
        except TransportError as exc:
            return exc
        finally:
            limiter.release()
        if 200 <= response.status < 300:
            if adaptive is not None and not adaptive.at_max:
                self._adapt(response, None, sent_at)
        elif adaptive is not None:
            self._adapt(response, retry_after_seconds(response), sent_at)
        if self.on_response is not None or logger.isEnabledFor(logging.DEBUG):
            await self._answered(request, response, attempt, self._now() - sent_at)
        return response

    async def _answered(
        self, request: Request, response: Response, attempt: int, elapsed: float
    ) -> None:
        logger.debug(
            "%s %s -> %d in %.3f s", request.method, request.display_path, response.status, elapsed
        )
        if self.on_response is not None:
            await call_hook(self.on_response, _response_info(request, response, attempt, elapsed))

    async def _before_retry(
        self, request: Request, attempt: int, reason: str, delay: float
    ) -> None:
        path = request.display_path
        logger.info(
            "retrying %s %s in %.2f s (attempt %d: %s)",
            request.method,
            path,
            delay,
            attempt,
            reason,
        )
        if self.on_retry is not None:
            info = RetryInfo(
                route=request.route,
                method=request.method,
                path=path,
                attempt=attempt,
                delay=delay,
                reason=reason,
            )
            await call_hook(self.on_retry, info)

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
            response = await self._shared.transport.send(
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

    def _read(self, request: Request, response: Response, model: type[T]) -> T:
        """``response`` (from :meth:`_send`) read into ``model``, with its metadata."""
        return attach_metadata(read_model(response, model), request.route, response)

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
        async with self._shared.limiter:
            size = await self._shared.transport.download(
                url,
                path,
                headers=self._download_headers,
                timeouts=self.timeouts,
                max_bytes=max_bytes,
            )
        return DownloadedFile(path=path, size=size)


public("avaturn_async", AvaturnClient)
