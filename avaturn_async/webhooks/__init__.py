"""Receive Avaturn's webhooks: verify, parse into typed events, dedupe and route.

::

    from avaturn_async.webhooks import RenderReady, WebhookRouter, WebhookVerifier

    verifier = WebhookVerifier("whsec_...")            # or WebhookVerifier.shared_token("...")
    router = WebhookRouter()

    @router.on(RenderReady)
    async def on_render(event: RenderReady) -> None:
        if event.succeeded:
            ...  # download event.render_url now: it expires

    pipeline = WebhookPipeline(verifier, router)
    # then serve with avaturn_async.webhooks.aiohttp.make_handler(pipeline)
    # or avaturn_async.webhooks.asgi.WebhookApp(pipeline),
    # or by hand: event = verifier.verify_and_parse(raw_body, headers)

    # To answer at once and dispatch later, with retries and a dead letter:
    inbox = WebhookInbox("webhooks.db")   # WebhookPipeline(verifier, router, inbox=inbox)
    async with inbox.worker(router): ...

Server adapters live in the submodules ``aiohttp`` and ``asgi``. Importing this
package loads neither aiohttp nor sqlite3 (the inbox loads on first use), so a
serverless receiver starts fast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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
from .._lazy import lazy_exports as _lazy_exports
from ._boundary import VerificationFailure, Verifier
from ._dedupe import IdempotencyStore, InMemoryIdempotencyStore, idempotency_key
from ._pipeline import DEFAULT_READ_TIMEOUT, PipelineResponse, WebhookPipeline
from ._router import DispatchResult, HandlerFailure, WebhookRouter
from ._token import SharedTokenVerifier
from ._verifier import WebhookVerifier

# The durable inbox loads sqlite3: only when one of its names is first used.
if TYPE_CHECKING:
    from ._inbox import Backoff, WebhookInbox, exponential_backoff
    from ._inbox_group import GroupCommit
    from ._inbox_sqlite_store import SQLiteInboxStore
    from ._inbox_store import (
        LEASE_LOST,
        Claimed,
        Delivery,
        InboxError,
        InboxRecord,
        InboxStatus,
        InboxStore,
    )

# Declared, so type checkers read one type for the module's __getattr__ and __dir__.
__getattr__: Callable[[str], Any]
__dir__: Callable[[], list[str]]
__getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "._inbox": ("Backoff", "WebhookInbox", "exponential_backoff"),
        "._inbox_group": ("GroupCommit",),
        "._inbox_sqlite_store": ("SQLiteInboxStore",),
        "._inbox_store": (
            "LEASE_LOST",
            "Claimed",
            "Delivery",
            "InboxError",
            "InboxRecord",
            "InboxStatus",
            "InboxStore",
        ),
    },
)

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
