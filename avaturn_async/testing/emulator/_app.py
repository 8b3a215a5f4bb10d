"""``AvaturnEmulator``: a stateful local fake of the Avaturn service, on aiohttp.web.

It speaks the wire format on its own (plain JSON), so the SDK's models are tested
against an independent reading of the API document rather than against themselves.

The pieces are listed in the package docstring (``testing/emulator/__init__.py``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping
from ssl import SSLContext
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import aiohttp
import anyio
from aiohttp import web

from ...webhooks._signing import decode_secret
from ._fault_injection import FaultInjector
from ._fault_plan import FaultPlan
from ._handlers import Handlers
from ._http import Handler, check_auth, drain, error_middleware, stamp_request_id, url_host
from ._options import check_options, deprecated_webhook_faults
from ._ratelimit import FixedWindowLimit, RateLimit
from ._records import AvatarRecord, ExportRecord, Outcome, RenderRecord, SessionRecord, UserRecord
from ._state import SAMPLE_ASSETS, EmulatorState
from ._stats import ROUTES, EmulatorStats
from ._store import EmulatorStore
from ._tasks import TaskSupervisor
from ._webhooks import WebhookDelivery, WebhookDispatcher
from ._work import SlowWork

__all__ = ["DEFAULT_WEBHOOK_SECRET", "AvaturnEmulator"]

DEFAULT_WEBHOOK_SECRET = "whsec_YXZhdHVybi1lbXVsYXRvci13ZWJob29rLXNlY3JldCE="
"""The webhook signing secret used when none is given. Not a secret: tests only."""


class AvaturnEmulator:
    """A local, stateful fake of the Avaturn API, for tests, demos and development.

    Use ``async with AvaturnEmulator() as emu:`` (or :meth:`start` / :meth:`aclose`,
    which may be called from different tasks, e.g. pytest fixtures) and point a client
    at ``emu.base_url`` with ``emu.api_key``. :meth:`serve_forever` runs it until
    cancelled (for a CLI). ``processing_delay``, ``render_delay``, ``export_delay``,
    ``webhook_url``, ``response_delay``, ``export_size``, ``rate_limit`` and ``faults``
    are also attributes that may be changed while running.

    Args:
        api_key: the only accepted bearer token.
        host, port: where to listen; port 0 picks a free port (read ``emu.port``).
        processing_delay, render_delay, export_delay: seconds before an uploaded
            avatar, a render or an export is done and its webhook is sent.
        webhook_url: where events are POSTed, read when an event happens (``None``:
            events are only recorded in ``emu.events``).
        webhook_secret: the Standard Webhooks secret (``whsec_<base64>`` or raw bytes)
            deliveries are signed with; default :data:`DEFAULT_WEBHOOK_SECRET`.
        sign_webhooks: ``False`` sends deliveries unsigned, as Avaturn documents its
            webhooks (no ``webhook-*`` headers); a token in ``webhook_url``'s query
            string is kept. Deliveries never follow redirects: a 3xx is a failure.
        webhook_max_attempts, webhook_retry_delay: attempts per event (the first one
            included) and the first backoff, doubled after each failed attempt (a
            non-2xx answer or a connection error). Retries keep ``webhook-id``.
        response_delay: seconds every API and upload request is held before it is
            handled, so that concurrent requests pile up (``stats.max_in_flight``).
        require_customization: renders and exports of an avatar whose customization
            was never set answer 409 (an emulator assumption: see below).
        export_size: size in bytes of every exported ``.glb`` file (at least 12).
        faults: a :class:`~avaturn_async.testing.FaultPlan`: seeded, per-route error
            rates, reset connections, cut-off answers, latency, slow uploads, and
            dropped, delayed, duplicated or reordered webhooks (counted in
            ``stats.faults`` and ``stats.ambiguous_creates``; dropped events are in
            ``dropped_webhooks``). A plan set later counts requests from 0 again.
        rate_limit: a :class:`~avaturn_async.testing.RateLimit` on authenticated API
            requests across all routes (a fixed window); the rest are answered 429
            with a fractional ``Retry-After`` and counted in ``stats.rate_limited``.
        state_file: an SQLite file holding the state, loaded on start and written
            before each answer, so a restarted emulator (even after ``kill -9``) is
            the same service (see ``_store``). ``None``: memory only.
        ssl: a server ``ssl.SSLContext`` (certificate and key loaded): serve HTTPS, and
            ``base_url`` and the file URLs start with ``https://``.
        duplicate_webhooks, reorder_webhooks: deprecated (they warn): the fault plan's
            ``WebhookFaults(duplicate=1.0)`` and ``WebhookFaults(reorder=True)``.

    Emulator assumptions, where the API document is silent (it lists 409 only for Set
    Customization, so a client must not rely on these): renders and exports of an
    avatar that is not ready answer 409, and so do those of an avatar made from photos
    whose customization was never set (the document calls the result "undefined";
    ``require_customization=False`` lifts this one). Request bodies follow one rule at
    every level: an absent optional field takes its default, an explicit ``null`` is a
    422 (no request field is nullable), and unknown keys are ignored.

    Test hooks: :meth:`fail_next`, the ``fail_*_for`` methods, the ``avatar_outcome``
    attribute (a callable taking the :class:`AvatarRecord` and returning ``"ready"`` or
    ``"failed"``; it overrides ``fail_avatars_for``), :meth:`retire_asset`,
    :meth:`add_asset` and :meth:`wait_idle`. Read-only views: ``users``, ``avatars``,
    ``renders``, ``exports``, ``sessions``, ``assets``; records: ``events`` (every event
    emitted), ``webhook_deliveries`` (every delivery attempt) and ``stats``.
    """

    SAMPLE_ASSETS: ClassVar[Mapping[str, str]] = SAMPLE_ASSETS
    ROUTES: ClassVar[tuple[str, ...]] = ROUTES
    REORDER_BATCH_SIZE: ClassVar[int] = 2
    REORDER_WINDOW: ClassVar[float] = 0.1
    SHUTDOWN_TIMEOUT: ClassVar[float] = 1.0

    avatar_outcome: Callable[[AvatarRecord], Outcome] | None = None
    _phase: Literal["new", "running", "closing", "closed"] = "new"
    _base_url: str | None = None

    def __init__(
        self,
        *,
        api_key: str = "emulator-key",
        host: str = "127.0.0.1",
        port: int = 0,
        processing_delay: float = 0.05,
        render_delay: float = 0.05,
        export_delay: float = 0.05,
        webhook_url: str | None = None,
        webhook_secret: str | bytes | None = None,
        sign_webhooks: bool = True,
        webhook_max_attempts: int = 4,
        webhook_retry_delay: float = 0.05,
        duplicate_webhooks: bool | None = None,
        reorder_webhooks: bool | None = None,
        response_delay: float = 0.0,
        require_customization: bool = True,
        export_size: int = 4096,
        faults: FaultPlan | None = None,
        rate_limit: RateLimit | None = None,
        state_file: str | os.PathLike[str] | None = None,
        ssl: SSLContext | None = None,
    ) -> None:
        delays = (processing_delay, render_delay, export_delay, webhook_retry_delay, response_delay)
        check_options(api_key, delays, webhook_max_attempts, export_size)
        self._api_key = api_key
        self._host = host
        self._port = port
        self.processing_delay = processing_delay
        self.render_delay = render_delay
        self.export_delay = export_delay
        self.webhook_url = webhook_url
        self._webhook_secret = DEFAULT_WEBHOOK_SECRET if webhook_secret is None else webhook_secret
        self.response_delay = response_delay
        self.export_size = export_size
        self.stats: EmulatorStats = EmulatorStats()
        self.events: list[dict[str, Any]] = []
        self._state = EmulatorState(require_customization=require_customization)
        self._work = SlowWork(self, self._state, self._emit)
        self._handlers = Handlers(self, self._state, self._work, self._spawn)
        self._tasks = TaskSupervisor()
        self._webhooks = self._dispatcher(sign_webhooks, webhook_max_attempts, webhook_retry_delay)
        plan = deprecated_webhook_faults(faults, duplicate_webhooks, reorder_webhooks)
        self._faults = FaultInjector(plan, ROUTES)
        self.rate_limit = rate_limit
        self._state_file = state_file
        self._ssl = ssl
        self._opened = contextlib.AsyncExitStack()  # what start() opened, for aclose()

    def _dispatcher(self, signed: bool, max_attempts: int, retry_delay: float) -> WebhookDispatcher:
        return WebhookDispatcher(
            key=decode_secret(self._webhook_secret) if signed else None,
            spawn=self._spawn,
            max_attempts=max_attempts,
            retry_delay=retry_delay,
            reorder_batch_size=self.REORDER_BATCH_SIZE,
            reorder_window=self.REORDER_WINDOW,
        )

    def __repr__(self) -> str:
        users, avatars = len(self._state.users), len(self._state.avatars)
        return f"<AvaturnEmulator {self._base_url or self._phase} users={users} avatars={avatars}>"

    # ------------------------------------------------------------ public attributes

    @property
    def api_key(self) -> str:
        return self._api_key

    @property
    def webhook_secret(self) -> str | bytes:
        return self._webhook_secret

    @property
    def base_url(self) -> str:
        """``http://host:port`` without a trailing slash; only once started."""
        if self._base_url is None:
            raise RuntimeError("the emulator is not running: use 'async with' or start()")
        return self._base_url

    @property
    def port(self) -> int:
        _ = self.base_url  # raises unless running
        return self._port

    @property
    def rate_limit(self) -> RateLimit | None:
        """The server-side limit on API requests (``None``: unlimited); settable."""
        return self._rate_window.limit if self._rate_window is not None else None

    @rate_limit.setter
    def rate_limit(self, limit: RateLimit | None) -> None:
        self._rate_window = FixedWindowLimit(limit) if limit is not None else None

    @property
    def faults(self) -> FaultPlan | None:
        """The installed :class:`FaultPlan`, or ``None``."""
        return self._faults.plan

    @faults.setter
    def faults(self, plan: FaultPlan | None) -> None:
        self._faults.plan = plan

    @property
    def users(self) -> Mapping[str, UserRecord]:
        return MappingProxyType(self._state.users)

    @property
    def avatars(self) -> Mapping[str, AvatarRecord]:
        return MappingProxyType(self._state.avatars)

    @property
    def renders(self) -> Mapping[str, RenderRecord]:
        return MappingProxyType(self._state.renders)

    @property
    def exports(self) -> Mapping[str, ExportRecord]:
        """Export jobs by file token."""
        return MappingProxyType(self._state.exports)

    @property
    def sessions(self) -> Mapping[str, SessionRecord]:
        return MappingProxyType(self._state.sessions)

    @property
    def assets(self) -> Mapping[str, str]:
        """Available assets: asset id -> slot."""
        return MappingProxyType(self._state.assets)

    def uploaded_photos(self, avatar_id: str) -> Mapping[str, bytes]:
        """The photos ``avatar_id`` was made from, as received, by form field name
        (``image-frontal``, ``image-side-1``, ``image-side-2``); empty if none landed."""
        return MappingProxyType(self._state.photos.get(str(avatar_id), {}))

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        return self._webhooks.deliveries

    @property
    def dropped_webhooks(self) -> list[Mapping[str, Any]]:
        """Events a fault plan dropped: emitted (in ``events``) but never delivered."""
        return self._webhooks.dropped

    # ------------------------------------------------------------ test hooks

    def fail_next(
        self,
        route: str,
        status: int,
        *,
        times: int = 1,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next ``times`` requests to ``route`` with ``status``, changing nothing.

        ``body`` None sends ``{"detail": "injected failure (<status>)"}``; a str or
        bytes is sent as-is as text (a non-JSON error body); anything else as JSON.
        Any status works, so a 200 with a malformed body can be injected too. API
        routes check the API key first; injections are consumed in order, and come
        before the fault plan's decisions.
        """
        self._faults.inject(route, status, times=times, headers=dict(headers or {}), body=body)

    def clear_failures(self) -> None:
        """Forget pending :meth:`fail_next` injections and the fail_*_for sets."""
        self._faults.injections.clear()
        self._work.clear()

    def fail_avatars_for(self, *user_ids: str) -> None:
        """Photo processing of these users' avatars ends with status ``failed``."""
        self._work.failing_users.update(user_ids)

    def fail_renders_for(self, *avatar_ids: str) -> None:
        """Renders of these avatars end with status ``failed`` and no URL."""
        self._work.failing_renders.update(avatar_ids)

    def fail_exports_for(self, *avatar_ids: str) -> None:
        """Exports of these avatars end with status ``failed``; asking again retries."""
        self._work.failing_exports.update(avatar_ids)

    def retire_asset(self, asset_id: str) -> None:
        """Make an asset unavailable: customizations using it answer 410."""
        self._state.retire_asset(asset_id)

    def add_asset(self, asset_id: str, slot: str) -> None:
        """Add (or bring back) an asset in one of the four slots."""
        self._state.add_asset(asset_id, slot)

    async def wait_idle(self) -> None:
        """Wait until no processing, render, export or webhook work is pending.

        Bound it with ``anyio.fail_after`` (or ``asyncio.timeout``) in tests.
        """
        await self._tasks.wait_idle()

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> AvaturnEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Bind the server and start accepting requests."""
        if self._phase != "new":
            raise RuntimeError(f"the emulator cannot be started: it is {self._phase}")
        self._phase = "running"
        # aclose() closes these in reverse: the server first, so that no handler can
        # schedule work after the task group is gone, and the tasks before the session.
        opened = self._opened
        try:
            if self._state_file is not None:
                store = opened.enter_context(contextlib.closing(EmulatorStore(self._state_file)))
                self._state.attach(store)
            self._webhooks.session = await opened.enter_async_context(aiohttp.ClientSession())
            await self._tasks.start()
            opened.push_async_callback(self._tasks.stop)
            await self._start_server()
            for job in self._work.unfinished():
                self._spawn(job)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop serving, cancel pending work (delays, webhook deliveries). Idempotent."""
        if self._phase in ("closing", "closed"):
            return
        self._phase = "closing"
        try:
            await self._opened.aclose()
        finally:
            self._phase = "closed"
            self._base_url = None

    async def serve_forever(self) -> None:
        """Start (unless started) and serve until cancelled, then close."""
        if self._phase == "new":
            await self.start()
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await self.aclose()

    async def _start_server(self) -> None:
        app = web.Application(middlewares=[error_middleware])
        app.on_response_prepare.append(stamp_request_id)
        for route in self._handlers.api_routes():
            wrapped = self._api(route.route, route.handler, authenticated=route.authenticated)
            app.router.add_route(route.method, route.path, wrapped)
        self._handlers.add_file_routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=self.SHUTDOWN_TIMEOUT)
        await runner.setup()
        self._opened.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, self._host, self._port, ssl_context=self._ssl).start()
        self._port = int(runner.addresses[0][1])
        scheme = "http" if self._ssl is None else "https"
        self._base_url = f"{scheme}://{url_host(self._host)}:{self._port}"

    # ------------------------------------------------------------ background work

    def _spawn(self, job: Callable[[], Awaitable[None]]) -> None:
        if self._phase == "running":
            self._tasks.spawn(job)

    def _emit(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if self.webhook_url is not None:
            self._webhooks.emit(event, self.webhook_url, self._faults.next_event(self.stats))

    # ------------------------------------------------------------ the API wrapper

    def _api(self, route: str, handler: Handler, *, authenticated: bool = True) -> Handler:
        """Count, delay, authenticate, then answer with an injection, a fault or ``handler``."""

        async def wrapped(request: web.Request) -> web.StreamResponse:
            stats = self.stats
            stats.requests[route] += 1
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
            try:
                fault = self._faults.next_request(route)
                delay = self.response_delay + (fault.latency if fault is not None else 0.0)
                if delay > 0:
                    await anyio.sleep(delay)
                if authenticated:
                    check_auth(request, self._api_key)
                    if (refused := self._rate_limited()) is not None:
                        await drain(request)
                        return refused
                return await self._faults.answer(request, route, fault, handler, stats)
            finally:
                stats.in_flight -= 1

        return wrapped

    def _rate_limited(self) -> web.Response | None:
        window = self._rate_window
        wait = window.admit() if window is not None else None
        if wait is None:
            return None
        self.stats.rate_limited += 1
        return web.json_response(
            {"detail": "rate limit exceeded"}, status=429, headers={"Retry-After": f"{wait:.3f}"}
        )
