"""Helpers shared by the inbox tests and the inbox contract suite."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from avaturn_async.postgres import PostgresInbox, is_postgres_dsn
from avaturn_async.testing import make_render_ready, make_webhook_secret, sign_webhook
from avaturn_async.webhooks import (
    Event,
    InboxRecord,
    InboxStatus,
    PipelineResponse,
    WebhookInbox,
    WebhookPipeline,
    WebhookRouter,
    WebhookVerifier,
)

SECRET = make_webhook_secret()
BACKOFF = 10.0
LEASE = 30.0


class FakeClock:
    """Wall-clock seconds that only move when told to."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def recording_router(
    failures: int = 0, error: Exception | None = None
) -> tuple[WebhookRouter, list[Event]]:
    """A router whose one handler records each call and raises on the first ``failures``."""
    router, calls = WebhookRouter(), []

    @router.on_any
    async def record(event: Event) -> None:
        calls.append(event)
        if len(calls) <= failures:
            raise error or RuntimeError("boom")

    return router, calls


async def deliver(
    inbox: WebhookInbox, event: Event | None = None, *, msg_id: str | None = None
) -> tuple[PipelineResponse, Event]:
    """Receive one signed delivery through a pipeline that stores into ``inbox``."""
    event = event or make_render_ready()
    body, headers = sign_webhook(event, SECRET, msg_id=msg_id)
    pipeline = WebhookPipeline(WebhookVerifier(SECRET), WebhookRouter(), inbox=inbox)
    return await pipeline.handle(body, headers), event


async def dispatch(inbox: WebhookInbox, router: WebhookRouter, **options: Any) -> int:
    """One worker pass with the test's backoff and lease."""
    options = {"backoff": lambda attempt: BACKOFF, "lease": LEASE, **options}
    return await inbox.dispatch_due(router, **options)


async def only_record(inbox: WebhookInbox) -> InboxRecord:
    (record,) = await inbox.list()
    return record


async def eventually(check: Callable[[], Awaitable[bool]], *, deadline: float = 10.0) -> None:
    """Wait until ``check()`` is true, failing after ``deadline`` seconds."""
    with anyio.fail_after(deadline):
        while not await check():  # noqa: ASYNC110 (the state lives in a database)
            await anyio.sleep(0.02)


def open_inbox(database: str | Path) -> WebhookInbox:
    """A ``PostgresInbox`` for a DSN, else a SQLite ``WebhookInbox``."""
    if isinstance(database, str) and is_postgres_dsn(database):
        return PostgresInbox(database)
    return WebhookInbox(database)


def make_inbox(
    database: str | Path, *, done: int = 0, dead: int = 0, pending: int = 0
) -> dict[str, list[int]]:
    """An inbox holding events in each status; their ids by status."""

    def failing(event: object) -> None:
        raise RuntimeError("handler down")

    async def fill() -> dict[str, list[int]]:
        ok, broken = WebhookRouter(), WebhookRouter()
        ok.on_any(lambda event: None)
        broken.on_any(failing)
        opened = open_inbox(database)
        async with opened as inbox:
            pipeline = WebhookPipeline(WebhookVerifier(SECRET), ok, inbox=inbox)
            for router, count in ((ok, done), (broken, dead), (None, pending)):
                for _ in range(count):
                    await pipeline.handle(*sign_webhook(make_render_ready(), SECRET))
                    if router is not None:
                        await inbox.dispatch_due(router, max_attempts=1)
            records = await inbox.list(limit=1000)
        return {s.value: sorted(r.id for r in records if r.status is s) for s in InboxStatus}

    return anyio.run(fill)
