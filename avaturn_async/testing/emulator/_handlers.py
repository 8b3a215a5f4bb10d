"""The emulator's request handlers: the ten API endpoints, the photo upload URL and the
files it serves (rendered images, exported models, the editor page).

Each handler reads the request, applies :class:`~._state.EmulatorState`'s
rules and writes plain JSON; the emulator wraps the API ones with authentication,
counters and fault injection (see ``AvaturnEmulator._api``).
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

from aiohttp import web

from ._http import CREATED, UPLOAD_PACE, Handler, drain, json_body, read_upload_form
from ._state import EmulatorState
from ._validation import EmulatorHTTPError, parse_bool, parse_format, parse_scene, parse_uuid
from ._work import SlowWork, export_url

if TYPE_CHECKING:
    from ._app import AvaturnEmulator

__all__ = ["RENDER_FILES", "ApiRoute", "Handlers", "glb_chunks"]

RENDER_FILES: Mapping[str, tuple[str, bytes]] = {
    "jpg": ("image/jpeg", b"\xff\xd8\xff\xe0" + bytes(64) + b"\xff\xd9"),
    "png": ("image/png", b"\x89PNG\r\n\x1a\n" + bytes(64)),
    "webp": ("image/webp", b"RIFF" + struct.pack("<I", 68) + b"WEBP" + bytes(60)),
}
"""Bytes served for a ready render, by format: (content type, body)."""

_PATTERN_SIZE = 64 * 1024
_API = "/api/v1"


def glb_chunks(size: int) -> Iterator[bytes]:
    """A GLB header then a repeating byte pattern, so truncation or mixing shows."""
    header = b"glTF" + struct.pack("<II", 2, size)
    yield header
    pattern = bytes(range(256)) * (_PATTERN_SIZE // 256)
    remaining = size - len(header)
    while remaining > 0:
        chunk = pattern[:remaining]
        remaining -= len(chunk)
        yield chunk


class ApiRoute(NamedTuple):
    method: str
    path: str
    route: str
    handler: Handler
    authenticated: bool = True


class Handlers:
    """Request handlers over one state, reporting to one host emulator; the slow
    part of uploads, renders and exports is spawned as ``work``'s jobs."""

    def __init__(
        self,
        host: AvaturnEmulator,
        state: EmulatorState,
        work: SlowWork,
        spawn: Callable[[Callable[[], Awaitable[None]]], None],
    ) -> None:
        self._host = host
        self._state = state
        self._work = work
        self._spawn = spawn  # the emulator's: runs a job while it is running, else drops it

    def api_routes(self) -> list[ApiRoute]:
        """Every route of :data:`ROUTES`, for the emulator to wrap and register."""
        # The API names this path parameter ``id`` (so do its 422s).
        customization = f"{_API}/avatars/{{id}}/customization"
        avatar = f"{_API}/users/{{user_id}}/avatars/{{avatar_id}}"
        return [
            ApiRoute("POST", f"{_API}/users/new", "users.create", self.users_create),
            ApiRoute("DELETE", f"{_API}/users/{{user_id}}", "users.delete", self.users_delete),
            ApiRoute("POST", f"{_API}/sessions/new", "sessions.create", self.sessions_create),
            ApiRoute("GET", f"{_API}/users/{{user_id}}/avatars", "avatars.list", self.avatars_list),
            ApiRoute("POST", f"{_API}/avatars/new", "avatars.create", self.avatars_create),
            ApiRoute("GET", customization, "avatars.get_customization", self.get_customization),
            ApiRoute("PUT", customization, "avatars.set_customization", self.set_customization),
            ApiRoute("DELETE", avatar, "avatars.delete", self.avatars_delete),
            ApiRoute("POST", f"{_API}/renders/new", "renders.create", self.renders_create),
            ApiRoute("POST", f"{_API}/exports/new", "exports.create", self.exports_create),
            ApiRoute("POST", "/upload/{avatar_id}", "upload", self.upload, authenticated=False),
        ]

    def add_file_routes(self, app: web.Application) -> None:
        app.router.add_get("/files/renders/{name}", self.render_file)
        app.router.add_get("/files/exports/{name}", self.export_file)
        app.router.add_get("/editor/{session_id}", self.editor_page)

    # ------------------------------------------------------------ API

    async def users_create(self, request: web.Request) -> web.StreamResponse:
        user = self._state.create_user()
        self._host.stats.users_created += 1
        request[CREATED] = user.id
        return web.json_response({"id": user.id})

    async def users_delete(self, request: web.Request) -> web.StreamResponse:
        self._state.delete_user(request.match_info["user_id"])
        return web.Response(status=204)

    async def sessions_create(self, request: web.Request) -> web.StreamResponse:
        session = self._state.create_session(await json_body(request))
        request[CREATED] = session.id
        url = f"{self._host.base_url}/editor/{session.id}"
        return web.json_response({"url": url, "id": session.id, "custom_upload_url": None})

    async def avatars_list(self, request: web.Request) -> web.StreamResponse:
        include = parse_bool(request.query.get("include_not_ready"), ("query", "include_not_ready"))
        items = self._state.list_avatars(request.match_info["user_id"], include_not_ready=include)
        return web.json_response(items)

    async def avatars_create(self, request: web.Request) -> web.StreamResponse:
        avatar = self._state.create_avatar(await json_body(request))
        self._host.stats.avatars_created += 1
        request[CREATED] = avatar.id
        upload_url = f"{self._host.base_url}/upload/{avatar.id}?signature={avatar.upload_signature}"
        return web.json_response({"avatar_id": avatar.id, "upload_url": upload_url})

    async def get_customization(self, request: web.Request) -> web.StreamResponse:
        avatar_id = parse_uuid(request.match_info["id"], ("path", "id"))
        return web.json_response(self._state.get_customization(avatar_id))

    async def set_customization(self, request: web.Request) -> web.StreamResponse:
        avatar_id = parse_uuid(request.match_info["id"], ("path", "id"))
        self._state.set_customization(avatar_id, await json_body(request))
        return web.json_response(None, status=202)

    async def avatars_delete(self, request: web.Request) -> web.StreamResponse:
        avatar_id = parse_uuid(request.match_info["avatar_id"], ("path", "avatar_id"))
        self._state.delete_avatar(request.match_info["user_id"], avatar_id)
        return web.Response(status=204)

    async def renders_create(self, request: web.Request) -> web.StreamResponse:
        avatar_id = parse_uuid(request.query.get("avatar_id"), ("query", "avatar_id"))
        scene = parse_scene(request.query.get("scene"))
        fmt = parse_format(request.query.get("format"))
        render = self._state.create_render(avatar_id, scene, fmt)
        self._host.stats.renders_created += 1
        request[CREATED] = render.id
        self._spawn(partial(self._work.finish_render, render.id, avatar_id))
        return web.json_response({"id": render.id, "status": "pending", "render_url": None})

    async def exports_create(self, request: web.Request) -> web.StreamResponse:
        avatar_id = parse_uuid(request.query.get("avatar_id"), ("query", "avatar_id"))
        export, started = self._state.request_export(avatar_id)
        if started:
            self._host.stats.exports_started += 1
            self._spawn(partial(self._work.finish_export, export.token, avatar_id))
        # Pending or ready: request_export starts a new job in place of a failed one.
        url = export_url(self._host.base_url, export) if export.status == "ready" else None
        return web.json_response({"status": export.status, "url": url})

    # ------------------------------------------------------------ photo upload

    async def upload(self, request: web.Request) -> web.StreamResponse:
        try:
            avatar_id = parse_uuid(request.match_info["avatar_id"], ("path", "avatar_id"))
            avatar = self._state.begin_upload(avatar_id, request.query.get("signature"))
        except EmulatorHTTPError:
            await drain(request)  # so the client sees our answer, not a reset connection
            raise
        try:
            photos, fields = await read_upload_form(
                request, bytes_per_second=request.get(UPLOAD_PACE)
            )
            self._state.complete_upload(avatar, photos, fields)
        except BaseException as exc:
            # A rejected or interrupted upload gives the avatar its single upload back.
            self._state.abort_upload(avatar)
            if isinstance(exc, EmulatorHTTPError):
                await drain(request)
            raise
        stats = self._host.stats
        stats.uploads += 1
        stats.upload_bytes += avatar.upload_bytes
        request[CREATED] = avatar.id
        self._spawn(partial(self._work.process_avatar, avatar.id))
        return web.json_response({"status": "ok"})

    # ------------------------------------------------------------ files

    async def render_file(self, request: web.Request) -> web.StreamResponse:
        render_id, _, ext = request.match_info["name"].partition(".")
        render = self._state.renders.get(render_id)
        if render is None or render.status != "ready" or render.format != ext:
            raise EmulatorHTTPError(404, "render not found or expired")
        self._host.stats.downloads += 1
        content_type, body = RENDER_FILES[render.format]
        return web.Response(body=body, content_type=content_type)

    async def export_file(self, request: web.Request) -> web.StreamResponse:
        token, _, ext = request.match_info["name"].partition(".")
        export = self._state.exports.get(token)
        if export is None or export.status != "ready" or ext != "glb":
            raise EmulatorHTTPError(404, "export not found or expired")
        self._host.stats.downloads += 1
        size = self._host.export_size
        response = web.StreamResponse(headers={"Content-Type": "model/gltf-binary"})
        response.content_length = size
        await response.prepare(request)
        for chunk in glb_chunks(size):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def editor_page(self, request: web.Request) -> web.StreamResponse:
        session = self._state.sessions.get(request.match_info["session_id"])
        if session is None:
            raise EmulatorHTTPError(404, "session not found or expired")
        html = (
            "<!doctype html><title>Avaturn emulator</title>"
            f"<p>Editor session {session.id} ({session.config['type']}).</p>"
        )
        return web.Response(text=html, content_type="text/html")
