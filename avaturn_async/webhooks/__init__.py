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

from .._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from .._errors import WebhookError as WebhookError
    from .._errors import WebhookInputError as WebhookInputError
    from .._errors import WebhookParseError as WebhookParseError
    from .._errors import WebhookPayloadTooLargeError as WebhookPayloadTooLargeError
    from .._errors import WebhookVerificationError as WebhookVerificationError
    from .._events import DEFAULT_MAX_BODY_SIZE as DEFAULT_MAX_BODY_SIZE
    from .._events import AvatarReady as AvatarReady
    from .._events import Event as Event
    from .._events import EventStatus as EventStatus
    from .._events import ExportReady as ExportReady
    from .._events import KnownEvent as KnownEvent
    from .._events import RenderReady as RenderReady
    from .._events import UnknownEvent as UnknownEvent
    from .._events import event_to_dict as event_to_dict
    from .._events import parse_event as parse_event
    from .._health import DEFAULT_READY_TIMEOUT as DEFAULT_READY_TIMEOUT
    from .._health import Readiness as Readiness
    from .._health import check_readiness as check_readiness
    from ._boundary import VerificationFailure as VerificationFailure
    from ._boundary import Verifier as Verifier
    from ._confirm import Confirmation as Confirmation
    from ._confirm import ConfirmingClient as ConfirmingClient
    from ._confirm import EventConfirmer as EventConfirmer
    from ._dedupe import IdempotencyStore as IdempotencyStore
    from ._dedupe import InMemoryIdempotencyStore as InMemoryIdempotencyStore
    from ._dedupe import idempotency_key as idempotency_key
    from ._pipeline import DEFAULT_READ_TIMEOUT as DEFAULT_READ_TIMEOUT
    from ._pipeline import PipelineResponse as PipelineResponse
    from ._pipeline import WebhookPipeline as WebhookPipeline
    from ._router import DispatchResult as DispatchResult
    from ._router import HandlerFailure as HandlerFailure
    from ._router import WebhookRouter as WebhookRouter
    from ._token import SharedTokenVerifier as SharedTokenVerifier
    from ._verifier import WebhookVerifier as WebhookVerifier
    from .inbox import LEASE_LOST as LEASE_LOST
    from .inbox import Backoff as Backoff
    from .inbox import Claimed as Claimed
    from .inbox import Delivery as Delivery
    from .inbox import GroupCommit as GroupCommit
    from .inbox import InboxError as InboxError
    from .inbox import InboxRecord as InboxRecord
    from .inbox import InboxStats as InboxStats
    from .inbox import InboxStatus as InboxStatus
    from .inbox import InboxStore as InboxStore
    from .inbox import OrderBy as OrderBy
    from .inbox import SQLiteInboxStore as SQLiteInboxStore
    from .inbox import UnstorableDeliveryError as UnstorableDeliveryError
    from .inbox import WebhookInbox as WebhookInbox
    from .inbox import by_avatar as by_avatar
    from .inbox import exponential_backoff as exponential_backoff

# One line above per public name: __all__ and the lazy table are read from them.
__getattr__: Callable[[str], Any]
__dir__: Callable[[], list[str]]
__all__: list[str]
__getattr__, __dir__, __all__ = _lazy_exports(__name__, __file__)
