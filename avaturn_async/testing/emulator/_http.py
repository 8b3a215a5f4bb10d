"""HTTP plumbing of the emulator that knows nothing of its state: reading JSON and
multipart bodies, the API-key check, request ids and the FastAPI-like error middleware.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Awaitable, Callable

import aiohttp
import anyio
from aiohttp import web

from ._validation import JPEG_MAGIC, PHOTO_FIELDS, EmulatorHTTPError, UploadedPhoto, invalid

__all__ = [
    "CREATED",
    "UPLOAD_PACE",
    "Handler",
    "check_auth",
    "drain",
    "error_middleware",
    "json_body",
    "read_upload_form",
    "stamp_request_id",
    "url_host",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CREATED = web.RequestKey("avaturn_emulator_created", str)
"""Set by a handler to the id of what it created (or, for an upload, the avatar's)."""

UPLOAD_PACE = web.RequestKey("avaturn_emulator_upload_pace", float)
"""Bytes per second at which an upload's photos are read (a slow-upload fault)."""

_CHUNK = 64 * 1024
_PACED_CHUNK = 4 * 1024
_SMALL_FIELD_LIMIT = 1024


def url_host(host: str) -> str:
    """The host part of a URL for a bound address; a wildcard is not connectable."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


async def stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["x-request-id"] = "req_" + secrets.token_hex(12)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except EmulatorHTTPError as exc:
        return web.json_response({"detail": exc.detail}, status=exc.status, headers=exc.headers)
    except web.HTTPException as exc:
        # FastAPI-like JSON for aiohttp's own errors (unknown path, wrong method).
        dropped = ("content-type", "content-length")
        headers = {key: value for key, value in exc.headers.items() if key.lower() not in dropped}
        return web.json_response({"detail": exc.reason}, status=exc.status, headers=headers)


def check_auth(request: web.Request, api_key: str) -> None:
    """Raise a 401 unless the request carries ``Authorization: Bearer <api_key>``."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    given = token.strip().encode()  # bytes: compare_digest refuses non-ASCII str
    if scheme.lower() != "bearer" or not secrets.compare_digest(given, api_key.encode()):
        refused = {"WWW-Authenticate": "Bearer"}
        raise EmulatorHTTPError(401, "Invalid or missing API key", headers=refused)


async def json_body(request: web.Request) -> object:
    """The parsed JSON body (``None`` when empty), or a FastAPI-shaped 422."""
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise invalid(
            ("body", exc.pos), "JSON decode error", "json_invalid", error=exc.msg
        ) from None
    except UnicodeDecodeError:
        raise invalid(("body", 0), "JSON decode error", "json_invalid", error="not UTF-8") from None


async def drain(request: web.Request) -> None:
    """Read and discard the body, so the client sees our answer, not a reset connection."""
    while await request.content.readany():
        pass


async def read_upload_form(
    request: web.Request, *, bytes_per_second: float | None = None
) -> tuple[dict[str, UploadedPhoto], dict[str, str]]:
    """Read the multipart form part by part (``bytes_per_second`` paces the photos: a
    slow upload); other parts are skipped."""
    if not _is_form_data(request):
        raise invalid(("body",), "Expected a multipart/form-data body", "value_error")
    photos: dict[str, UploadedPhoto] = {}
    fields: dict[str, str] = {}
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            name = _field_name(part) if isinstance(part, aiohttp.BodyPartReader) else None
            if isinstance(part, aiohttp.BodyPartReader) and name in PHOTO_FIELDS:
                photos[str(name)] = await _read_photo(part, bytes_per_second)
            elif isinstance(part, aiohttp.BodyPartReader) and name in ("body-type", "telephoto"):
                fields[str(name)] = await _read_small_field(part)
            else:
                await part.release()
    except ValueError as exc:
        raise invalid(("body",), f"Malformed multipart body: {exc}", "value_error") from None
    return photos, fields


# aiohttp reads Content-Type with the standard library's email parser (about
# 0.3 ms, cached by the whole header, whose boundary is new on every upload) and
# re-parses a part's Content-Disposition on every ``name`` read: together a third
# of the emulator's CPU per onboarded row. The common, simple spellings are read
# here; anything else goes to aiohttp, so every verdict is aiohttp's.
_SIMPLE_DISPOSITION = re.compile(r'form-data; name="([A-Za-z0-9_-]+)"(?:; filename="[^"\\]*")?')


def _is_form_data(request: web.Request) -> bool:
    media_type = request.headers.get("Content-Type", "").partition(";")[0]
    if media_type.strip().lower() == "multipart/form-data":
        return True
    return request.content_type == "multipart/form-data"


def _field_name(part: aiohttp.BodyPartReader) -> str | None:
    simple = _SIMPLE_DISPOSITION.fullmatch(part.headers.get("Content-Disposition", ""))
    return simple.group(1) if simple is not None else part.name


async def _read_photo(
    part: aiohttp.BodyPartReader, bytes_per_second: float | None
) -> UploadedPhoto:
    digest = hashlib.sha256()
    size = 0
    head = b""
    data = bytearray()  # kept for uploaded_photos(): what a test asserts on
    chunk_size = _CHUNK if bytes_per_second is None else _PACED_CHUNK
    while chunk := await part.read_chunk(chunk_size):
        if len(head) < len(JPEG_MAGIC):
            head += chunk[: len(JPEG_MAGIC) - len(head)]
        size += len(chunk)
        digest.update(chunk)
        data += chunk
        if bytes_per_second is not None:
            await anyio.sleep(len(chunk) / bytes_per_second)
    return UploadedPhoto(size=size, sha256=digest.hexdigest(), head=head, data=bytes(data))


async def _read_small_field(part: aiohttp.BodyPartReader) -> str:
    data = b""
    while chunk := await part.read_chunk(_SMALL_FIELD_LIMIT):
        data += chunk
        if len(data) > _SMALL_FIELD_LIMIT:
            raise ValueError(f"field {part.name!r} is too long")
    return data.decode("utf-8", errors="replace").strip()
