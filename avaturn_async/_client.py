"""``AvaturnClient``: the endpoint groups, the retry loop, the concurrency limit, the pace.

A client is its :class:`ClientOptions` (one frozen value, ``_client_options``) and
its key, beside a ``SharedPool`` of what derived clients share (``_pool``:
connections, request limit, backoff, pace, event loop, open or closed state).
Endpoints: ``_resources``; what a call reports: ``_observe``; proxies and TLS:
``_network``; extra headers, query and body: ``_extras``.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
from asyncio import get_running_loop
from collections.abc import Iterable, Mapping
from pathlib import Path
from ssl import SSLContext
from threading import get_ident
from typing import Any, Literal, TypeVar

import aiohttp
import attrs
from multidict import CIMultiDictProxy

from . import _observe
from . import _options as arguments  # the readers of the constructor's arguments
from ._adaptive import AdaptiveConcurrency, AdaptiveLimiter
from ._answers import read_model, retry_after_seconds
from ._client_options import (
    DEFAULT_CLOCK,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    ClientOptions,
    Forward,
    derive_options,
    own_transport,
    text,
)
from ._clock import Clock
from ._decide import decide
from ._errors import ClientClosedError, InvalidRequestError, TransportError
from ._extras import merge_headers
from ._hub import EventHub
from ._models import DownloadedFile
from ._observe import Hook, Tracer, attach_metadata
from ._options import DEFAULT_BASE_URL
from ._pacing import RateBudget
from ._pool import CLOSED, OPEN, SharedPool, frozen_headers, key_headers, open_pool
from ._requests import Request, Response
from ._resources import Avatars, Exports, Renders, Sessions, Users
from ._retry import RetryPolicy
from ._ssrf import DownloadGuard, guarding
from ._transport import Timeouts, Transport
from ._version import __version__

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MAX_DOWNLOAD_BYTES", "AvaturnClient", "ClientOptions"]

T = TypeVar("T")

DEFAULT_MAX_DOWNLOAD_BYTES = 1 << 30
"""The default cap of :meth:`AvaturnClient.download`: 1 GiB (exported models are MBs)."""
logger = logging.getLogger("avaturn_async")

USER_AGENT = (
    f"avaturn-async/{__version__} python/{platform.python_version()} aiohttp/{aiohttp.__version__}"
)
_UNSET: Any = object()


class AvaturnClient:
    """An async client for every Avaturn endpoint.

    Use it as an async context manager so its HTTP session is closed::

        async with AvaturnClient() as client:
            user = await client.users.create()

    Every option has one meaning, with an explicit off value where it can be off
    (``docs/client.md``). A client belongs to the event loop it is opened in
    (:class:`EventLoopError`); ``avaturn_async.sync`` has it for synchronous code.

    Every endpoint method also takes ``extra_headers=``, ``extra_query=`` and, with
    a JSON body, ``extra_body=``: documented arguments and the client's own headers
    win any clash; secret-named headers are redacted in reprs and logs.

    Args:
        api_key: the secret key (default ``$AVATURN_API_KEY``), sent as a bearer token
            and never shown in reprs, logs or errors.
        base_url: defaults to ``$AVATURN_BASE_URL``, then ``https://api.avaturn.me``.
        retry: the :class:`RetryPolicy`; ``RetryPolicy.off()`` turns retrying off.
        timeouts: per-attempt :class:`Timeouts`.
        max_concurrency: requests in flight at once from this client, across all tasks.
        session: an ``aiohttp.ClientSession`` to borrow; the client then does not close it.
        transport: a custom :class:`Transport` (overrides ``session``; give it your
            own ``proxy`` and ``ssl``).
        user_agent: replaces the default ``User-Agent``.
        event_hub: the :class:`EventHub` your webhook receiver feeds; jobs' ``wait()``
            listen to it (and poll without it).
        adaptive: shared backoff on rate limiting: ``True``, an :class:`AdaptiveConcurrency`,
            or ``False`` (each task retries for itself).
        on_request, on_response, on_retry, on_error: hooks, sync or async, called with a
            :class:`RequestInfo`, :class:`ResponseInfo`, :class:`RetryInfo` or
            :class:`ErrorInfo`. A hook that raises is logged and ignored.
        tracing: OpenTelemetry client spans: ``"auto"`` (once a tracer provider is
            installed), ``True`` or ``False``.
        clock: where the client reads the time, sleeps and draws jitter (a test seam).
        allowed_download_hosts: hosts :meth:`download` may reach although they are on
            a loopback, private or link-local address (host names, ``*.example.com``,
            IP addresses or networks such as ``10.1.0.0/16``). Others are refused
            (:class:`UnsafeURLError`), except the addresses of ``base_url`` itself.
        rate_limit: API requests per second at most, paced evenly, or a :class:`RateBudget`;
            ``None``: paced (with ``adaptive``) at the rate the server's 429s teach.
        proxy: ``"http://user:pass@host:port"`` for every request (API calls, uploads,
            downloads), whatever the environment says; its credentials are never shown.
        trust_env: read ``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY`` and ``NO_PROXY``
            when ``proxy`` is not given (never for loopback hosts); ``False``: don't.
        ssl: an ``ssl.SSLContext`` for every connection: a private CA, a client certificate.
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
        allowed_download_hosts: Iterable[str] = (),
        rate_limit: float | RateBudget | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
        ssl: SSLContext | None = None,
    ) -> None:
        options = ClientOptions(
            base_url=arguments.read_base_url(base_url),
            retry=arguments.or_default(retry, DEFAULT_RETRY, "retry"),
            timeouts=arguments.or_default(timeouts, DEFAULT_TIMEOUTS, "timeouts"),
            max_concurrency=max_concurrency,
            adaptive=arguments.adaptive_settings(adaptive),
            on_request=on_request,
            on_response=on_response,
            on_retry=on_retry,
            on_error=on_error,
            tracing=arguments.tracing_mode(tracing),
            clock=clock,
            allowed_download_hosts=tuple(allowed_download_hosts),
            rate_limit=arguments.rate_limit(rate_limit),
        )
        transport = own_transport(transport, max_concurrency, session, proxy, trust_env, ssl)
        shared = open_pool(transport, options, user_agent or USER_AGENT)
        plain = frozen_headers({**shared.download_headers, "Accept": "application/json"})
        self._bind(shared, options, Tracer(options.tracing), (plain, key_headers(plain, api_key)))
        self._owns_pool = True
        self.event_hub: EventHub | None = event_hub

    def _bind(
        self,
        shared: SharedPool,
        options: ClientOptions,
        tracer: Tracer,
        headers: tuple[CIMultiDictProxy[str], CIMultiDictProxy[str]],
        guard: DownloadGuard | None = None,
    ) -> None:
        """``guard``: which hosts ``download()`` may reach; by default those of ``options``."""
        hosts, base_url = options.allowed_download_hosts, options.base_url
        self._download_guard = guard or DownloadGuard(hosts, base_url=base_url)
        self._shared = shared
        self._options = options
        self._tracer = tracer
        self._plain_headers, self._auth_headers = headers  # without, and with, the key
        self._state = OPEN
        self._now = options.clock.now  # bound once: the retry loop reads it on every attempt

    # The endpoint groups, made on first use: ``with_options`` stays cheap.
    users: functools.cached_property[Users] = functools.cached_property(Users)
    sessions: functools.cached_property[Sessions] = functools.cached_property(Sessions)
    avatars: functools.cached_property[Avatars] = functools.cached_property(Avatars)
    renders: functools.cached_property[Renders] = functools.cached_property(Renders)
    exports: functools.cached_property[Exports] = functools.cached_property(Exports)

    @property
    def options(self) -> ClientOptions:
        return self._options

    retry: Forward[RetryPolicy] = Forward("_options")
    timeouts: Forward[Timeouts] = Forward("_options")
    adaptive: Forward[AdaptiveConcurrency | None] = Forward("_options")
    clock: Forward[Clock] = Forward("_options")
    base_url: Forward[str] = Forward("_options")

    backoff: Forward[AdaptiveLimiter | None] = Forward("_shared")
    """The live shared backoff (gate and concurrency limit); ``None`` when off."""

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
        api_key: str = _UNSET,
        base_url: str = _UNSET,
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
        """A client with some options changed, sharing this one's connection pool,
        request limit, shared backoff and event hub: cheap enough to make per call::

            await client.with_options(timeout=5, max_attempts=2).users.create()
            project_b = client.with_options(api_key=KEY_B)  # another Avaturn project

        ``timeout`` sets ``timeouts.request``, ``max_attempts`` the retry policy's.
        Closing the derived client closes nothing shared; closing this one closes both.
        """
        changes = {k: v for k, v in locals().items() if v is not _UNSET and k != "self"}
        plain, auth, guard = self._plain_headers, self._auth_headers, self._download_guard
        if "api_key" in changes:
            auth = key_headers(plain, text(changes.pop("api_key"), "api_key"))
        options, tracer = derive_options(self._options, self._tracer, changes)
        same_base = options.base_url == self._options.base_url  # the guard lets it through
        derived = object.__new__(AvaturnClient)
        derived._bind(self._shared, options, tracer, (plain, auth), guard if same_base else None)
        derived._owns_pool = False
        derived.event_hub = self.event_hub
        return derived

    def __repr__(self) -> str:
        return f"AvaturnClient(base_url={self.base_url!r}, api_key='***')"

    def __del__(self) -> None:
        # Only the pool's owner warns, once used (a pool never used holds no connection).
        shared: SharedPool | None = getattr(self, "_shared", None)  # None: __init__ failed
        if getattr(self, "_owns_pool", False) and shared and shared.loop and shared.state is OPEN:
            shared.warn_unclosed(self)

    async def __aenter__(self) -> AvaturnClient:
        self._check_open()
        self._shared.enter_loop(self)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session (unless borrowed). Calling it twice is harmless.

        A client made by :meth:`with_options` closes only itself: the connections
        belong to the client it was derived from. In another event loop than the
        one the client was opened in, raises :class:`EventLoopError` while that loop
        runs; once it is closed (its connections went with it), only marks it closed.
        """
        if self._state is CLOSED:
            return
        shared, gone = self._shared, False
        if self._owns_pool and shared.state is OPEN and shared.loop is not None:
            gone = shared.loop.is_closed() and shared.loop is not get_running_loop()
            if not gone:
                shared.enter_loop(self)
        self._state = CLOSED
        if self._owns_pool:
            shared.state = CLOSED
            if not gone:
                await shared.transport.aclose()

    @property
    def closed(self) -> bool:
        return self._state is CLOSED or self._shared.state is CLOSED

    def _check_open(self) -> None:
        if self.closed:
            raise ClientClosedError("this AvaturnClient is closed; create a new one")

    async def _send(self, request: Request) -> Response:
        """Send with retries; returns a 2xx answer or raises a typed error. Three steps, as
        httpx splits ``send``: :meth:`_attempt` sends once, :func:`decide` says what to
        do about a failure (pure), and the error it names is reported and raised."""
        shared, options = self._shared, self._options
        if self._state is CLOSED or shared.state is CLOSED:
            self._check_open()
        if shared.watched._thread_id != get_ident():  # not in the bound loop's thread
            shared.enter_loop(self)
        url = request.url(options.base_url)
        headers = self._auth_headers if request.authenticated else self._plain_headers
        if request.extra_headers is not None:
            headers = merge_headers(headers, request.extra_headers)
        started = now = self._now()
        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt(request, url, headers, attempt, now)
            if type(outcome) is Response and 200 <= outcome.status < 300:
                return attrs.evolve(outcome, attempts=attempt) if attempt > 1 else outcome
            elapsed, random = self._now() - started, options.clock.random
            decision = decide(
                options.retry, request, outcome, attempt=attempt, elapsed=elapsed, random=random
            )
            if decision.delay is None:
                await _observe.report_failure(options.on_error, request, attempt, decision.error)
                raise decision.error
            await _observe.report_retry(
                options.on_retry, request, attempt, decision.reason, decision.delay
            )
            await options.clock.sleep(decision.delay)
            now = self._now()

    async def _attempt(
        self, request: Request, url: str, headers: Mapping[str, str], attempt: int, now: float
    ) -> Response | TransportError:
        """One attempt under the request limit (and pace): the answer (any status) or the
        failure. ``now`` is the clock read by the caller just before: one read less per call."""
        shared, options = self._shared, self._options
        limiter = shared.limiter
        sent_at = now
        if not limiter.acquire_nowait():
            await limiter.acquire()
            sent_at = self._now()
        try:
            if self._state is CLOSED or shared.state is CLOSED:
                self._check_open()  # closed while this call waited for a slot
            adaptive = shared.backoff
            if adaptive is not None and adaptive.resume_at > sent_at:  # the gate is shut
                await options.clock.sleep(adaptive.pause_remaining())
                sent_at = self._now()
            pacing = shared.pacing
            if pacing is not None and pacing.active and request.authenticated:
                sent_at = await pacing.wait_turn()  # after the slot: it goes at its turn
            if options.on_request is not None:
                await _observe.report_request(options.on_request, request, attempt)
            if debug := logger.isEnabledFor(logging.DEBUG):
                _observe.log_sending(request, url, headers, attempt)
            sending = shared.transport.send(
                request, url=url, headers=headers, timeouts=options.timeouts
            )
            if self._tracer.enabled_at(sent_at):
                sending = _observe.traced(self._tracer, request, attempt, sending)
            if shared.metrics.enabled_at(sent_at):
                sending = shared.metrics.timed(request, url, sending)
            response = await sending
        except TransportError as exc:
            return exc
        finally:
            limiter.release()
        if 200 <= response.status < 300:
            if adaptive is not None and not adaptive.at_max:
                shared.adapt(response.status, None, sent_at)
        elif adaptive is not None:
            shared.adapt(response.status, retry_after_seconds(response), sent_at)
        if pacing is not None and request.authenticated:
            wait = retry_after_seconds(response)
            pacing.observe(response.status, response.headers, wait, sent_at)
        if options.on_response is not None or debug:
            elapsed = self._now() - sent_at
            await _observe.report_answer(options.on_response, request, response, attempt, elapsed)
        return response

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

        The URL often comes from a webhook body, so its host (and every redirect's)
        must be on the public internet: a loopback, private, link-local (the cloud
        metadata address) or other internal address is refused before connecting,
        unless named in ``allowed_download_hosts`` or ``base_url`` is on it.

        Raises:
            UnsafeURLError: the host, or a redirect's, is inside your network.
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
        path, shared = Path(destination), self._shared
        if shared.watched._thread_id != get_ident():
            shared.enter_loop(self)
        async with shared.limiter:
            with guarding(self._download_guard):  # the transport checks every host with it
                size = await shared.transport.download(
                    url,
                    path,
                    headers=shared.download_headers,
                    timeouts=self._options.timeouts,
                    max_bytes=max_bytes,
                )
        return DownloadedFile(path=path, size=size)
