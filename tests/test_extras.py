"""Escape hatches: ``extra_headers``, ``extra_query`` and ``extra_body`` on every endpoint
method; the documented arguments and the client's own headers win every clash."""

from __future__ import annotations

import inspect
import json
import logging
from typing import Any

import anyio
import pytest

from avaturn_async import AvaturnClient, InvalidRequestError, sync
from avaturn_async import _resources as async_resources
from avaturn_async._extras import with_extras
from avaturn_async._requests import build_create_user, build_upload
from avaturn_async.sync import _resources as sync_resources
from avaturn_async.testing import AvaturnEmulator
from tests.support import json_answer, scripted_server

GROUPS = ("Users", "Sessions", "Avatars", "Renders", "Exports")
NOT_ENDPOINTS = {"track"}  # makes a job for an avatar created before: sends nothing
JSON_BODIES = {
    "Sessions.create",
    "Avatars.create",
    "Avatars.create_from_photos",
    "Avatars.set_customization",
}
AVATAR = "4b1f6c1e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"


def endpoint_methods(module: object) -> list[tuple[str, inspect.Signature]]:
    found = []
    for group in GROUPS:
        cls = getattr(module, group)
        for name, method in vars(cls).items():
            if not name.startswith("_") and callable(method) and name not in NOT_ENDPOINTS:
                found.append((f"{group}.{name}", inspect.signature(method)))
    return found


@pytest.mark.parametrize("module", [async_resources, sync_resources], ids=["async", "sync"])
def test_every_endpoint_method_takes_the_extras(module: object) -> None:
    wrong = []
    for name, signature in endpoint_methods(module):
        expected = {"extra_headers", "extra_query"} | (
            {"extra_body"} if name in JSON_BODIES else set()
        )
        given = {p for p in signature.parameters if p.startswith("extra_")}
        kinds = {signature.parameters[p].kind for p in given}
        if given != expected or kinds != {inspect.Parameter.KEYWORD_ONLY}:
            wrong.append(name)
    assert wrong == []


async def test_extras_reach_the_server() -> None:
    async with scripted_server(json_answer(200, {"id": "s", "url": "https://e/s"})) as server:
        async with AvaturnClient("k", base_url=server.base_url) as client:
            await client.sessions.create(
                "u1",
                extra_headers={"X-Avaturn-Beta": "editor-2"},
                extra_query={"locale": "fr", "preview": True},
                extra_body={"theme": {"dark": True}},
            )
    seen = server.seen[0]
    assert seen.headers["X-Avaturn-Beta"] == "editor-2"
    assert seen.query == {"locale": "fr", "preview": "true"}
    assert json.loads(seen.body) == {"user_id": "u1", "theme": {"dark": True}}


async def test_documented_arguments_win_a_clash_with_the_extras() -> None:
    async with scripted_server(json_answer(200, [])) as server:
        async with AvaturnClient("k", base_url=server.base_url) as client:
            await client.avatars.list(
                "u1", include_not_ready=False, extra_query={"include_not_ready": "true"}
            )
    assert server.seen[0].query == {"include_not_ready": "false"}


async def test_a_documented_body_field_wins_over_extra_body(emulator: AvaturnEmulator) -> None:
    async with AvaturnClient(emulator.api_key, base_url=emulator.base_url) as client:
        user = await client.users.create()
        created = await client.avatars.create(user.id, extra_body={"user_id": "someone-else"})
    assert emulator.avatars[created.avatar_id].user_id == user.id


async def test_the_clients_own_headers_win_over_extra_headers() -> None:
    async with scripted_server(json_answer(200, {"id": "U"})) as server:
        async with AvaturnClient("the-key", base_url=server.base_url, user_agent="ua/1") as client:
            await client.users.create(
                extra_headers={"Authorization": "Bearer other", "User-Agent": "x", "X-Ok": "1"}
            )
    headers = server.seen[0].headers
    assert (headers["Authorization"], headers["User-Agent"], headers["X-Ok"]) == (
        "Bearer the-key",
        "ua/1",
        "1",
    )


def test_a_pre_signed_urls_own_parameters_win_over_extra_query() -> None:
    upload = build_upload("https://u.test/upload/a?signature=s1", object())  # type: ignore[arg-type]
    merged = with_extras(upload, None, {"signature": "forged", "trace": "t"}, None)
    assert merged.url("") == "https://u.test/upload/a?signature=s1&trace=t"


def test_secret_looking_extra_headers_are_redacted_in_the_request_repr() -> None:
    headers = {"X-Api-Key": "k1", "Cookie": "c1", "X-Session-Token": "t1", "X-Trace": "visible"}
    shown = repr(with_extras(build_create_user(), headers, None, None))
    assert tuple(v for v in ("k1", "c1", "t1") if v not in shown) == ("k1", "c1", "t1")
    assert "visible" in shown


async def test_secret_looking_headers_are_redacted_in_debug_logs(
    emulator: AvaturnEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="avaturn_async")
    async with AvaturnClient(emulator.api_key, base_url=emulator.base_url) as client:
        await client.users.create(extra_headers={"X-Partner-Secret": "p4ss", "X-Trace": "t-1"})
    assert "t-1" in caplog.text
    assert "X-Partner-Secret" in caplog.text
    assert "p4ss" not in caplog.text
    assert emulator.api_key not in caplog.text


@pytest.mark.parametrize(
    ("headers", "query", "body"),
    [
        ({"X-A": 1}, None, None),
        ({"X-A": "a\r\nInjected: 1"}, None, None),
        (None, {"q": object()}, None),
        (None, None, {"n": float("nan")}),
        (None, None, {1: "not a string key"}),
        (["not", "a", "mapping"], None, None),
    ],
)
async def test_bad_extras_are_refused_before_sending(
    headers: object, query: object, body: object
) -> None:
    async with scripted_server(
        json_answer(200, {"avatar_id": AVATAR, "upload_url": "x"})
    ) as server:
        async with AvaturnClient("k", base_url=server.base_url) as client:
            extras: dict[str, Any] = {
                "extra_headers": headers,
                "extra_query": query,
                "extra_body": body,
            }
            with pytest.raises(InvalidRequestError):
                await client.avatars.create("u", **extras)
    assert server.seen == []


def test_extra_body_on_a_request_without_a_json_body_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="no JSON body"):
        with_extras(build_create_user(), None, None, {"a": 1})


async def test_the_sync_client_passes_the_extras_along() -> None:
    async with scripted_server(json_answer(200, {"id": "U"})) as server:

        def call() -> None:
            with sync.AvaturnClient("k", base_url=server.base_url) as client:
                client.users.create(extra_headers={"X-Trace": "from-sync"}, extra_query={"q": 1})

        await anyio.to_thread.run_sync(call)
    assert (server.seen[0].headers["X-Trace"], server.seen[0].query) == ("from-sync", {"q": "1"})
