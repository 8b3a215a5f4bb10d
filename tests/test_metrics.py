"""Metrics of the client, the webhook receivers and the event hub, read through
OpenTelemetry's in-memory metric reader (counters are cumulative in a process:
each test compares before and after)."""

from __future__ import annotations

import subprocess
import sys

import anyio
import pytest

from avaturn_async import AvaturnClient, Clock, EventHub, RateLimitError, RetryPolicy
from avaturn_async._metrics import HTTP_DURATION_BUCKETS
from avaturn_async.testing import make_avatar_ready, sign_webhook
from avaturn_async.webhooks import WebhookPipeline, WebhookRouter, WebhookVerifier
from tests.otel_support import collect, matching, metric_reader, total
from tests.support import json_answer, scripted_server

KEY = "sk_metrics_secret"
SECRET = "whsec_" + "bWV0cmljcy1zZWNyZXQtYnl0ZXMtMzItbG9uZyEhIQ=="


@pytest.fixture(autouse=True)
def installed() -> None:
    metric_reader()


async def no_sleep(delay: float) -> None:
    return None


NO_WAIT = Clock(sleep=no_sleep)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def test_each_attempt_records_its_duration_with_the_http_attributes() -> None:
    async with scripted_server(json_answer(200, {"id": "U1"})) as server:
        async with AvaturnClient(KEY, base_url=server.base_url) as client:
            await client.users.create()
    points = matching(
        await collect("http.client.request.duration"), server__port=port_of(server.base_url)
    )
    assert len(points) == 1
    attributes = dict(points[0].attributes)
    assert attributes == {
        "http.request.method": "POST",
        "server.address": "127.0.0.1",
        "server.port": port_of(server.base_url),
        "http.response.status_code": 200,
        "avaturn.route": "users.create",
    }
    assert points[0].count == 1


async def test_request_duration_uses_the_advised_buckets() -> None:
    async with scripted_server(json_answer(200, {"id": "U1"})) as server:
        async with AvaturnClient(KEY, base_url=server.base_url) as client:
            await client.users.create()
    points = matching(
        await collect("http.client.request.duration"), server__port=port_of(server.base_url)
    )
    assert tuple(points[0].explicit_bounds) == HTTP_DURATION_BUCKETS


async def test_a_429_counts_as_rate_limited_and_its_retry_as_a_retry() -> None:
    retries_before = total(await collect("avaturn.client.retries"), error__type="429")
    answers = (json_answer(429, {"detail": "slow"}), json_answer(200, {"id": "U1"}))
    async with scripted_server(*answers) as server:
        async with AvaturnClient(KEY, base_url=server.base_url, clock=NO_WAIT) as client:
            await client.users.create()
    port = port_of(server.base_url)
    durations = matching(await collect("http.client.request.duration"), server__port=port)
    statuses = sorted(dict(p.attributes)["http.response.status_code"] for p in durations)
    assert statuses == [200, 429]
    refused = [p for p in durations if p.attributes["http.response.status_code"] == 429]
    assert refused[0].attributes["error.type"] == "429"
    limited = await collect("avaturn.client.rate_limited")
    assert total(limited, avaturn__route="users.create") >= 1
    retries = await collect("avaturn.client.retries")
    assert total(retries, error__type="429") == retries_before + 1


async def test_a_refused_connection_is_recorded_with_its_error_type() -> None:
    async with scripted_server(json_answer(200)) as server:
        url = server.base_url  # closed when the block ends: nothing listens there now
    async with AvaturnClient(KEY, base_url=url, clock=NO_WAIT) as client:
        with pytest.raises(Exception):  # noqa: B017, PT011 - the error type is the metric's
            await client.with_options(max_attempts=1).users.create()
    points = matching(await collect("http.client.request.duration"), server__port=port_of(url))
    attributes = dict(points[0].attributes)
    assert attributes["error.type"] == "ConnectError"
    assert "http.response.status_code" not in attributes


async def test_the_concurrency_gauge_follows_the_adaptive_limit() -> None:
    answers = (json_answer(429, {"detail": "slow"}),)
    async with scripted_server(*answers) as server:
        client = AvaturnClient(
            KEY, base_url=server.base_url, retry=RetryPolicy.off(), max_concurrency=8
        )
        async with client:
            port = port_of(server.base_url)
            before = matching(await collect("avaturn.client.concurrency.limit"), server__port=port)
            with pytest.raises(RateLimitError):
                await client.users.create()
            after = matching(await collect("avaturn.client.concurrency.limit"), server__port=port)
    assert (before[0].value, after[0].value) == (8, 4)


def test_without_an_sdk_the_client_makes_no_instrument() -> None:
    """In a fresh interpreter (no SDK installed), requests leave the metrics untouched."""
    code = """
import anyio
from aiohttp import web
from avaturn_async import AvaturnClient, _metrics

async def main():
    app = web.Application()
    app.router.add_post("/api/v1/users/new", lambda r: web.json_response({"id": "U"}))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    async with AvaturnClient("k", base_url=url) as client:
        for _ in range(3):
            await client.users.create()
    await runner.cleanup()
    print(_metrics._made is None, _metrics.sdk_installed())

anyio.run(main)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["True", "False"]


# ---------------------------------------------------------------- webhooks


def _deliveries(points: list, outcome: str) -> float:  # type: ignore[type-arg]
    return total(points, avaturn__webhook__outcome=outcome)


async def test_deliveries_are_counted_by_outcome_and_result() -> None:
    pipeline = WebhookPipeline(WebhookVerifier(SECRET), WebhookRouter())
    before = await collect("avaturn.webhook.deliveries")
    body, headers = sign_webhook(make_avatar_ready(), SECRET)
    await pipeline.handle(body, headers)  # processed
    await pipeline.handle(body, headers)  # duplicate
    await pipeline.handle(body, {**headers, "webhook-signature": "v1,AAAA"})  # refused
    pipeline.too_large()  # an adapter refused the body
    after = await collect("avaturn.webhook.deliveries")
    for outcome in ("processed", "duplicate", "too_large"):
        assert _deliveries(after, outcome) == _deliveries(before, outcome) + 1
    accepted = matching(after, avaturn__webhook__outcome="processed")[0]
    assert dict(accepted.attributes)["avaturn.webhook.result"] == "accepted"
    assert dict(accepted.attributes)["http.response.status_code"] == 204
    refused = [dict(p.attributes) for p in matching(after, avaturn__webhook__result="refused")]
    assert {"invalid_signature", "too_large"} <= {a["avaturn.webhook.outcome"] for a in refused}


async def test_a_failing_handler_is_counted_as_failed() -> None:
    router = WebhookRouter()

    @router.on_any
    async def broken(event: object) -> None:
        raise RuntimeError("boom")

    pipeline = WebhookPipeline(WebhookVerifier(SECRET), router)
    before = total(await collect("avaturn.webhook.deliveries"), avaturn__webhook__result="failed")
    body, headers = sign_webhook(make_avatar_ready(), SECRET)
    assert (await pipeline.handle(body, headers)).status == 500
    after = total(await collect("avaturn.webhook.deliveries"), avaturn__webhook__result="failed")
    assert after == before + 1


# ---------------------------------------------------------------- the hub


async def test_the_hub_gauge_counts_the_jobs_waiting() -> None:
    hub = EventHub()
    async with anyio.create_task_group() as group:
        for n in range(3):
            group.start_soon(hub.wait, ("avatar", f"a{n}"))
        while hub.waiting < 3:  # noqa: ASYNC110 (a count, not an event)
            await anyio.sleep(0.01)
        waiting = await collect("avaturn.hub.waiting")
        group.cancel_scope.cancel()
    assert waiting[0][1].value >= 3
