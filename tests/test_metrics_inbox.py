"""The inbox's counters and its database gauges (SQLite and PostgreSQL), and the
readiness checks of the receivers, through the in-memory metric reader."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web

from avaturn_async.postgres import PostgresConnector, PostgresIdempotencyStore, PostgresInbox
from avaturn_async.webhooks import (
    InboxStats,
    WebhookInbox,
    WebhookPipeline,
    WebhookRouter,
    WebhookVerifier,
)
from avaturn_async.webhooks.aiohttp import make_readiness_handler
from avaturn_async.webhooks.asgi import ReadinessApp
from tests.inbox_support import SECRET, FakeClock, deliver, dispatch, recording_router
from tests.otel_support import collect, matching, metric_reader, total
from tests.pg_server import PostgresServer


@pytest.fixture(autouse=True)
def installed() -> None:
    metric_reader()


async def _steps() -> dict[str, float]:
    return {
        step: total(await collect(f"avaturn.inbox.{step}"), avaturn__webhook__event="render.ready")
        for step in ("stored", "dispatched", "retried", "dead_lettered")
    }


async def test_inbox_counts_stored_dispatched_retried_and_dead_lettered(tmp_path: Path) -> None:
    clock = FakeClock()
    before = await _steps()
    with WebhookInbox(tmp_path / "inbox.db", now=clock) as inbox:
        await deliver(inbox, msg_id="ok")
        await deliver(inbox, msg_id="ok")  # a duplicate: not stored again
        await dispatch(inbox, WebhookRouter())
        await deliver(inbox, msg_id="doomed")
        failing, _ = recording_router(failures=5)
        await dispatch(inbox, failing, max_attempts=2)  # retried
        clock.advance(60)
        await dispatch(inbox, failing, max_attempts=2)  # dead
    after = await _steps()
    assert {step: after[step] - before[step] for step in after} == {
        "stored": 2,
        "dispatched": 1,
        "retried": 1,
        "dead_lettered": 1,
    }


async def test_stats_give_counts_by_status_and_the_oldest_pending_age(tmp_path: Path) -> None:
    clock = FakeClock()
    with WebhookInbox(tmp_path / "inbox.db", now=clock) as inbox:
        await deliver(inbox, msg_id="first")
        clock.advance(30)
        await deliver(inbox, msg_id="second")
        clock.advance(15)
        stats = await inbox.stats()
    assert stats == InboxStats(counts={"pending": 2, "done": 0, "dead": 0}, oldest_pending_age=45)


async def test_a_running_worker_reports_the_inbox_gauges(tmp_path: Path) -> None:
    clock = FakeClock()
    failing, _ = recording_router(failures=100)
    with WebhookInbox(tmp_path / "gauged.db", now=clock) as inbox:
        await deliver(inbox, msg_id="stuck")
        clock.advance(90)
        async with inbox.worker(failing, backoff=lambda attempt: 3600.0):
            events = matching(await collect("avaturn.inbox.events"), avaturn__inbox=inbox.label)
            ages = matching(
                await collect("avaturn.inbox.oldest_pending.age"), avaturn__inbox=inbox.label
            )
    by_status = {p.attributes["avaturn.inbox.status"]: p.value for p in events}
    assert by_status == {"pending": 1, "done": 0, "dead": 0}
    assert ages[0].value == 90


async def test_no_gauges_once_the_worker_stopped(tmp_path: Path) -> None:
    with WebhookInbox(tmp_path / "stopped.db", now=FakeClock()) as inbox:
        async with inbox.worker(WebhookRouter()):
            pass
        events = matching(await collect("avaturn.inbox.events"), avaturn__inbox=inbox.label)
    assert events == []


async def test_postgres_inbox_gauges_come_from_one_query(postgres_dsn: str) -> None:
    clock = FakeClock()
    async with PostgresInbox(postgres_dsn, now=clock) as inbox:
        await deliver(inbox, msg_id="a")
        clock.advance(12)
        await deliver(inbox, msg_id="b")
        await dispatch(inbox, WebhookRouter())  # the oldest is done
        clock.advance(5)
        with inbox.reporting_metrics():
            events = matching(await collect("avaturn.inbox.events"), avaturn__inbox=inbox.label)
            ages = matching(
                await collect("avaturn.inbox.oldest_pending.age"), avaturn__inbox=inbox.label
            )
    assert "password" not in inbox.label
    by_status = {p.attributes["avaturn.inbox.status"]: p.value for p in events}
    assert by_status == {"pending": 1, "done": 1, "dead": 0}
    assert ages[0].value == pytest.approx(5, abs=0.01)


# ---------------------------------------------------------------- readiness


async def test_pipeline_readiness_is_ready_with_a_working_inbox(tmp_path: Path) -> None:
    with WebhookInbox(tmp_path / "ready.db") as inbox:
        pipeline = WebhookPipeline(WebhookVerifier(SECRET), WebhookRouter(), inbox=inbox)
        found = await pipeline.readiness()
    assert (found.ready, found.status, dict(found.checks)) == (True, 200, {"inbox": "ok"})


async def test_readiness_handler_answers_503_while_postgres_is_down(
    postgres_server: PostgresServer,
) -> None:
    connector = PostgresConnector(postgres_server.dsn, connect_timeout=1.0)
    async with PostgresInbox(connector) as inbox:
        pipeline = WebhookPipeline(WebhookVerifier(SECRET), WebhookRouter(), inbox=inbox)
        app = web.Application()
        app.router.add_get("/readyz", make_readiness_handler(pipeline, timeout=1.0))
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/readyz"
        try:
            async with ClientSession() as http:
                async with http.get(url) as up:
                    assert up.status == 200
                postgres_server.stop(remove=False)
                async with http.get(url) as down:
                    assert down.status == 503
                    assert (await down.json())["checks"]["inbox"] != "ok"
        finally:
            await runner.cleanup()
            await connector.aclose()


async def test_asgi_readiness_app_answers_200_with_a_working_inbox(tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": "GET", "path": "/readyz", "headers": []}
    with WebhookInbox(tmp_path / "asgi.db") as inbox:
        pipeline = WebhookPipeline(WebhookVerifier(SECRET), WebhookRouter(), inbox=inbox)
        await ReadinessApp(pipeline)(scope, receive, send)
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"]) == {"status": "ready", "checks": {"inbox": "ok"}}


async def test_a_postgres_duplicate_guard_is_the_plain_receivers_readiness(
    postgres_dsn: str,
) -> None:
    store = PostgresIdempotencyStore(postgres_dsn)
    try:
        pipeline = WebhookPipeline(WebhookVerifier(SECRET), WebhookRouter(), store=store)
        found = await pipeline.readiness()
    finally:
        await store.aclose()
    assert dict(found.checks) == {"idempotency_store": "ok"}
