"""Wire-level tests of the emulator, with a plain aiohttp client (no SDK code)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from avaturn_async import ConfigurationError
from avaturn_async.samples import SAMPLES_DIR, sample_photo_paths
from avaturn_async.testing import AvaturnEmulator, FaultPlan, WebhookFaults

API = "/api/v1"
PHOTO_FIELDS = ("image-frontal", "image-side-1", "image-side-2")
PHOTOS = tuple(path.read_bytes() for path in sample_photo_paths())
UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000"


# ---------------------------------------------------------------- helpers and fixtures


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Receiver:
    """A webhook endpoint that records requests and answers scripted statuses."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.url = ""
        self._arrived = anyio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        self._arrived.set()
        self._arrived = anyio.Event()
        return web.Response(status=self.statuses.pop(0) if self.statuses else 204)

    async def wait_for(self, count: int) -> None:
        with anyio.fail_after(5):
            while len(self.received) < count:
                await self._arrived.wait()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/hook", recv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recv.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield recv
    await runner.cleanup()


def auth(emu: AvaturnEmulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {emu.api_key}"}


async def call(
    http: aiohttp.ClientSession,
    emu: AvaturnEmulator,
    method: str,
    path: str,
    *,
    expect: int | None = None,
    **kwargs: Any,
) -> tuple[int, Any]:
    """One API call; the body is parsed JSON, or None when empty."""
    kwargs.setdefault("headers", auth(emu))
    async with http.request(method, emu.base_url + path, **kwargs) as response:
        text = await response.text()
        status = response.status
    body = None if not text else json.loads(text)
    if expect is not None:
        assert status == expect, (status, body)
    return status, body


async def new_user(http: aiohttp.ClientSession, emu: AvaturnEmulator) -> str:
    _, body = await call(http, emu, "POST", f"{API}/users/new", expect=200)
    return str(body["id"])


async def new_avatar(http: aiohttp.ClientSession, emu: AvaturnEmulator, user_id: str) -> Any:
    _, body = await call(
        http, emu, "POST", f"{API}/avatars/new", json={"user_id": user_id}, expect=200
    )
    return body


def photo_form(
    photos: Mapping[str, bytes] | None = None, fields: Mapping[str, str] | None = None
) -> aiohttp.FormData:
    form = aiohttp.FormData()
    chosen = dict(zip(PHOTO_FIELDS, PHOTOS, strict=True)) if photos is None else photos
    for name, data in chosen.items():
        form.add_field(name, data, filename=f"{name}.jpg", content_type="image/jpeg")
    for name, value in {"body-type": "female", **(fields or {})}.items():
        form.add_field(name, value)
    return form


async def upload(
    http: aiohttp.ClientSession, url: str, form: aiohttp.FormData | None = None
) -> tuple[int, Any]:
    async with http.post(url, data=form or photo_form()) as response:
        return response.status, await response.json()


async def settle(emu: AvaturnEmulator) -> None:
    with anyio.fail_after(5):
        await emu.wait_idle()


async def ready_avatar(
    http: aiohttp.ClientSession, emu: AvaturnEmulator, *, customize: bool = True
) -> tuple[str, str]:
    """(user_id, avatar_id) of a processed avatar, customized unless told otherwise."""
    user_id = await new_user(http, emu)
    avatar = await new_avatar(http, emu, user_id)
    assert (await upload(http, avatar["upload_url"]))[0] == 200
    await settle(emu)
    if customize:
        await put_customization(http, emu, avatar["avatar_id"], expect=202)
    return user_id, avatar["avatar_id"]


async def put_customization(
    http: aiohttp.ClientSession,
    emu: AvaturnEmulator,
    avatar_id: str,
    body: Any = None,
    *,
    expect: int | None = None,
) -> tuple[int, Any]:
    document = (
        {"assets": {"clothing": {"id": emu.SAMPLE_ASSETS["clothing"]}}} if body is None else body
    )
    return await call(
        http, emu, "PUT", f"{API}/avatars/{avatar_id}/customization", json=document, expect=expect
    )


def assert_validation_error(body: Any, loc: Sequence[str | int]) -> None:
    assert isinstance(body["detail"], list)
    assert body["detail"], body
    for item in body["detail"]:
        assert set(item) >= {"loc", "msg", "type"}
        assert isinstance(item["msg"], str)
        assert isinstance(item["type"], str)
    assert list(loc) in [item["loc"] for item in body["detail"]], body


# ---------------------------------------------------------------- transport


async def test_base_url_has_real_port_and_no_trailing_slash(emulator: AvaturnEmulator) -> None:
    assert emulator.port > 0
    assert emulator.base_url == f"http://127.0.0.1:{emulator.port}"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"{API}/users/new"),
        ("DELETE", f"{API}/users/SOMEONE"),
        ("POST", f"{API}/sessions/new"),
        ("GET", f"{API}/users/SOMEONE/avatars"),
        ("POST", f"{API}/avatars/new"),
        ("GET", f"{API}/avatars/{UNKNOWN_UUID}/customization"),
        ("PUT", f"{API}/avatars/{UNKNOWN_UUID}/customization"),
        ("DELETE", f"{API}/users/SOMEONE/avatars/{UNKNOWN_UUID}"),
        ("POST", f"{API}/renders/new?avatar_id={UNKNOWN_UUID}"),
        ("POST", f"{API}/exports/new?avatar_id={UNKNOWN_UUID}"),
    ],
)
async def test_every_api_route_without_key_is_401(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession, method: str, path: str
) -> None:
    status, body = await call(http, emulator, method, path, headers={})
    assert status == 401
    assert isinstance(body["detail"], str)


async def test_wrong_api_key_is_401_and_creates_nothing(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    headers = {"Authorization": "Bearer not-the-key"}
    status, _ = await call(http, emulator, "POST", f"{API}/users/new", headers=headers)
    assert status == 401
    assert emulator.stats.users_created == 0


async def test_every_response_has_a_unique_request_id(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    ids = []
    for headers in (auth(emulator), {}):
        async with http.post(f"{emulator.base_url}{API}/users/new", headers=headers) as response:
            ids.append(response.headers["x-request-id"])
    assert len(set(ids)) == 2


async def test_unknown_path_is_json_404(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, emulator, "GET", f"{API}/nothing-here")
    assert (status, body) == (404, {"detail": "Not Found"})


# ---------------------------------------------------------------- users and sessions


async def test_create_user_returns_a_base32_id(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    user_id = await new_user(http, emulator)
    assert re.fullmatch(r"[A-Z2-7]{32}", user_id)
    assert user_id in emulator.users


async def test_delete_user_answers_204_and_removes_its_avatars(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    user_id = await new_user(http, emulator)
    avatar = await new_avatar(http, emulator, user_id)
    async with http.delete(
        f"{emulator.base_url}{API}/users/{user_id}", headers=auth(emulator)
    ) as response:
        assert response.status == 204
        assert await response.read() == b""
    assert user_id not in emulator.users
    assert avatar["avatar_id"] not in emulator.avatars


async def test_delete_unknown_user_is_404(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    status, body = await call(http, emulator, "DELETE", f"{API}/users/NOBODY")
    assert status == 404
    assert isinstance(body["detail"], str)


async def test_list_avatars_of_unknown_user_is_404(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    status, _ = await call(http, emulator, "GET", f"{API}/users/NOBODY/avatars")
    assert status == 404


@pytest.mark.parametrize(
    ("config", "expected_type"),
    [(None, "create_or_edit_existing"), ({"type": "create"}, "create")],
)
async def test_new_session_answers_editor_url_and_id(
    emulator: AvaturnEmulator,
    http: aiohttp.ClientSession,
    config: dict[str, str] | None,
    expected_type: str,
) -> None:
    user_id = await new_user(http, emulator)
    request: dict[str, Any] = {"user_id": user_id}
    if config is not None:
        request["config"] = config
    _, body = await call(http, emulator, "POST", f"{API}/sessions/new", json=request, expect=200)
    assert set(body) == {"url", "id", "custom_upload_url"}
    assert body["url"] == f"{emulator.base_url}/editor/{body['id']}"
    assert body["custom_upload_url"] is None
    assert str(uuid.UUID(body["id"])) == body["id"]
    assert emulator.sessions[body["id"]].config["type"] == expected_type


async def test_edit_existing_session_accepts_own_avatar(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    user_id = await new_user(http, emulator)
    avatar = await new_avatar(http, emulator, user_id)
    config = {"type": "edit_existing", "avatar_id": avatar["avatar_id"]}
    await call(
        http,
        emulator,
        "POST",
        f"{API}/sessions/new",
        json={"user_id": user_id, "config": config},
        expect=200,
    )


async def test_edit_existing_session_of_another_users_avatar_is_404(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    owner = await new_user(http, emulator)
    other = await new_user(http, emulator)
    avatar = await new_avatar(http, emulator, owner)
    config = {"type": "edit_existing", "avatar_id": avatar["avatar_id"]}
    status, _ = await call(
        http, emulator, "POST", f"{API}/sessions/new", json={"user_id": other, "config": config}
    )
    assert status == 404


async def test_session_for_unknown_user_is_404(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    status, _ = await call(
        http, emulator, "POST", f"{API}/sessions/new", json={"user_id": "NOBODY"}
    )
    assert status == 404


async def test_editor_url_serves_a_page(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    user_id = await new_user(http, emulator)
    _, body = await call(http, emulator, "POST", f"{API}/sessions/new", json={"user_id": user_id})
    async with http.get(body["url"]) as response:
        assert response.status == 200
        assert body["id"] in await response.text()


# ---------------------------------------------------------------- validation errors


CUSTOMIZATION = f"{API}/avatars/{{avatar}}/customization"
SESSIONS = f"{API}/sessions/new"
EDIT = "edit_existing"

# (method, path, JSON body or None, expected loc); {user}, {avatar} and slot names
# are filled in with real ids by the test.
VALIDATION_CASES: dict[str, tuple[str, str, Any, list[str | int]]] = {
    "path-uuid": ("GET", f"{API}/avatars/nope/customization", None, ["path", "id"]),
    "put-path-uuid": ("PUT", f"{API}/avatars/nope/customization", {}, ["path", "id"]),
    "delete-uuid": ("DELETE", f"{API}/users/{{user}}/avatars/nope", None, ["path", "avatar_id"]),
    "render-no-id": ("POST", f"{API}/renders/new", None, ["query", "avatar_id"]),
    "render-uuid": ("POST", f"{API}/renders/new?avatar_id=x", None, ["query", "avatar_id"]),
    "scene": (
        "POST",
        f"{API}/renders/new?avatar_id={{avatar}}&scene=a%20b",
        None,
        ["query", "scene"],
    ),
    "format": (
        "POST",
        f"{API}/renders/new?avatar_id={{avatar}}&format=gif",
        None,
        ["query", "format"],
    ),
    "export-no-id": ("POST", f"{API}/exports/new", None, ["query", "avatar_id"]),
    "export-uuid": ("POST", f"{API}/exports/new?avatar_id=1", None, ["query", "avatar_id"]),
    "bool": (
        "GET",
        f"{API}/users/{{user}}/avatars?include_not_ready=maybe",
        None,
        ["query", "include_not_ready"],
    ),
    "avatar-no-user": ("POST", f"{API}/avatars/new", {}, ["body", "user_id"]),
    "avatar-user-type": ("POST", f"{API}/avatars/new", {"user_id": 7}, ["body", "user_id"]),
    "avatar-no-body": ("POST", f"{API}/avatars/new", None, ["body"]),
    "session-no-user": ("POST", SESSIONS, {}, ["body", "user_id"]),
    "config-type": (
        "POST",
        SESSIONS,
        {"user_id": "{user}", "config": {"type": "paint"}},
        ["body", "config"],
    ),
    "edit-no-avatar": (
        "POST",
        SESSIONS,
        {"user_id": "{user}", "config": {"type": EDIT}},
        ["body", "config", EDIT, "avatar_id"],
    ),
    "edit-avatar-uuid": (
        "POST",
        SESSIONS,
        {"user_id": "{user}", "config": {"type": EDIT, "avatar_id": "x"}},
        ["body", "config", EDIT, "avatar_id"],
    ),
    "color": (
        "PUT",
        CUSTOMIZATION,
        {"assets": {"eyewear": {"id": "{eyewear}", "color": "red"}}},
        ["body", "assets", "eyewear", "color"],
    ),
    "asset-uuid": (
        "PUT",
        CUSTOMIZATION,
        {"assets": {"clothing": {"id": "x"}}},
        ["body", "assets", "clothing", "id"],
    ),
    "body-str": ("PUT", CUSTOMIZATION, {"body": 3}, ["body", "body"]),
    "number": (
        "PUT",
        CUSTOMIZATION,
        {"skin_tone_correction": "x"},
        ["body", "skin_tone_correction"],
    ),
    "metadata": ("PUT", CUSTOMIZATION, {"metadata": {"k": 1}}, ["body", "metadata", "k"]),
    "not-object": ("PUT", CUSTOMIZATION, [], ["body"]),
    # An explicit null where the schema is not nullable (no request field is).
    "config-null": ("POST", SESSIONS, {"user_id": "{user}", "config": None}, ["body", "config"]),
    "edit-avatar-null": (
        "POST",
        SESSIONS,
        {"user_id": "{user}", "config": {"type": EDIT, "avatar_id": None}},
        ["body", "config", EDIT, "avatar_id"],
    ),
    "user-null": ("POST", f"{API}/avatars/new", {"user_id": None}, ["body", "user_id"]),
    "assets-null": ("PUT", CUSTOMIZATION, {"assets": None}, ["body", "assets"]),
    "slot-null": (
        "PUT",
        CUSTOMIZATION,
        {"assets": {"clothing": None}},
        ["body", "assets", "clothing"],
    ),
    "slot-id-null": (
        "PUT",
        CUSTOMIZATION,
        {"assets": {"clothing": {"id": None}}},
        ["body", "assets", "clothing", "id"],
    ),
    "color-null": (
        "PUT",
        CUSTOMIZATION,
        {"assets": {"eyewear": {"id": "{eyewear}", "color": None}}},
        ["body", "assets", "eyewear", "color"],
    ),
    "body-null": ("PUT", CUSTOMIZATION, {"body": None}, ["body", "body"]),
    "age-null": ("PUT", CUSTOMIZATION, {"age": None}, ["body", "age"]),
    "metadata-null": ("PUT", CUSTOMIZATION, {"metadata": None}, ["body", "metadata"]),
    "metadata-value-null": (
        "PUT",
        CUSTOMIZATION,
        {"metadata": {"k": None}},
        ["body", "metadata", "k"],
    ),
    "bone-scale-null": ("PUT", CUSTOMIZATION, {"bone_scale": None}, ["body", "bone_scale"]),
    "bone-head-null": (
        "PUT",
        CUSTOMIZATION,
        {"bone_scale": {"head": None}},
        ["body", "bone_scale", "head"],
    ),
    "tone-null": (
        "PUT",
        CUSTOMIZATION,
        {"skin_tone_correction": None},
        ["body", "skin_tone_correction"],
    ),
}


def _fill(value: Any, names: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {key: _fill(item, names) for key, item in value.items()}
    return value


@pytest.mark.parametrize(
    ("method", "path", "body", "loc"),
    list(VALIDATION_CASES.values()),
    ids=list(VALIDATION_CASES),
)
async def test_invalid_input_is_422_with_fastapi_shape(
    emulator: AvaturnEmulator,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    body: Any,
    loc: list[str | int],
) -> None:
    user_id = await new_user(http, emulator)
    avatar = await new_avatar(http, emulator, user_id)
    names = {"user": user_id, "avatar": avatar["avatar_id"], **emulator.SAMPLE_ASSETS}
    kwargs = {} if body is None else {"json": _fill(body, names)}
    status, answer = await call(http, emulator, method, _fill(path, names), **kwargs)
    assert status == 422
    assert_validation_error(answer, loc)


async def test_invalid_json_is_422_with_position(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    headers = {**auth(emulator), "Content-Type": "application/json"}
    status, body = await call(
        http, emulator, "POST", f"{API}/avatars/new", headers=headers, data=b'{"user_id": '
    )
    assert status == 422
    assert body["detail"][0]["type"] == "json_invalid"
    assert body["detail"][0]["loc"][0] == "body"
    assert isinstance(body["detail"][0]["loc"][1], int)


# ---------------------------------------------------------------- avatars and uploads


async def test_new_avatar_is_pending_and_only_listed_with_include_not_ready(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    user_id = await new_user(http, emulator)
    avatar = await new_avatar(http, emulator, user_id)
    assert set(avatar) == {"avatar_id", "upload_url"}
    base = f"{API}/users/{user_id}/avatars"
    _, default = await call(http, emulator, "GET", base, expect=200)
    _, everything = await call(http, emulator, "GET", f"{base}?include_not_ready=true", expect=200)
    assert default == []
    assert [(item["id"], item["status"]) for item in everything] == [
        (avatar["avatar_id"], "pending")
    ]
    assert "created_at" in everything[0]


async def test_new_avatar_for_unknown_user_is_404(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    status, _ = await call(http, emulator, "POST", f"{API}/avatars/new", json={"user_id": "NOBODY"})
    assert status == 404


async def test_upload_url_is_presigned_on_the_emulator(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    avatar = await new_avatar(http, emulator, await new_user(http, emulator))
    prefix = f"{emulator.base_url}/upload/{avatar['avatar_id']}?signature="
    assert avatar["upload_url"].startswith(prefix)
    assert len(avatar["upload_url"]) > len(prefix) + 16


async def test_avatar_goes_pending_processing_ready_and_sends_avatar_ready(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.processing_delay = 0.2
    user_id = await new_user(http, emulator)
    avatar = await new_avatar(http, emulator, user_id)
    avatar_id = avatar["avatar_id"]
    assert emulator.avatars[avatar_id].status == "pending"
    assert await upload(http, avatar["upload_url"]) == (200, {"status": "ok"})
    assert emulator.avatars[avatar_id].status == "processing"
    await settle(emulator)
    assert emulator.avatars[avatar_id].status == "ready"
    _, listed = await call(http, emulator, "GET", f"{API}/users/{user_id}/avatars")
    assert [item["id"] for item in listed] == [avatar_id]
    assert emulator.events == [
        {
            "event": "avatar.ready",
            "avatar_id": avatar_id,
            "user_id": user_id,
            "status": "ready",
            "session_id": None,
        }
    ]


async def test_fail_avatars_for_makes_processing_fail(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    user_id = await new_user(http, emulator)
    emulator.fail_avatars_for(user_id)
    avatar = await new_avatar(http, emulator, user_id)
    await upload(http, avatar["upload_url"])
    await settle(emulator)
    assert emulator.avatars[avatar["avatar_id"]].status == "failed"
    assert emulator.events[-1]["status"] == "failed"


async def test_avatar_outcome_hook_decides_processing_result(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.avatar_outcome = lambda avatar: "failed" if avatar.body_type == "male" else "ready"
    avatar = await new_avatar(http, emulator, await new_user(http, emulator))
    await upload(http, avatar["upload_url"], photo_form(fields={"body-type": "male"}))
    await settle(emulator)
    assert emulator.avatars[avatar["avatar_id"]].status == "failed"


async def test_upload_records_photo_bytes(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    avatar = await new_avatar(http, emulator, await new_user(http, emulator))
    await upload(http, avatar["upload_url"], photo_form(fields={"telephoto": "true"}))
    record = emulator.avatars[avatar["avatar_id"]]
    assert record.upload_bytes == sum(len(photo) for photo in PHOTOS)
    assert emulator.stats.upload_bytes == record.upload_bytes
    assert (record.body_type, record.telephoto) == ("female", True)


def raw_form(disposition: str, boundary: str = "b0undary") -> bytes:
    """A multipart body by hand: ``disposition`` (with ``{name}``) spells every part's header."""
    parts = [(name, photo, "image/jpeg") for name, photo in zip(PHOTO_FIELDS, PHOTOS, strict=True)]
    parts.append(("body-type", b"female", "text/plain"))
    chunks = [
        f"--{boundary}\r\nContent-Disposition: {disposition.format(name=name)}\r\n"
        f"Content-Type: {kind}\r\n\r\n".encode()
        + data
        + b"\r\n"
        for name, data, kind in parts
    ]
    return b"".join(chunks) + f"--{boundary}--\r\n".encode()


@pytest.mark.parametrize(
    "disposition",
    [
        pytest.param('form-data; name="{name}"; filename="{name}.jpg"', id="quoted"),
        pytest.param("form-data; name={name}; filename={name}.jpg", id="tokens"),
        pytest.param('Form-Data;name="{name}"', id="casing-and-spacing"),
        pytest.param('form-data; name="{name}"; filename="a \\"b\\".jpg"', id="escaped-filename"),
    ],
)
async def test_upload_reads_field_names_however_the_disposition_is_spelled(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession, disposition: str
) -> None:
    avatar = await new_avatar(http, emulator, await new_user(http, emulator))
    headers = {"Content-Type": "multipart/form-data; boundary=b0undary"}
    async with http.post(avatar["upload_url"], data=raw_form(disposition), headers=headers) as r:
        assert r.status == 200, await r.text()
    assert emulator.avatars[avatar["avatar_id"]].upload_bytes == sum(map(len, PHOTOS))


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        pytest.param("Multipart/Form-Data; boundary=b0undary", 200, id="any-case"),
        pytest.param('multipart/form-data; boundary="b0undary"', 200, id="quoted-boundary"),
        pytest.param("multipart/mixed; boundary=b0undary", 422, id="not-form-data"),
        pytest.param("application/octet-stream", 422, id="not-multipart"),
    ],
)
async def test_upload_reads_the_content_type_as_aiohttp_does(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession, content_type: str, expected: int
) -> None:
    avatar = await new_avatar(http, emulator, await new_user(http, emulator))
    body = raw_form('form-data; name="{name}"')
    async with http.post(
        avatar["upload_url"], data=body, headers={"Content-Type": content_type}
    ) as response:
        assert response.status == expected


@pytest.mark.parametrize(
    ("photos", "fields", "loc"),
    [
        pytest.param({"image-side-1": b"GIF89a..."}, {}, ["body", "image-side-1"], id="not-jpeg"),
        pytest.param({"image-side-2": b""}, {}, ["body", "image-side-2"], id="empty"),
        pytest.param({"image-frontal": None}, {}, ["body", "image-frontal"], id="missing"),
        pytest.param({}, {"body-type": "robot"}, ["body", "body-type"], id="body-type"),
        pytest.param({}, {"telephoto": "sometimes"}, ["body", "telephoto"], id="telephoto"),
    ],
)
async def test_invalid_upload_is_422_and_can_be_retried(
    emulator: AvaturnEmulator,
    http: aiohttp.ClientSession,
    photos: dict[str, bytes | None],
    fields: dict[str, str],
    loc: list[str],
) -> None:
    avatar = await new_avatar(http, emulator, await new_user(http, emulator))
    chosen = {**dict(zip(PHOTO_FIELDS, PHOTOS, strict=True)), **photos}
    form = photo_form({k: v for k, v in chosen.items() if v is not None}, fields)
    status, body = await upload(http, avatar["upload_url"], form)
    assert status == 422
    assert_validation_error(body, loc)
    assert emulator.avatars[avatar["avatar_id"]].status == "pending"
    assert (await upload(http, avatar["upload_url"]))[0] == 200


@pytest.mark.parametrize("suffix", ["?signature=forged", ""], ids=["wrong", "missing"])
async def test_upload_without_the_right_signature_is_403(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession, suffix: str
) -> None:
    avatar = await new_avatar(http, emulator, await new_user(http, emulator))
    url = avatar["upload_url"].split("?")[0] + suffix
    status, _ = await upload(http, url)
    assert status == 403
    assert emulator.avatars[avatar["avatar_id"]].status == "pending"


async def test_second_upload_is_409(emulator: AvaturnEmulator, http: aiohttp.ClientSession) -> None:
    avatar = await new_avatar(http, emulator, await new_user(http, emulator))
    await upload(http, avatar["upload_url"])
    status, _ = await upload(http, avatar["upload_url"])
    assert status == 409
    assert emulator.stats.uploads == 1


async def test_delete_avatar_answers_204(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    user_id = await new_user(http, emulator)
    avatar = await new_avatar(http, emulator, user_id)
    path = f"{API}/users/{user_id}/avatars/{avatar['avatar_id']}"
    assert await call(http, emulator, "DELETE", path) == (204, None)
    assert avatar["avatar_id"] not in emulator.avatars


async def test_delete_another_users_avatar_is_404(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    owner = await new_user(http, emulator)
    other = await new_user(http, emulator)
    avatar = await new_avatar(http, emulator, owner)
    status, _ = await call(
        http, emulator, "DELETE", f"{API}/users/{other}/avatars/{avatar['avatar_id']}"
    )
    assert status == 404
    assert avatar["avatar_id"] in emulator.avatars


# ---------------------------------------------------------------- customization


async def test_customization_defaults_before_any_put(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    avatar = await new_avatar(http, emulator, await new_user(http, emulator))
    _, body = await call(
        http, emulator, "GET", f"{API}/avatars/{avatar['avatar_id']}/customization", expect=200
    )
    assert body["assets"] == {}
    assert (body["body"], body["age"]) == ("body_0", "adult")
    assert set(body) == {"assets", "body", "age", "metadata", "bone_scale", "skin_tone_correction"}


async def test_put_customization_is_202_null_stored_and_bumps_version(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    avatar_id = (await new_avatar(http, emulator, await new_user(http, emulator)))["avatar_id"]
    document = {
        "assets": {"eyewear": {"id": emulator.SAMPLE_ASSETS["eyewear"], "color": "#112233aa"}},
        "body": "body_2",
        "metadata": {"source": "test"},
        "bone_scale": {"head": 1.1, "arms": 0.9, "chest": 1.0},
    }
    assert await put_customization(http, emulator, avatar_id, document) == (202, None)
    _, stored = await call(http, emulator, "GET", f"{API}/avatars/{avatar_id}/customization")
    assert stored["assets"] == document["assets"]
    assert (stored["body"], stored["metadata"]) == ("body_2", {"source": "test"})
    assert emulator.avatars[avatar_id].version == 1


CUSTOMIZATION_FIELDS = ("assets", "body", "age", "metadata", "bone_scale", "skin_tone_correction")

# An unknown key at each level of a customization body.
UNKNOWN_KEYS: dict[str, Any] = {
    "top-level": {"shoes": "red"},
    "assets": {"assets": {"hat": {"id": "{clothing}"}}},
    "asset-slot": {"assets": {"clothing": {"id": "{clothing}", "size": "M"}}},
    "slot-without-color": {"assets": {"clothing": {"id": "{clothing}", "color": "#112233"}}},
    "bone-scale": {"bone_scale": {"head": 1.1, "tail": 2.0}},
}


@pytest.mark.parametrize("document", list(UNKNOWN_KEYS.values()), ids=list(UNKNOWN_KEYS))
async def test_unknown_customization_keys_are_ignored_at_every_level(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession, document: dict[str, Any]
) -> None:
    avatar_id = (await new_avatar(http, emulator, await new_user(http, emulator)))["avatar_id"]
    filled = _fill(document, dict(emulator.SAMPLE_ASSETS))
    assert (await put_customization(http, emulator, avatar_id, filled))[0] == 202
    _, stored = await call(http, emulator, "GET", f"{API}/avatars/{avatar_id}/customization")
    assert set(stored) == set(CUSTOMIZATION_FIELDS)
    assert set(stored["bone_scale"]) == {"head", "arms", "chest"}
    assert all(set(slot) <= {"id", "color"} for slot in stored["assets"].values())
    assert set(stored["assets"]) <= {"clothing"}
    assert "color" not in stored["assets"].get("clothing", {})


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": "{user}", "note": 1},
        {"user_id": "{user}", "config": {"type": "create", "note": 1}},
        {"user_id": "{user}", "config": {"type": EDIT, "avatar_id": "{avatar}", "note": 1}},
    ],
    ids=["request", "config", "edit-config"],
)
async def test_unknown_session_keys_are_ignored_at_every_level(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession, body: dict[str, Any]
) -> None:
    user_id = await new_user(http, emulator)
    avatar = await new_avatar(http, emulator, user_id)
    filled = _fill(body, {"user": user_id, "avatar": avatar["avatar_id"]})
    status, answer = await call(http, emulator, "POST", SESSIONS, json=filled)
    assert status == 200, answer


async def test_new_avatar_ignores_unknown_keys(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    user_id = await new_user(http, emulator)
    body = {"user_id": user_id, "note": 1}
    assert (await call(http, emulator, "POST", f"{API}/avatars/new", json=body))[0] == 200


async def test_partial_bone_scale_keeps_the_other_values(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    avatar_id = (await new_avatar(http, emulator, await new_user(http, emulator)))["avatar_id"]
    document = {"bone_scale": {"head": 1.2}}
    assert (await put_customization(http, emulator, avatar_id, document))[0] == 202
    _, stored = await call(http, emulator, "GET", f"{API}/avatars/{avatar_id}/customization")
    assert stored["bone_scale"] == {"head": 1.2, "arms": 1.0, "chest": 1.0}


async def test_asset_in_the_wrong_slot_is_409(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    avatar_id = (await new_avatar(http, emulator, await new_user(http, emulator)))["avatar_id"]
    document = {"assets": {"footwear": {"id": emulator.SAMPLE_ASSETS["clothing"]}}}
    status, _ = await put_customization(http, emulator, avatar_id, document)
    assert status == 409
    assert emulator.avatars[avatar_id].version == 0


@pytest.mark.parametrize("retired", [True, False], ids=["retired", "unknown"])
async def test_unavailable_asset_is_410(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession, retired: bool
) -> None:
    avatar_id = (await new_avatar(http, emulator, await new_user(http, emulator)))["avatar_id"]
    asset_id = emulator.SAMPLE_ASSETS["clothing"] if retired else UNKNOWN_UUID
    if retired:
        emulator.retire_asset(asset_id)
    status, _ = await put_customization(
        http, emulator, avatar_id, {"assets": {"clothing": {"id": asset_id}}}
    )
    assert status == 410


async def test_customization_of_unknown_avatar_is_404(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    status, _ = await call(http, emulator, "GET", f"{API}/avatars/{UNKNOWN_UUID}/customization")
    assert status == 404


# ---------------------------------------------------------------- renders


async def test_render_before_customization_is_409(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    _, avatar_id = await ready_avatar(http, emulator, customize=False)
    status, body = await call(http, emulator, "POST", f"{API}/renders/new?avatar_id={avatar_id}")
    assert status == 409
    assert "customization first" in body["detail"]


async def test_render_of_unprocessed_avatar_is_409(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    avatar_id = (await new_avatar(http, emulator, await new_user(http, emulator)))["avatar_id"]
    status, _ = await call(http, emulator, "POST", f"{API}/renders/new?avatar_id={avatar_id}")
    assert status == 409


async def test_render_of_unknown_avatar_is_404(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    status, _ = await call(http, emulator, "POST", f"{API}/renders/new?avatar_id={UNKNOWN_UUID}")
    assert status == 404


async def test_render_without_customization_is_allowed_when_not_required(
    http: aiohttp.ClientSession,
) -> None:
    async with AvaturnEmulator(processing_delay=0, require_customization=False) as emu:
        _, avatar_id = await ready_avatar(http, emu, customize=False)
        await call(http, emu, "POST", f"{API}/renders/new?avatar_id={avatar_id}", expect=200)


async def test_render_is_pending_then_render_ready_webhook_links_the_image(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    user_id, avatar_id = await ready_avatar(http, emulator)
    emulator.webhook_url = receiver.url
    query = f"avatar_id={avatar_id}&scene=common/city_full_body&format=png"
    _, render = await call(http, emulator, "POST", f"{API}/renders/new?{query}", expect=200)
    assert render["status"] == "pending"
    assert render["render_url"] is None
    await receiver.wait_for(1)
    event = Webhook(emulator.webhook_secret).verify(
        receiver.received[0][1], receiver.received[0][0]
    )
    expected_url = f"{emulator.base_url}/files/renders/{render['id']}.png"
    assert event == {
        "event": "render.ready",
        "avatar_id": avatar_id,
        "user_id": user_id,
        "id": render["id"],
        "status": "ready",
        "render_url": expected_url,
    }
    async with http.get(expected_url) as response:
        assert response.status == 200
        assert (await response.read()).startswith(b"\x89PNG")


async def test_failed_render_has_no_url(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    _, avatar_id = await ready_avatar(http, emulator)
    emulator.fail_renders_for(avatar_id)
    await call(http, emulator, "POST", f"{API}/renders/new?avatar_id={avatar_id}", expect=200)
    await settle(emulator)
    assert (emulator.events[-1]["status"], emulator.events[-1]["render_url"]) == ("failed", None)


# ---------------------------------------------------------------- exports


async def test_export_before_customization_is_409(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    _, avatar_id = await ready_avatar(http, emulator, customize=False)
    status, _ = await call(http, emulator, "POST", f"{API}/exports/new?avatar_id={avatar_id}")
    assert status == 409


async def test_export_is_pending_once_then_ready_for_the_same_version(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    user_id, avatar_id = await ready_avatar(http, emulator)
    emulator.webhook_url = receiver.url
    emulator.export_delay = 0.1
    path = f"{API}/exports/new?avatar_id={avatar_id}"
    assert await call(http, emulator, "POST", path) == (200, {"status": "pending", "url": None})
    assert await call(http, emulator, "POST", path) == (200, {"status": "pending", "url": None})
    assert emulator.stats.exports_started == 1
    await receiver.wait_for(1)
    event = Webhook(emulator.webhook_secret).verify(
        receiver.received[0][1], receiver.received[0][0]
    )
    assert (event["event"], event["avatar_id"], event["user_id"]) == (
        "export.ready",
        avatar_id,
        user_id,
    )
    _, ready = await call(http, emulator, "POST", path)
    assert ready == {"status": "ready", "url": event["export_url"]}
    assert emulator.stats.exports_started == 1


async def test_new_customization_version_needs_a_new_export(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    _, avatar_id = await ready_avatar(http, emulator)
    path = f"{API}/exports/new?avatar_id={avatar_id}"
    await call(http, emulator, "POST", path)
    await settle(emulator)
    await put_customization(http, emulator, avatar_id, {"body": "body_1"}, expect=202)
    assert await call(http, emulator, "POST", path) == (200, {"status": "pending", "url": None})
    assert emulator.stats.exports_started == 2


async def test_export_file_has_export_size_bytes_of_glb(http: aiohttp.ClientSession) -> None:
    async with AvaturnEmulator(processing_delay=0, export_delay=0, export_size=200_000) as emu:
        _, avatar_id = await ready_avatar(http, emu)
        await call(http, emu, "POST", f"{API}/exports/new?avatar_id={avatar_id}")
        await settle(emu)
        _, ready = await call(http, emu, "POST", f"{API}/exports/new?avatar_id={avatar_id}")
        async with http.get(ready["url"]) as response:
            data = await response.read()
    assert len(data) == 200_000
    assert data.startswith(b"glTF")


async def test_deleting_an_avatar_drops_its_exports(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    user_id, avatar_id = await ready_avatar(http, emulator)
    await call(http, emulator, "POST", f"{API}/exports/new?avatar_id={avatar_id}")
    await settle(emulator)
    url = emulator.events[-1]["export_url"]
    await call(http, emulator, "DELETE", f"{API}/users/{user_id}/avatars/{avatar_id}", expect=204)
    assert emulator.exports == {}
    async with http.get(url) as response:
        assert response.status == 404


# ---------------------------------------------------------------- webhook delivery


async def test_webhook_carries_standard_webhooks_headers(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    emulator.webhook_url = receiver.url
    await ready_avatar(http, emulator, customize=False)
    await receiver.wait_for(1)
    headers, body = receiver.received[0]
    assert re.fullmatch(r"msg_\w+", headers["webhook-id"])
    assert headers["webhook-timestamp"].isdigit()
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(emulator.webhook_secret).verify(body, headers)["event"] == "avatar.ready"


async def test_webhook_is_retried_with_the_same_id_until_accepted(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503]
    emulator.webhook_url = receiver.url
    await ready_avatar(http, emulator, customize=False)
    await settle(emulator)
    assert [d.status for d in emulator.webhook_deliveries] == [500, 503, 204]
    assert [d.attempt for d in emulator.webhook_deliveries] == [1, 2, 3]
    assert len({headers["webhook-id"] for headers, _ in receiver.received}) == 1


async def test_webhook_gives_up_after_max_attempts(
    http: aiohttp.ClientSession,
) -> None:
    async with AvaturnEmulator(
        processing_delay=0, webhook_max_attempts=3, webhook_retry_delay=0.01
    ) as emu:
        emu.webhook_url = f"{emu.base_url}/nowhere"  # answers 404
        await ready_avatar(http, emu, customize=False)
        await settle(emu)
    assert [(d.attempt, d.status) for d in emu.webhook_deliveries] == [(1, 404), (2, 404), (3, 404)]


async def test_connection_error_is_recorded_as_an_error(http: aiohttp.ClientSession) -> None:
    async with AvaturnEmulator(
        processing_delay=0, webhook_max_attempts=2, webhook_retry_delay=0.01
    ) as emu:
        emu.webhook_url = "http://127.0.0.1:9/unreachable"
        await ready_avatar(http, emu, customize=False)
        await settle(emu)
    assert [d.status for d in emu.webhook_deliveries] == [None, None]
    assert all(d.error for d in emu.webhook_deliveries)


async def test_deprecated_duplicate_webhooks_still_sends_each_event_twice_with_one_id(
    http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    with pytest.deprecated_call(match="duplicate_webhooks"):
        emulator = AvaturnEmulator(
            processing_delay=0, duplicate_webhooks=True, webhook_url=receiver.url
        )
    async with emulator as emu:
        await ready_avatar(http, emu, customize=False)
        await receiver.wait_for(2)
    first, second = (headers["webhook-id"] for headers, _ in receiver.received)
    assert first == second
    assert [d.copy for d in emu.webhook_deliveries] == [1, 2]


async def test_deprecated_reorder_webhooks_still_delivers_a_batch_newest_first(
    http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    with pytest.deprecated_call(match="reorder_webhooks"):
        emulator = AvaturnEmulator(processing_delay=0, render_delay=0.02, reorder_webhooks=True)
    async with emulator as emu:
        _, avatar_id = await ready_avatar(http, emu)
        await settle(emu)
        emu.webhook_url = receiver.url
        render_ids = []
        for _ in range(2):
            _, render = await call(http, emu, "POST", f"{API}/renders/new?avatar_id={avatar_id}")
            render_ids.append(render["id"])
        await receiver.wait_for(2)
    received = [
        Webhook(emu.webhook_secret).verify(body, headers)["id"]
        for headers, body in receiver.received
    ]
    assert received == render_ids[::-1]


def test_deprecated_webhook_knobs_join_the_given_fault_plan() -> None:
    plan = FaultPlan(seed=3, webhooks=WebhookFaults(drop=0.5))
    with pytest.deprecated_call():
        emu = AvaturnEmulator(faults=plan, duplicate_webhooks=True, reorder_webhooks=True)
    expected = FaultPlan(seed=3, webhooks=WebhookFaults(drop=0.5, duplicate=1.0, reorder=True))
    assert emu.faults == expected


async def test_webhook_secret_is_a_whsec_value_by_default(emulator: AvaturnEmulator) -> None:
    assert isinstance(emulator.webhook_secret, str)
    assert emulator.webhook_secret.startswith("whsec_")


# ---------------------------------------------------------------- fault injection and stats


async def test_fail_next_answers_before_any_state_change(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.fail_next("users.create", 503, headers={"Retry-After": "2"})
    async with http.post(f"{emulator.base_url}{API}/users/new", headers=auth(emulator)) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "2"
    assert emulator.users == {}
    await new_user(http, emulator)
    assert len(emulator.users) == 1


async def test_fail_next_times_and_raw_body(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.fail_next("avatars.list", 502, times=2, body="<html>bad gateway</html>")
    user_id = await new_user(http, emulator)
    path = f"{emulator.base_url}{API}/users/{user_id}/avatars"
    answers = []
    for _ in range(3):
        async with http.get(path, headers=auth(emulator)) as response:
            answers.append((response.status, await response.text()))
    assert answers == [(502, "<html>bad gateway</html>")] * 2 + [(200, "[]")]


async def test_fail_next_on_upload_keeps_the_upload_available(
    emulator: AvaturnEmulator, http: aiohttp.ClientSession
) -> None:
    avatar = await new_avatar(http, emulator, await new_user(http, emulator))
    emulator.fail_next("upload", 500)
    assert (await upload(http, avatar["upload_url"]))[0] == 500
    assert (await upload(http, avatar["upload_url"]))[0] == 200


async def test_fail_next_rejects_unknown_route(emulator: AvaturnEmulator) -> None:
    with pytest.raises(ConfigurationError, match="unknown route"):
        emulator.fail_next("users.explode", 500)


def test_an_empty_api_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="api_key"):
        AvaturnEmulator(api_key="")


async def test_max_in_flight_counts_concurrent_requests(http: aiohttp.ClientSession) -> None:
    async with AvaturnEmulator(response_delay=0.1) as emu:
        await asyncio.gather(*(new_user(http, emu) for _ in range(5)))
        assert emu.stats.max_in_flight == 5
        assert emu.stats.requests["users.create"] == 5
        assert emu.stats.in_flight == 0


# ---------------------------------------------------------------- lifecycle


async def test_repr_hides_the_api_key_and_webhook_secret() -> None:
    emu = AvaturnEmulator(api_key="sk-very-secret", webhook_secret="whsec_c2VjcmV0LWtleQ==")
    async with emu:
        text = repr(emu)
    assert "sk-very-secret" not in text
    assert "c2VjcmV0" not in text


async def test_aclose_cancels_pending_work(http: aiohttp.ClientSession) -> None:
    emu = AvaturnEmulator(processing_delay=30)
    await emu.start()
    avatar = await new_avatar(http, emu, await new_user(http, emu))
    await upload(http, avatar["upload_url"])
    with anyio.fail_after(3):
        await emu.aclose()
    assert emu.events == []


async def test_start_and_aclose_may_run_in_different_tasks() -> None:
    emu = AvaturnEmulator()
    await asyncio.get_running_loop().create_task(emu.start())
    await asyncio.get_running_loop().create_task(emu.aclose())
    with pytest.raises(RuntimeError):
        _ = emu.base_url


async def test_serve_forever_propagates_cancellation_and_closes() -> None:
    emu = AvaturnEmulator()
    with anyio.move_on_after(0.2) as scope:
        await emu.serve_forever()
    assert scope.cancelled_caught
    with pytest.raises(RuntimeError, match="not running"):
        _ = emu.base_url


def test_sample_photos_are_small_jpegs() -> None:
    paths = sample_photo_paths()
    assert [path.name for path in paths] == ["frontal.jpg", "side_1.jpg", "side_2.jpg"]
    for path in paths:
        assert path.parent == SAMPLES_DIR
        data = path.read_bytes()
        assert data.startswith(b"\xff\xd8\xff")
        assert 1_000 < len(data) < 50_000
