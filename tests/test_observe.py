"""Hooks, logging, response metadata and tracing."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from avaturn_async import (
    AvaturnClient,
    Clock,
    ErrorInfo,
    RequestInfo,
    ResponseInfo,
    RetryInfo,
    RetryPolicy,
    ServerError,
    response_of,
)
from avaturn_async._observe import ResponseList, attach_metadata
from avaturn_async._requests import Response
from tests.otel_support import span_exporter
from tests.support import SAMPLE_JPEG, json_answer, scripted_server

KEY = "sk_observe_secret"
AVATAR = "0b1f6f36-8c1a-4c43-9a4e-2c7b1c4f9b10"



@pytest.fixture(scope="session")
def installed_exporter() -> InMemorySpanExporter:
    """OpenTelemetry takes one global provider per process: install it once, when first asked."""
    return span_exporter()


@pytest.fixture
def spans(installed_exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    """The process's span exporter, emptied for this test."""
    installed_exporter.clear()
    return installed_exporter


async def no_sleep(delay: float) -> None:
    return None


NO_WAIT = Clock(sleep=no_sleep)
"""Retry waits skipped, through the client's public clock seam."""


async def test_hooks_see_each_attempt_retry_and_answer() -> None:
    seen: list[object] = []

    async def async_hook(info: object) -> None:
        seen.append(info)

    async with scripted_server(json_answer(503), json_answer(200, {"id": "U"})) as server:
        client = AvaturnClient(
            KEY,
            clock=NO_WAIT,
            base_url=server.base_url,
            on_request=seen.append,
            on_response=async_hook,
            on_retry=seen.append,
        )
        async with client:
            await client.users.create()
    kinds = [type(info).__name__ for info in seen]
    assert kinds == ["RequestInfo", "ResponseInfo", "RetryInfo", "RequestInfo", "ResponseInfo"]
    retry = seen[2]
    assert isinstance(retry, RetryInfo)
    assert (retry.route, retry.attempt, retry.reason) == ("users.create", 1, "status 503")


async def test_on_error_is_called_once_when_giving_up() -> None:
    errors: list[ErrorInfo] = []
    async with scripted_server(json_answer(500)) as server:
        client = AvaturnClient(
            KEY,
            clock=NO_WAIT,
            base_url=server.base_url,
            retry=RetryPolicy(max_attempts=2),
            on_error=errors.append,
        )
        async with client:
            with pytest.raises(ServerError):
                await client.avatars.list("U")
    assert [(e.attempts, type(e.error)) for e in errors] == [(2, ServerError)]


async def test_failing_hook_does_not_break_the_call(caplog: pytest.LogCaptureFixture) -> None:
    def broken(info: RequestInfo) -> None:
        raise RuntimeError("hook bug")

    async with scripted_server(json_answer(200, {"id": "U"})) as server:
        async with AvaturnClient(KEY, base_url=server.base_url, on_request=broken) as client:
            assert (await client.users.create()).id == "U"
    assert "hook" in caplog.text


async def test_response_info_carries_status_and_request_id() -> None:
    seen: list[ResponseInfo] = []
    async with scripted_server(json_answer(200, {"id": "U"}, {"x-request-id": "r-1"})) as server:
        async with AvaturnClient(
            KEY, base_url=server.base_url, clock=NO_WAIT, on_response=seen.append
        ) as client:
            await client.users.create()
    assert (seen[0].status, seen[0].request_id) == (200, "r-1")


async def test_retries_are_logged_at_info_and_giving_up_at_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="avaturn_async")
    async with scripted_server(json_answer(502)) as server:
        client = AvaturnClient(KEY, base_url=server.base_url, retry=RetryPolicy(max_attempts=2))
        async with client:
            with pytest.raises(ServerError):
                await client.avatars.list("U")
    levels = [r.levelname for r in caplog.records if r.name == "avaturn_async"]
    sent, answered = "DEBUG", "DEBUG"  # each attempt: a line before it is sent, one after
    assert levels == [sent, answered, "INFO", sent, answered, "WARNING"]
    assert KEY not in caplog.text


async def test_upload_signature_never_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="avaturn_async")
    jpeg = SAMPLE_JPEG
    async with scripted_server(json_answer(200, {"status": "ok"})) as server:
        async with AvaturnClient(KEY, base_url=server.base_url) as client:
            await client.avatars.upload_photos(
                f"{server.base_url}/up?signature=PRESIGNED",
                frontal=jpeg,
                side_1=jpeg,
                side_2=jpeg,
                body_type="male",
            )
    assert caplog.records
    assert "PRESIGNED" not in caplog.text


async def test_models_expose_response_metadata() -> None:
    headers = {"x-request-id": "r-9", "x-ratelimit-limit": "100", "x-ratelimit-remaining": "7"}
    async with scripted_server(json_answer(200, {"id": "U"}, headers)) as server:
        async with AvaturnClient(KEY, base_url=server.base_url) as client:
            user = await client.users.create()
    meta = response_of(user)
    assert meta is not None
    assert (meta.status, meta.request_id, meta.attempts) == (200, "r-9", 1)
    assert meta.rate_limit is not None
    assert (meta.rate_limit.limit, meta.rate_limit.remaining) == (100, 7)


async def test_lists_and_jobs_expose_response_metadata() -> None:
    async with (
        scripted_server(
            json_answer(200, [], {"x-request-id": "list"}),
            json_answer(200, {"status": "pending", "url": None}, {"x-request-id": "export"}),
        ) as server,
        AvaturnClient(KEY, base_url=server.base_url, clock=NO_WAIT) as client,
    ):
        avatars = await client.avatars.list("U")
        export = await client.exports.create(AVATAR)
    assert avatars == []
    assert [response_of(avatars).request_id, response_of(export).request_id] == [  # type: ignore[union-attr]
        "list",
        "export",
    ]


async def test_metadata_counts_attempts() -> None:
    async with scripted_server(json_answer(503), json_answer(200, [])) as server:
        client = AvaturnClient(KEY, base_url=server.base_url, clock=NO_WAIT)
        async with client:
            avatars = await client.avatars.list("U")
    assert response_of(avatars).attempts == 2


def test_objects_not_from_the_client_have_no_metadata() -> None:
    assert response_of(object()) is None


async def test_each_attempt_is_a_client_span(spans: InMemorySpanExporter) -> None:
    async with scripted_server(json_answer(503), json_answer(200, {"id": "U"})) as server:
        client = AvaturnClient(KEY, base_url=server.base_url)
        async with client:
            await client.users.create()
    finished = spans.get_finished_spans()
    assert [s.name for s in finished] == ["avaturn users.create", "avaturn users.create"]
    assert [s.attributes["http.response.status_code"] for s in finished] == [503, 200]  # type: ignore[index]


async def test_tracing_can_be_turned_off(spans: InMemorySpanExporter) -> None:
    async with scripted_server(json_answer(200, {"id": "U"})) as server:
        async with AvaturnClient(KEY, base_url=server.base_url, tracing=False) as client:
            await client.users.create()
    assert spans.get_finished_spans() == ()


def test_response_of_a_copied_list_is_none() -> None:
    # Metadata rides on the list the client returned, not on copies of it.
    listed = ResponseList([1, 2])
    attach_metadata(listed, "avatars.list", Response(status=200))
    assert (response_of(listed) is not None, response_of(list(listed))) == (True, None)
