"""Receive Avaturn's webhooks: verify, parse into typed events, dedupe and route.

::

    from avaturn_async.webhooks import RenderReady, WebhookRouter, WebhookVerifier

    verifier = WebhookVerifier("whsec_...")            # or WebhookVerifier.shared_token("...")
    router = WebhookRouter()

    @router.on(RenderReady)
    async def on_render(event: RenderReady) -> None:
        if event.succeeded:
            ...  # download event.render_url now: it expires

    # then serve with avaturn_async.webhooks.aiohttp.make_handler(verifier, router)
    # or avaturn_async.webhooks.asgi.WebhookApp(verifier, router),
    # or by hand: event = verifier.verify_and_parse(raw_body, headers)

    # To answer at once and dispatch later, with retries and a dead letter:
    inbox = WebhookInbox("webhooks.db")   # make_handler(..., inbox=inbox)
    async with inbox.worker(router): ...

Server adapters live in the submodules ``aiohttp`` and ``asgi``.
"""

from __future__ import annotations

from .._errors import (
    WebhookError,
    WebhookInputError,
    WebhookParseError,
    WebhookPayloadTooLargeError,
    WebhookVerificationError,
)
from .._events import (
    DEFAULT_MAX_BODY_SIZE,
    AvatarReady,
    Event,
    EventStatus,
    ExportReady,
    KnownEvent,
    RenderReady,
    UnknownEvent,
    event_to_dict,
    parse_event,
)
from ._boundary import VerificationFailure, Verifier
from ._dedupe import IdempotencyStore, InMemoryIdempotencyStore, idempotency_key
from ._inbox import Backoff, WebhookInbox, exponential_backoff
from ._inbox_group import GroupCommit
from ._inbox_sqlite import SQLiteInboxStore
from ._inbox_store import (
    LEASE_LOST,
    Claimed,
    Delivery,
    InboxError,
    InboxRecord,
    InboxStatus,
    InboxStore,
)
from ._pipeline import DEFAULT_READ_TIMEOUT, PipelineResponse, WebhookPipeline
from ._router import DispatchResult, HandlerFailure, WebhookRouter
from ._token import SharedTokenVerifier
from ._verifier import WebhookVerifier

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_READ_TIMEOUT",
    "LEASE_LOST",
    "AvatarReady",
    "Backoff",
    "DispatchResult",
    "Event",
    "EventStatus",
    "ExportReady",
    "Claimed",
    "Delivery",
    "GroupCommit",
    "HandlerFailure",
    "IdempotencyStore",
    "InboxError",
    "InboxRecord",
    "InboxStatus",
    "InboxStore",
    "InMemoryIdempotencyStore",
    "KnownEvent",
    "PipelineResponse",
    "RenderReady",
    "SQLiteInboxStore",
    "SharedTokenVerifier",
    "UnknownEvent",
    "VerificationFailure",
    "Verifier",
    "WebhookError",
    "WebhookInputError",
    "WebhookInbox",
    "WebhookParseError",
    "WebhookPayloadTooLargeError",
    "WebhookPipeline",
    "WebhookRouter",
    "WebhookVerificationError",
    "WebhookVerifier",
    "event_to_dict",
    "exponential_backoff",
    "idempotency_key",
    "parse_event",
]
