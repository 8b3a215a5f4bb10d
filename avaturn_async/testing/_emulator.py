"""``AvaturnEmulator``: a stateful local fake of the Avaturn service, on aiohttp.web.

It speaks the wire format on its own (plain JSON), so the SDK's models are tested
against an independent reading of the API document rather than against themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType, TracebackType
from typing import Any, ClassVar, Literal

import aiohttp
import anyio
from aiohttp import web
from anyio.abc import TaskGroup

from ..webhooks._signing import decode_secret
from ._emulator_state import (
    JPEG_MAGIC,
    PHOTO_FIELDS,
    RENDER_FILES,
    SAMPLE_ASSETS,
    AvatarRecord,
    EmulatorHTTPError,
    EmulatorState,
    ExportRecord,
    Outcome,
    RenderRecord,
    SessionRecord,
    UploadedPhoto,
    UserRecord,
    error_item,
    glb_chunks,
    parse_bool,
    parse_format,
    parse_scene,
    parse_uuid,
    validation_error,
)
from ._emulator_webhooks import WebhookDelivery, WebhookDispatcher

__all__ = [
    "DEFAULT_WEBHOOK_SECRET",
    "ROUTES",
    "AvatarRecord",
    "AvaturnEmulator",
    "EmulatorStats",
    "ExportRecord",
    "RenderRecord",
    "SessionRecord",
    "UserRecord",
    "WebhookDelivery",
]

logger = logging.getLogger("avaturn_async.testing")

ROUTES: tuple[str, ...] = (
    "users.create",
    "users.delete",
    "sessions.create",
    "avatars.list",
    "avatars.create",
    "avatars.get_customization",
    "avatars.set_customization",
    "avatars.delete",
    "renders.create",
    "exports.create",
    "upload",
)
"""Route names for :meth:`AvaturnEmulator.fail_next` and ``stats.requests``."""

DEFAULT_WEBHOOK_SECRET = "whsec_YXZhdHVybi1lbXVsYXRvci13ZWJob29rLXNlY3JldCE="
"""The webhook signing secret used when none is given. Not a secret: tests only."""

_CHUNK = 64 * 1024
_SMALL_FIELD_LIMIT = 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class EmulatorStats:
    """Counters for assertions. ``upload_bytes`` counts photo bytes received."""

    users_created: int = 0
    avatars_created: int = 0
    uploads: int = 0
    upload_bytes: int = 0
    renders_created: int = 0
    exports_started: int = 0
    downloads: int = 0
    requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROUTES, 0))
    in_flight: int = 0
    max_in_flight: int = 0


@dataclass
class _Injection:
    status: int
    headers: Mapping[str, str]
    body: Any
    remaining: int

    def response(self) -> web.Response:
        if isinstance(self.body, str | bytes):
            return web.Response(
                status=self.status, body=self.body, headers=self.headers, content_type="text/plain"
            )
        body = {"detail": f"injected failure ({self.status})"} if self.body is None else self.body
        return web.json_response(body, status=self.status, headers=self.headers)


class AvaturnEmulator:
    """A local, stateful fake of the Avaturn API, for tests, demos and development.

    Use ``async with AvaturnEmulator() as emu:`` (or :meth:`start` / :meth:`aclose`,
    which may be called from different tasks, e.g. pytest fixtures) and point a client
    at ``emu.base_url`` with ``emu.api_key``. :meth:`serve_forever` runs it until
    cancelled (for a CLI).

    Keyword arguments (``processing_delay``, ``render_delay``, ``export_delay``,
    ``webhook_url``, ``response_delay`` and ``export_size`` are also attributes that
    may be changed while running; the others are fixed at construction):

    - ``api_key``: the only accepted bearer token (default ``"emulator-key"``).
    - ``host``, ``port``: where to listen; port 0 picks a free port (read ``emu.port``).
    - ``processing_delay``, ``render_delay``, ``export_delay``: seconds before an
      uploaded avatar, a render or an export is done and its webhook is sent.
    - ``webhook_url``: where events are POSTed (None: events are only recorded in
      ``emu.events``); it is read when an event happens.
    - ``webhook_secret``: Standard Webhooks secret (``whsec_<base64>`` or raw bytes)
      used to sign deliveries; default :data:`DEFAULT_WEBHOOK_SECRET`.
    - ``webhook_max_attempts``, ``webhook_retry_delay``: attempts per event (first
      one included) and the first backoff, doubled after each failed attempt. A
      non-2xx answer or a connection error is a failure. Retries keep ``webhook-id``.
    - ``duplicate_webhooks``: deliver every event twice, with the same ``webhook-id``.
    - ``reorder_webhooks``: hold events in batches, flushed when a batch holds
      ``REORDER_BATCH_SIZE`` (2) events or ``REORDER_WINDOW`` (0.1 s) after its first
      event, whichever is first; each batch is delivered newest first, sequentially.
    - ``response_delay``: seconds every API and upload request is held before it is
      handled, so that concurrent requests pile up. ``stats.max_in_flight`` counts
      the most requests of :data:`ROUTES` (API calls and uploads) handled at once.
    - ``require_customization``: renders and exports of an avatar whose customization
      was never set answer 409 (the real API calls the result undefined).
    - ``export_size``: size in bytes of every exported ``.glb`` file (at least 12).

    Test hooks: :meth:`fail_next` (answer a route with an injected status before any
    state change), :meth:`fail_avatars_for`, :meth:`fail_renders_for`,
    :meth:`fail_exports_for`, the ``avatar_outcome`` attribute (a callable taking the
    :class:`AvatarRecord` and returning ``"ready"`` or ``"failed"``; it overrides
    ``fail_avatars_for``), :meth:`retire_asset`, :meth:`add_asset` and
    :meth:`wait_idle`. Read-only views: ``users``, ``avatars``, ``renders``,
    ``exports``, ``sessions``, ``assets``; records: ``events`` (every event emitted),
    ``webhook_deliveries`` (every delivery attempt) and ``stats``.
    """

    SAMPLE_ASSETS: ClassVar[Mapping[str, str]] = SAMPLE_ASSETS
    ROUTES: ClassVar[tuple[str, ...]] = ROUTES
    REORDER_BATCH_SIZE: ClassVar[int] = 2
    REORDER_WINDOW: ClassVar[float] = 0.1
    SHUTDOWN_TIMEOUT: ClassVar[float] = 1.0

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
        webhook_max_attempts: int = 4,
        webhook_retry_delay: float = 0.05,
        duplicate_webhooks: bool = False,
        reorder_webhooks: bool = False,
        response_delay: float = 0.0,
        require_customization: bool = True,
        export_size: int = 4096,
    ) -> None:
        _check_options(
            api_key=api_key,
            delays=(processing_delay, render_delay, export_delay, webhook_retry_delay),
            response_delay=response_delay,
            webhook_max_attempts=webhook_max_attempts,
            export_size=export_size,
        )
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
        self.avatar_outcome: Callable[[AvatarRecord], Outcome] | None = None
        self.stats = EmulatorStats()
        self.events: list[dict[str, Any]] = []
        self._state = EmulatorState(require_customization=require_customization)
        self._webhooks = WebhookDispatcher(
            key=decode_secret(self._webhook_secret),
            spawn=self._spawn,
            max_attempts=webhook_max_attempts,
            retry_delay=webhook_retry_delay,
            duplicate=duplicate_webhooks,
            reorder=reorder_webhooks,
            reorder_batch_size=self.REORDER_BATCH_SIZE,
            reorder_window=self.REORDER_WINDOW,
        )
        self._injections: dict[str, list[_Injection]] = {}
        self._failing_users: set[str] = set()
        self._failing_renders: set[str] = set()
        self._failing_exports: set[str] = set()
        self._phase: Literal["new", "running", "closing", "closed"] = "new"
        self._base_url: str | None = None
        self._runner: web.AppRunner | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._task_group: TaskGroup | None = None
        self._stop: anyio.Event | None = None
        self._idle: anyio.Event | None = None
        self._pending = 0

    def __repr__(self) -> str:
        where = self._base_url or self._phase
        return (
            f"<AvaturnEmulator {where} users={len(self._state.users)} "
            f"avatars={len(self._state.avatars)}>"
        )

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
        if self._base_url is None:
            raise RuntimeError("the emulator is not running: use 'async with' or start()")
        return self._port

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

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        return self._webhooks.deliveries

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
        routes check the API key first; injections are consumed in order.
        """
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; expected one of {ROUTES}")
        if times < 1 or not 100 <= status <= 599:
            raise ValueError("times must be >= 1 and status a valid HTTP status")
        injection = _Injection(status, dict(headers or {}), body, times)
        self._injections.setdefault(route, []).append(injection)

    def clear_failures(self) -> None:
        """Forget pending :meth:`fail_next` injections and the fail_*_for sets."""
        self._injections.clear()
        self._failing_users.clear()
        self._failing_renders.clear()
        self._failing_exports.clear()

    def fail_avatars_for(self, *user_ids: str) -> None:
        """Photo processing of these users' avatars ends with status ``failed``."""
        self._failing_users.update(user_ids)

    def fail_renders_for(self, *avatar_ids: str) -> None:
        """Renders of these avatars end with status ``failed`` and no URL."""
        self._failing_renders.update(avatar_ids)

    def fail_exports_for(self, *avatar_ids: str) -> None:
        """Exports of these avatars end with status ``failed``; asking again retries."""
        self._failing_exports.update(avatar_ids)

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
        while self._pending and self._idle is not None:
            await self._idle.wait()

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> AvaturnEmulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Bind the server and start accepting requests."""
        if self._phase != "new":
            raise RuntimeError(f"the emulator cannot be started: it is {self._phase}")
        self._phase = "running"
        try:
            await self._start_supervisor()
            self._webhooks.session = aiohttp.ClientSession()
            await self._start_server()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop serving, cancel pending work (delays, webhook deliveries). Idempotent."""
        if self._phase in ("closing", "closed"):
            return
        self._phase = "closing"
        # Server first, so no handler can schedule work after the task group is gone.
        try:
            if self._runner is not None:
                await self._runner.cleanup()
        finally:
            try:
                if self._stop is not None and self._supervisor is not None:
                    self._stop.set()
                    await self._supervisor
            finally:
                if self._webhooks.session is not None:
                    await self._webhooks.session.close()
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

    async def _start_supervisor(self) -> None:
        # The task group lives in a task of its own because anyio requires a task
        # group to be exited by the task that entered it, while start() and aclose()
        # may run in different tasks (pytest-asyncio runs fixture setup and teardown
        # in different tasks). The task is awaited by aclose(), never left dangling.
        self._stop = anyio.Event()
        self._idle = anyio.Event()
        self._idle.set()
        ready = anyio.Event()
        self._supervisor = asyncio.get_running_loop().create_task(
            self._supervise(ready), name="avaturn-emulator"
        )
        await ready.wait()

    async def _supervise(self, ready: anyio.Event) -> None:
        assert self._stop is not None
        async with anyio.create_task_group() as task_group:
            self._task_group = task_group
            ready.set()
            await self._stop.wait()
            task_group.cancel_scope.cancel()
        self._task_group = None

    async def _start_server(self) -> None:
        app = web.Application(middlewares=[self._error_middleware])
        app.on_response_prepare.append(_stamp_request_id)
        self._add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=self.SHUTDOWN_TIMEOUT)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        self._base_url = f"http://{_url_host(self._host)}:{self._port}"

    # ------------------------------------------------------------ background work

    def _spawn(self, job: Callable[[], Awaitable[None]]) -> None:
        if self._task_group is None or self._phase != "running":
            return
        if self._pending == 0:
            self._idle = anyio.Event()
        self._pending += 1
        self._task_group.start_soon(self._run_job, job)

    async def _run_job(self, job: Callable[[], Awaitable[None]]) -> None:
        try:
            await job()
        except Exception:
            # A crashing job must not take the task group (and the server) down.
            logger.exception("emulator background job failed")
        finally:
            self._pending -= 1
            if self._pending == 0 and self._idle is not None:
                self._idle.set()

    def _emit(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if self.webhook_url is not None:
            self._webhooks.emit(event, self.webhook_url)

    def _avatar_outcome(self, avatar: AvatarRecord) -> Outcome:
        if self.avatar_outcome is not None:
            return self.avatar_outcome(avatar)
        return "failed" if avatar.user_id in self._failing_users else "ready"

    async def _process_avatar(self, avatar_id: str) -> None:
        await anyio.sleep(self.processing_delay)
        avatar = self._state.avatars.get(avatar_id)
        if avatar is None:
            return
        event = self._state.finish_processing(avatar_id, self._avatar_outcome(avatar))
        if event is not None:
            self._emit(event)

    async def _finish_render(self, render_id: str, avatar_id: str) -> None:
        await anyio.sleep(self.render_delay)
        outcome: Outcome = "failed" if avatar_id in self._failing_renders else "ready"
        render = self._state.finish_render(render_id, outcome)
        if render is None:
            return
        url = self._render_url(render) if outcome == "ready" else None
        self._emit(
            {
                "event": "render.ready",
                "avatar_id": render.avatar_id,
                "user_id": render.user_id,
                "id": render.id,
                "status": outcome,
                "render_url": url,
            }
        )

    async def _finish_export(self, token: str, avatar_id: str) -> None:
        await anyio.sleep(self.export_delay)
        outcome: Outcome = "failed" if avatar_id in self._failing_exports else "ready"
        export = self._state.finish_export(token, outcome)
        if export is None:
            return
        self._emit(
            {
                "event": "export.ready",
                "avatar_id": export.avatar_id,
                "user_id": export.user_id,
                "status": outcome,
                "export_url": self._export_url(export) if outcome == "ready" else None,
            }
        )

    def _render_url(self, render: RenderRecord) -> str:
        return f"{self.base_url}/files/renders/{render.id}.{render.format}"

    def _export_url(self, export: ExportRecord) -> str:
        return f"{self.base_url}/files/exports/{export.token}.glb"

    # ------------------------------------------------------------ HTTP plumbing

    def _add_routes(self, app: web.Application) -> None:
        api = "/api/v1"
        app.router.add_post(f"{api}/users/new", self._api("users.create", self._users_create))
        app.router.add_delete(
            f"{api}/users/{{user_id}}", self._api("users.delete", self._users_delete)
        )
        app.router.add_post(
            f"{api}/sessions/new", self._api("sessions.create", self._sessions_create)
        )
        app.router.add_get(
            f"{api}/users/{{user_id}}/avatars", self._api("avatars.list", self._avatars_list)
        )
        app.router.add_post(f"{api}/avatars/new", self._api("avatars.create", self._avatars_create))
        customization = f"{api}/avatars/{{avatar_id}}/customization"
        app.router.add_get(
            customization, self._api("avatars.get_customization", self._get_customization)
        )
        app.router.add_put(
            customization, self._api("avatars.set_customization", self._set_customization)
        )
        app.router.add_delete(
            f"{api}/users/{{user_id}}/avatars/{{avatar_id}}",
            self._api("avatars.delete", self._avatars_delete),
        )
        app.router.add_post(f"{api}/renders/new", self._api("renders.create", self._renders_create))
        app.router.add_post(f"{api}/exports/new", self._api("exports.create", self._exports_create))
        app.router.add_post(
            "/upload/{avatar_id}", self._api("upload", self._upload, authenticated=False)
        )
        app.router.add_get("/files/renders/{name}", self._render_file)
        app.router.add_get("/files/exports/{name}", self._export_file)
        app.router.add_get("/editor/{session_id}", self._editor_page)

    def _api(self, route: str, handler: Handler, *, authenticated: bool = True) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            stats = self.stats
            stats.requests[route] += 1
            stats.in_flight += 1
            stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
            try:
                if self.response_delay > 0:
                    await anyio.sleep(self.response_delay)
                if authenticated:
                    self._check_auth(request)
                injected = self._take_injection(route)
                if injected is not None:
                    await _drain(request)
                    return injected
                return await handler(request)
            finally:
                stats.in_flight -= 1

        return wrapped

    def _check_auth(self, request: web.Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(
            token.strip().encode(), self._api_key.encode()
        ):
            raise EmulatorHTTPError(
                401, "Invalid or missing API key", headers={"WWW-Authenticate": "Bearer"}
            )

    def _take_injection(self, route: str) -> web.Response | None:
        queue = self._injections.get(route)
        if not queue:
            return None
        injection = queue[0]
        injection.remaining -= 1
        if injection.remaining == 0:
            queue.pop(0)
        return injection.response()

    @web.middleware
    async def _error_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except EmulatorHTTPError as exc:
            return web.json_response({"detail": exc.detail}, status=exc.status, headers=exc.headers)
        except web.HTTPException as exc:
            # FastAPI-like JSON for aiohttp's own errors (unknown path, wrong method).
            headers = {
                key: value
                for key, value in exc.headers.items()
                if key.lower() not in ("content-type", "content-length")
            }
            return web.json_response({"detail": exc.reason}, status=exc.status, headers=headers)

    # ------------------------------------------------------------ API handlers

    async def _users_create(self, request: web.Request) -> web.StreamResponse:
        user = self._state.create_user()
        self.stats.users_created += 1
        return web.json_response({"id": user.id})

    async def _users_delete(self, request: web.Request) -> web.StreamResponse:
        self._state.delete_user(request.match_info["user_id"])
        return web.Response(status=204)

    async def _sessions_create(self, request: web.Request) -> web.StreamResponse:
        session = self._state.create_session(await _json_body(request))
        return web.json_response(
            {
                "url": f"{self.base_url}/editor/{session.id}",
                "id": session.id,
                "custom_upload_url": None,
            }
        )

    async def _avatars_list(self, request: web.Request) -> web.StreamResponse:
        include = parse_bool(request.query.get("include_not_ready"), ("query", "include_not_ready"))
        items = self._state.list_avatars(request.match_info["user_id"], include_not_ready=include)
        return web.json_response(items)

    async def _avatars_create(self, request: web.Request) -> web.StreamResponse:
        avatar = self._state.create_avatar(await _json_body(request))
        self.stats.avatars_created += 1
        upload_url = f"{self.base_url}/upload/{avatar.id}?signature={avatar.upload_signature}"
        return web.json_response({"avatar_id": avatar.id, "upload_url": upload_url})

    async def _get_customization(self, request: web.Request) -> web.StreamResponse:
        avatar_id = parse_uuid(request.match_info["avatar_id"], ("path", "avatar_id"))
        return web.json_response(self._state.get_customization(avatar_id))

    async def _set_customization(self, request: web.Request) -> web.StreamResponse:
        avatar_id = parse_uuid(request.match_info["avatar_id"], ("path", "avatar_id"))
        self._state.set_customization(avatar_id, await _json_body(request))
        return web.json_response(None, status=202)

    async def _avatars_delete(self, request: web.Request) -> web.StreamResponse:
        avatar_id = parse_uuid(request.match_info["avatar_id"], ("path", "avatar_id"))
        self._state.delete_avatar(request.match_info["user_id"], avatar_id)
        return web.Response(status=204)

    async def _renders_create(self, request: web.Request) -> web.StreamResponse:
        avatar_id = parse_uuid(request.query.get("avatar_id"), ("query", "avatar_id"))
        scene = parse_scene(request.query.get("scene"))
        fmt = parse_format(request.query.get("format"))
        render = self._state.create_render(avatar_id, scene, fmt)
        self.stats.renders_created += 1
        self._spawn(partial(self._finish_render, render.id, avatar_id))
        return web.json_response({"id": render.id, "status": "pending", "render_url": None})

    async def _exports_create(self, request: web.Request) -> web.StreamResponse:
        avatar_id = parse_uuid(request.query.get("avatar_id"), ("query", "avatar_id"))
        export, started = self._state.request_export(avatar_id)
        if started:
            self.stats.exports_started += 1
            self._spawn(partial(self._finish_export, export.token, avatar_id))
        if export.status == "ready":
            return web.json_response({"status": "ready", "url": self._export_url(export)})
        return web.json_response({"status": "pending", "url": None})

    # ------------------------------------------------------------ photo upload

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        try:
            avatar_id = parse_uuid(request.match_info["avatar_id"], ("path", "avatar_id"))
            avatar = self._state.begin_upload(avatar_id, request.query.get("signature"))
        except EmulatorHTTPError:
            # Read the body so the client sees our answer, not a reset connection.
            await _drain(request)
            raise
        try:
            photos, fields = await _read_upload_form(request)
            self._state.complete_upload(avatar, photos, fields)
        except BaseException as exc:
            # A rejected or interrupted upload gives the avatar its single upload back.
            self._state.abort_upload(avatar)
            if isinstance(exc, EmulatorHTTPError):
                await _drain(request)
            raise
        avatar.upload_bytes = sum(photo.size for photo in photos.values())
        self.stats.uploads += 1
        self.stats.upload_bytes += avatar.upload_bytes
        self._spawn(partial(self._process_avatar, avatar.id))
        return web.json_response({"status": "ok"})

    # ------------------------------------------------------------ files

    async def _render_file(self, request: web.Request) -> web.StreamResponse:
        render_id, _, ext = request.match_info["name"].partition(".")
        render = self._state.renders.get(render_id)
        if render is None or render.status != "ready" or render.format != ext:
            raise EmulatorHTTPError(404, "render not found or expired")
        self.stats.downloads += 1
        content_type, body = RENDER_FILES[render.format]
        return web.Response(body=body, content_type=content_type)

    async def _export_file(self, request: web.Request) -> web.StreamResponse:
        token, _, ext = request.match_info["name"].partition(".")
        export = self._state.exports.get(token)
        if export is None or export.status != "ready" or ext != "glb":
            raise EmulatorHTTPError(404, "export not found or expired")
        self.stats.downloads += 1
        response = web.StreamResponse(headers={"Content-Type": "model/gltf-binary"})
        response.content_length = self.export_size
        await response.prepare(request)
        for chunk in glb_chunks(self.export_size):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def _editor_page(self, request: web.Request) -> web.StreamResponse:
        session = self._state.sessions.get(request.match_info["session_id"])
        if session is None:
            raise EmulatorHTTPError(404, "session not found or expired")
        html = (
            "<!doctype html><title>Avaturn emulator</title>"
            f"<p>Editor session {session.id} ({session.config['type']}).</p>"
        )
        return web.Response(text=html, content_type="text/html")


# ---------------------------------------------------------------- helpers


def _check_options(
    *,
    api_key: str,
    delays: tuple[float, ...],
    response_delay: float,
    webhook_max_attempts: int,
    export_size: int,
) -> None:
    if not api_key:
        raise ValueError("api_key must not be empty")
    if any(delay < 0 for delay in (*delays, response_delay)):
        raise ValueError("delays must not be negative")
    if webhook_max_attempts < 1:
        raise ValueError("webhook_max_attempts must be at least 1")
    if export_size < 12:
        raise ValueError("export_size must be at least 12 bytes (the GLB header)")


def _url_host(host: str) -> str:
    # A wildcard bind address is not something a client can connect to.
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


async def _stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["x-request-id"] = "req_" + secrets.token_hex(12)


async def _json_body(request: web.Request) -> object:
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise validation_error(
            error_item(("body", exc.pos), "JSON decode error", "json_invalid", error=exc.msg)
        ) from None
    except UnicodeDecodeError:
        raise validation_error(
            error_item(("body", 0), "JSON decode error", "json_invalid", error="not UTF-8")
        ) from None


async def _drain(request: web.Request) -> None:
    while await request.content.readany():
        pass


async def _read_upload_form(
    request: web.Request,
) -> tuple[dict[str, UploadedPhoto], dict[str, str]]:
    """Read the multipart form part by part, keeping only sizes, digests and headers."""
    if request.content_type != "multipart/form-data":
        raise validation_error(
            error_item(("body",), "Expected a multipart/form-data body", "value_error")
        )
    photos: dict[str, UploadedPhoto] = {}
    fields: dict[str, str] = {}
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            name = part.name if isinstance(part, aiohttp.BodyPartReader) else None
            if isinstance(part, aiohttp.BodyPartReader) and name in PHOTO_FIELDS:
                photos[str(name)] = await _read_photo(part)
            elif isinstance(part, aiohttp.BodyPartReader) and name in ("body-type", "telephoto"):
                fields[str(name)] = await _read_small_field(part)
            else:
                await part.release()
    except ValueError as exc:
        raise validation_error(
            error_item(("body",), f"Malformed multipart body: {exc}", "value_error")
        ) from None
    return photos, fields


async def _read_photo(part: aiohttp.BodyPartReader) -> UploadedPhoto:
    digest = hashlib.sha256()
    size = 0
    head = b""
    while chunk := await part.read_chunk(_CHUNK):
        if len(head) < len(JPEG_MAGIC):
            head += chunk[: len(JPEG_MAGIC) - len(head)]
        size += len(chunk)
        digest.update(chunk)
    return UploadedPhoto(size=size, sha256=digest.hexdigest(), head=head)


async def _read_small_field(part: aiohttp.BodyPartReader) -> str:
    data = b""
    while chunk := await part.read_chunk(_SMALL_FIELD_LIMIT):
        data += chunk
        if len(data) > _SMALL_FIELD_LIMIT:
            raise ValueError(f"field {part.name!r} is too long")
    return data.decode("utf-8", errors="replace").strip()
