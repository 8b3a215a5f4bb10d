"""Helpers shared by the inbox tests and the inbox contract suite."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from avaturn_async.testing import make_render_ready, make_webhook_secret, sign_webhook
from avaturn_async.webhooks import (
    Event,
    InboxRecord,
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
