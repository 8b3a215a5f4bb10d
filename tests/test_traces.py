"""Spans across the webhook gap (inbox dispatch, handlers, ``job.wait()``, onboarding
rows) and the link from the span handling ``avatar.ready`` to the span of the call
that created the avatar, in one process and across a PostgreSQL event hub; plus
the onboarding metrics of the same run."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from avaturn_async import AvaturnClient, EventHub
from avaturn_async import _traces as traces
from avaturn_async.batch import Manifest, OnboardSettings, onboard
from avaturn_async.batch import write_sample_manifest as write_manifest
from avaturn_async.postgres import PostgresEventHub
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import AvaturnEmulator, make_render_ready, make_webhook_secret
from avaturn_async.webhooks import (
    UnknownEvent,
    WebhookInbox,
    WebhookPipeline,
    WebhookRouter,
    WebhookVerifier,
)
from avaturn_async.webhooks.aiohttp import serve_webhooks
from tests.inbox_support import FakeClock, deliver, dispatch
from tests.otel_support import metric_reader, points_of, span_exporter, spans_named, total

FAST: dict[str, Any] = {"processing_delay": 0.01, "export_delay": 0.01, "webhook_retry_delay": 0.01}


@pytest.fixture(autouse=True)
def spans() -> None:
    span_exporter().clear()
    metric_reader()


@asynccontextmanager
async def with_webhooks() -> AsyncIterator[tuple[AvaturnEmulator, AvaturnClient]]:
    """An emulator whose signed webhooks feed the client's hub through a real receiver."""
    hub = EventHub()
    router = WebhookRouter()
    hub.attach(router)
    secret = make_webhook_secret()
    async with (
        serve_webhooks(WebhookPipeline(WebhookVerifier(secret), router)) as server,
        AvaturnEmulator(webhook_url=server.url, webhook_secret=secret, **FAST) as emu,
        AvaturnClient(api_key=emu.api_key, base_url=emu.base_url, event_hub=hub) as client,
    ):
        yield emu, client


def parent_of(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


async def test_inbox_dispatch_is_a_span_with_the_router_and_handler_spans_inside(
    tmp_path: Path,
) -> None:
    router = WebhookRouter()

    @router.on_any
    async def on_render(event: object) -> None:
        return None

    with WebhookInbox(tmp_path / "inbox.db", now=FakeClock()) as inbox:
        await deliver(inbox, make_render_ready(), msg_id="traced")
        await dispatch(inbox, router)
    (dispatched,) = spans_named("avaturn inbox dispatch")
    (routed,) = spans_named("avaturn webhook render.ready")
    (handled,) = [s for s in span_exporter().get_finished_spans() if "on_render" in s.name]
    assert dispatched.kind is SpanKind.CONSUMER
    assert dispatched.attributes is not None
    assert dispatched.attributes["avaturn.inbox.attempt"] == 1
    assert parent_of(routed) == dispatched.context.span_id
    assert parent_of(handled) == routed.context.span_id


async def test_avatar_ready_span_links_to_the_create_call_and_wait_is_a_span() -> None:
    frontal, side_1, side_2 = sample_photo_paths()
    async with with_webhooks() as (_, client):
        user = await client.users.create()
        job = await client.avatars.create_from_photos(
            user.id, frontal=frontal, side_1=side_1, side_2=side_2, body_type="male"
        )
        with anyio.fail_after(10):
            await job.wait(poll_interval=30)
    (created,) = spans_named("avaturn avatars.create")
    (handled,) = spans_named("avaturn webhook avatar.ready")
    (waited,) = spans_named("avaturn job.wait")
    assert [link.context.span_id for link in handled.links] == [created.context.span_id]
    assert waited.attributes == {"avaturn.job.kind": "avatar", "avaturn.job.id": job.avatar_id}


async def test_an_origin_travels_to_another_hub_through_postgres(postgres_dsn: str) -> None:
    async with PostgresEventHub(postgres_dsn) as sender, PostgresEventHub(postgres_dsn) as other:
        arrived: list[object] = []
        other.postgres.connect(arrived.append)  # what reaches the other hub, from the table
        with trace.get_tracer("test").start_as_current_span("the creating call") as creating:
            traces.remember_origin("avatar-far-away")
        carried = traces.origin_of("avatar-far-away")
        assert carried is not None
        await sender.channel.send(UnknownEvent(event=traces.ORIGIN_EVENT, raw=carried))
        with anyio.fail_after(10):
            while not arrived:  # noqa: ASYNC110 (rows in a database)
                await anyio.sleep(0.02)
    traces._origins.clear()  # as in another process: only what the hub carried is known
    (event,) = arrived
    assert isinstance(event, UnknownEvent)
    EventHub().deliver(event)  # what the other process's hub does with it
    assert traces.origin_of("avatar-far-away") == carried
    assert carried["traceparent"].split("-")[1:3] == [
        f"{creating.get_span_context().trace_id:032x}",
        f"{creating.get_span_context().span_id:016x}",
    ]


def _collect_in_thread(found: list[Any]) -> threading.Thread:
    """Collect once from another thread (as a Prometheus scrape does) into ``found``."""

    def run() -> None:
        found.append(metric_reader().get_metrics_data())

    return threading.Thread(target=run)


async def test_each_onboarding_row_is_a_span_and_counted(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, 6)
    finished = points_of(metric_reader().get_metrics_data(), "avaturn.onboard.rows.finished")
    ready_before = total(finished, avaturn__onboard__outcome="ready")
    scraped: list[Any] = []
    collector = _collect_in_thread(scraped)

    def progress(summary: Any) -> None:
        if summary.ready == 3 and not collector.is_alive() and not scraped:
            collector.start()  # mid-run: the journal gauge is read on this loop

    async with with_webhooks() as (_, client):
        with Manifest(manifest) as rows:
            await onboard(client, rows, journal=tmp_path / "j.db",
                          settings=OnboardSettings(concurrency=2), progress=progress)  # fmt: skip
    await anyio.to_thread.run_sync(collector.join, 10)
    rows_spans = spans_named("avaturn onboard row")
    assert len(rows_spans) == 6
    finished = points_of(metric_reader().get_metrics_data(), "avaturn.onboard.rows.finished")
    assert total(finished, avaturn__onboard__outcome="ready") == ready_before + 6
    by_state = points_of(scraped[0], "avaturn.onboard.rows")
    journal = str(tmp_path / "j.db")
    counted = sum(p.value for attrs, p in by_state if attrs["avaturn.journal"] == journal)
    assert counted == 6  # every row, each in one state
