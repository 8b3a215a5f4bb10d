"""The receive pipeline shared by every server adapter.

verify → parse → dedupe → confirm (opt-in) → dispatch, and the mapping of each
outcome to an HTTP answer. With an ``inbox`` (:class:`WebhookInbox`), the last two steps become
"store": the delivery is committed to the inbox, deduped by it, and dispatched
later by the inbox's worker. Adapters only read the request (streaming, within
``max_body_size``) and write the :class:`PipelineResponse` back; use this class
directly to receive webhooks in a framework without an adapter (Flask, Django, ...).

Status codes:

==========  ===================================================================
202         with an inbox: stored for dispatch, or a duplicate already stored
204         processed, a duplicate already processed (acknowledged, not re-run),
            or contradicted by the API (``confirm``: acknowledged, never dispatched)
400         malformed body or ``Content-Length`` (the sender should not retry)
401         signature, timestamp or token rejected
405         not a POST (``Allow: POST``)
408         the body did not arrive within ``read_timeout`` (connection closed)
413         body over ``max_body_size``, answered from ``Content-Length`` when
            declared (before any ``100 Continue``)
422         with an inbox: a verified delivery its database cannot store (a NUL
            character, for PostgreSQL); the others are stored as usual
500         a handler raised (``fail_on_handler_error=True``, the default): the
            dedupe key is released so the sender's redelivery is processed again
503         the idempotency store (or the inbox) failed, or ``confirm`` could not
            reach the API: nothing was dispatched or stored, retry later
==========  ===================================================================

Bad input never yields 500. Answering 500 on a handler failure turns Avaturn's
redelivery into a retry mechanism; it means a handler that already succeeded
for this event runs again on the retry, so handlers must be idempotent (they
must be anyway: delivery is at least once). Set ``fail_on_handler_error=False``
to acknowledge such deliveries with 204 and rely on ``on_handler_error`` instead.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .. import _metrics
from .._errors import (
    ConfigurationError,
    WebhookParseError,
    WebhookPayloadTooLargeError,
    WebhookVerificationError,
)
from .._events import DEFAULT_MAX_BODY_SIZE, Event, parse_event
from .._health import DEFAULT_READY_TIMEOUT, Readiness, check_readiness
from ._boundary import ID_HEADERS, Verifier, body_bytes, header_value
from ._confirm import EventConfirmer
from ._dedupe import IdempotencyStore, InMemoryIdempotencyStore, idempotency_key
from ._log import webhook_logger
from ._router import DispatchResult, WebhookRouter

if TYPE_CHECKING:  # the inbox (and sqlite3) load only when an inbox is used
    from contextlib import AbstractAsyncContextManager

    from .inbox import WebhookInbox

__all__ = ["DEFAULT_READ_TIMEOUT", "PipelineResponse", "WebhookPipeline"]

DEFAULT_READ_TIMEOUT = 10.0
"""Seconds a sender gets to deliver a whole body; Avaturn's events arrive in milliseconds."""


_JSON = (("content-type", "application/json"),)
_CLOSE = (*_JSON, ("connection", "close"))


@attrs.frozen(kw_only=True)
class PipelineResponse:
    """What to answer, and what happened (for logging or metrics)."""

    status: int
    outcome: str
    """``processed``, ``stored`` (in the inbox), ``duplicate``, ``contradicted`` (by the
    API: acknowledged, not dispatched), ``handler_failed``, ``store_failed``,
    ``unstorable``, ``confirmation_unavailable``, ``too_large``, ``method_not_allowed``,
    ``malformed_payload``, or a ``VerificationFailure`` value."""
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    event: Event | None = None
    dispatch: DispatchResult | None = None


def _counted(answer: PipelineResponse) -> PipelineResponse:
    """``answer``, counted in ``avaturn.webhook.deliveries`` (by outcome and status)."""
    _metrics.count_delivery(answer.outcome, answer.status)
    return answer


def _error(status: int, outcome: str, message: str, **extra: str) -> PipelineResponse:
    body = json.dumps({"error": outcome, "message": message, **extra}).encode()
    return PipelineResponse(status=status, outcome=outcome, body=body, headers=_JSON)


class WebhookPipeline:
    """Verify, parse, dedupe and dispatch one delivery; map the outcome to a status.

    The one configured object every adapter takes: ``make_handler(pipeline)``,
    ``make_app(pipeline)``, ``serve_webhooks(pipeline)``, ``WebhookApp(pipeline)``.

    ``verifier`` is a :class:`WebhookVerifier` or a :class:`SharedTokenVerifier`.
    ``dedupe=True`` (the default) guards against redeliveries with ``store``,
    an :class:`InMemoryIdempotencyStore` unless given.

    ``confirm`` (an :class:`EventConfirmer`) checks each event against the API
    before it is dispatched: a contradicted event is acknowledged (204) and never
    dispatched; when the API cannot be reached the answer is 503 and the sender
    retries. With ``confirm``, ``verifier`` may be ``None``: unsigned deliveries
    are then accepted from anyone and trusted only once confirmed (an explicit
    choice; a token in the URL as well is better). Without a verifier the
    ``webhook-id`` header, which anyone could set, is ignored by the duplicate
    guard: the body's hash is the key. With neither a verifier nor ``confirm``,
    construction is a :class:`ConfigurationError`.

    With ``inbox``, verified deliveries are stored there and answered 202;
    ``router`` is not called (pass it to the inbox's worker), and the inbox is
    the idempotency store: ``store`` and ``dedupe=False`` are refused. With an
    inbox, ``confirm`` runs when the inbox's worker dispatches (start it with
    :meth:`worker`), so a stored delivery is confirmed even after a crash.

    ``read_timeout`` bounds, in seconds, how long adapters wait for a whole
    body (a sender trickling bytes gets 408 and a closed connection); ``None``
    waits forever.
    """

    def __init__(
        self,
        verifier: Verifier | None,
        router: WebhookRouter,
        *,
        store: IdempotencyStore | None = None,
        dedupe: bool = True,
        fail_on_handler_error: bool = True,
        inbox: WebhookInbox | None = None,
        read_timeout: float | None = DEFAULT_READ_TIMEOUT,
        confirm: EventConfirmer | None = None,
    ) -> None:
        if verifier is None and confirm is None:
            raise ConfigurationError(
                "a WebhookPipeline needs a verifier, or confirm=EventConfirmer(client, ...) "
                "to accept unsigned deliveries once the API confirms them"
            )
        if confirm is not None and not isinstance(confirm, EventConfirmer):
            raise ConfigurationError("confirm must be an EventConfirmer(client, url_hosts=[...])")
        if inbox is not None and (store is not None or not dedupe):
            raise ConfigurationError("an inbox is its own idempotency store: drop store/dedupe")
        if read_timeout is not None and not read_timeout > 0:
            raise ConfigurationError("read_timeout must be positive (or None for no limit)")
        self.verifier = verifier
        self.router = router
        self.inbox = inbox
        self.store: IdempotencyStore | None = None
        if dedupe and inbox is None:
            self.store = store if store is not None else InMemoryIdempotencyStore()
        self.fail_on_handler_error = fail_on_handler_error
        self.read_timeout = read_timeout
        self.confirm = confirm

    @classmethod
    def of(
        cls,
        pipeline_or_verifier: WebhookPipeline | Verifier | None,
        router: WebhookRouter | None = None,
        **options: Any,
    ) -> WebhookPipeline:
        """``pipeline_or_verifier`` if it is a pipeline, else a new one from the arguments.

        How the adapters take a pipeline (``make_handler(pipeline)``) and, for one more
        release, the deprecated ``make_handler(verifier, router, inbox=..., ...)``,
        which warns (``DeprecationWarning``, pointing at the adapter's caller).
        """
        if isinstance(pipeline_or_verifier, WebhookPipeline):
            if router is not None or options:
                raise ConfigurationError(
                    "pass a WebhookPipeline alone, or a verifier and a router with options"
                )
            return pipeline_or_verifier
        warnings.warn(
            "passing a verifier and a router to a webhook adapter is deprecated: pass "
            "WebhookPipeline(verifier, router, ...) instead",
            DeprecationWarning,
            stacklevel=3,
        )
        if router is None:
            raise ConfigurationError(
                "a verifier needs a router: (verifier, router) or WebhookPipeline(verifier, router)"
            )
        return cls(pipeline_or_verifier, router, **options)

    def __repr__(self) -> str:
        where = f"inbox={self.inbox!r}" if self.inbox is not None else f"store={self.store!r}"
        confirm = f", confirm={self.confirm!r}" if self.confirm is not None else ""
        return f"WebhookPipeline({self.verifier!r}, {self.router!r}, {where}{confirm})"

    def worker(self, **options: Any) -> AbstractAsyncContextManager[None]:
        """Run the inbox's worker with this pipeline's router and ``confirm``.

        ``async with pipeline.worker(poll_interval=...):`` is
        ``inbox.worker(pipeline.router, confirm=pipeline.confirm, ...)``; a worker in
        another process passes the same ``confirm`` to ``inbox.worker`` itself.
        """
        if self.inbox is None:
            raise ConfigurationError("worker() needs a pipeline with an inbox")
        return self.inbox.worker(self.router, confirm=self.confirm, **options)

    async def readiness(self, *, timeout: float = DEFAULT_READY_TIMEOUT) -> Readiness:
        """Whether this receiver can store deliveries now: its inbox (or its idempotency
        store, when it has a ``ping``) answers a trivial query within ``timeout``
        seconds. For a readiness probe: ``make_readiness_handler`` (aiohttp) and
        ``ReadinessApp`` (ASGI) answer 200 or 503 with it. Never raises."""
        checks: dict[str, Callable[[], Awaitable[object]]] = {}
        if self.inbox is not None:
            checks["inbox"] = self.inbox.ping
        elif self.store is not None and callable(getattr(self.store, "ping", None)):
            checks["idempotency_store"] = self.store.ping  # type: ignore[attr-defined]
        return await check_readiness(checks, timeout=timeout)

    @property
    def read_deadline(self) -> float:
        """``read_timeout`` for ``anyio.move_on_after``: ``math.inf`` when unbounded."""
        return math.inf if self.read_timeout is None else self.read_timeout

    @property
    def max_body_size(self) -> int:
        """Adapters stop reading a body past this many bytes."""
        verifier = self.verifier
        return DEFAULT_MAX_BODY_SIZE if verifier is None else verifier.max_body_size

    # -- checks made before the body is read -----------------------------------------

    def check_method(self, method: str) -> PipelineResponse | None:
        """A 405 answer unless ``method`` is POST."""
        if method.upper() == "POST":
            return None
        refused = _error(405, "method_not_allowed", "webhooks must be POSTed")
        return _counted(attrs.evolve(refused, headers=(*_JSON, ("allow", "POST"))))

    def check_content_length(self, value: str | None) -> PipelineResponse | None:
        """A 400 or 413 answer for a bad or too large declared ``Content-Length``."""
        if value is None:
            return None
        if not (value.isascii() and value.isdigit()):
            return _counted(_error(400, "malformed_payload", "invalid Content-Length header"))
        # The length check first keeps int() away from absurdly long digit strings.
        if len(value) > 18 or int(value) > self.max_body_size:
            return self.too_large()
        return None

    def too_large(self) -> PipelineResponse:
        """The 413 answer, for adapters that stopped reading past ``max_body_size``."""
        return _counted(self._too_large())

    def _too_large(self) -> PipelineResponse:
        return _error(413, "too_large", f"webhook body exceeds {self.max_body_size} bytes")

    def timed_out(self) -> PipelineResponse:
        """The 408 answer, for adapters whose body read passed ``read_timeout``."""
        message = f"webhook body not received within {self.read_timeout} s"
        return _counted(attrs.evolve(_error(408, "timeout", message), headers=_CLOSE))

    # -- the pipeline ------------------------------------------------------------------

    async def handle(
        self, body: bytes, headers: Mapping[str, str], *, query: Mapping[str, str] | None = None
    ) -> PipelineResponse:
        """Process one delivery's raw ``body``; never raises for bad input.

        Cancellation propagates (after releasing the dedupe key, so that a
        redelivery is processed). Each answer is counted in the
        ``avaturn.webhook.deliveries`` metric.
        """
        return _counted(await self._handle(body, headers, query))

    async def _handle(
        self, body: bytes, headers: Mapping[str, str], query: Mapping[str, str] | None
    ) -> PipelineResponse:
        verifier = self.verifier
        try:
            if verifier is not None:
                event = verifier.verify_and_parse(body, headers, query=query)
            else:
                event = parse_event(body_bytes(body), max_body_size=DEFAULT_MAX_BODY_SIZE)
        except WebhookPayloadTooLargeError:
            return self._too_large()
        except WebhookVerificationError as exc:
            webhook_logger().info("rejected webhook: %s", exc.reason)
            return _error(401, exc.reason, str(exc))
        except WebhookParseError as exc:
            webhook_logger().info("malformed webhook at %s", exc.path)
            return _error(400, "malformed_payload", str(exc), path=exc.path)
        if self.inbox is not None:
            # Unauthenticated headers are not kept: a forged webhook-id could
            # occupy the key of a genuine delivery.
            kept = headers if verifier is not None else {}
            return await self._store_in(self.inbox, body, kept, event)
        store = self.store
        key: str | None = None
        if store is not None:
            delivery_id = header_value(headers, ID_HEADERS) if verifier is not None else None
            key = idempotency_key(delivery_id, body)
            early = await self._claim(store, key, event)
            if early is not None:
                return early
        if self.confirm is not None:
            early = await self._confirm(self.confirm, event, store, key)
            if early is not None:
                return early
        return await self._dispatch(event, store, key)

    async def _store_in(
        self, inbox: WebhookInbox, body: bytes, headers: Mapping[str, str], event: Event
    ) -> PipelineResponse:
        """Commit the delivery to the inbox; only then is it acknowledged."""
        from .inbox import UnstorableDeliveryError

        # A cancellation is no Exception (Python 3.8+): it propagates through these.
        try:
            new_id = await inbox.add(body, headers, event)
        except UnstorableDeliveryError as exc:
            webhook_logger().warning("webhook delivery refused by the inbox: %s", exc)
            return _error(422, "unstorable", str(exc))
        except Exception:
            webhook_logger().exception("webhook inbox failed to store a delivery")
            return _error(503, "store_failed", "webhook inbox unavailable, retry later")
        if new_id is None:
            webhook_logger().debug("duplicate webhook delivery already in the inbox")
            return PipelineResponse(status=202, outcome="duplicate", event=event)
        return PipelineResponse(status=202, outcome="stored", event=event)

    async def _claim(
        self, store: IdempotencyStore, key: str, event: Event
    ) -> PipelineResponse | None:
        """``None`` if this delivery should be dispatched, else the answer to give."""
        try:
            seen = await store.seen_or_mark(key)
        except Exception:
            webhook_logger().exception("webhook idempotency store failed")
            return _error(503, "store_failed", "idempotency store unavailable, retry later")
        if seen:
            webhook_logger().debug("duplicate webhook delivery acknowledged")
            return PipelineResponse(status=204, outcome="duplicate", event=event)
        return None

    async def _confirm(
        self, confirm: EventConfirmer, event: Event, store: IdempotencyStore | None, key: str | None
    ) -> PipelineResponse | None:
        """``None`` if the API confirms ``event``, else the answer to give (204 or 503)."""
        try:
            verdict = await confirm.confirm(event)
        except BaseException as exc:
            await _release(store, key)
            if not isinstance(exc, Exception):  # a cancellation too
                raise
            webhook_logger().warning(
                "could not confirm a %s webhook with the API; answering 503 so that the "
                "sender retries",
                event.event,
                exc_info=exc,
            )
            return _error(503, "confirmation_unavailable", "could not confirm, retry later")
        if verdict.confirmed:
            return None
        # Released: a forged copy must not hold the key of a genuine delivery to come.
        await _release(store, key)
        return PipelineResponse(status=204, outcome="contradicted", event=event)

    async def _dispatch(
        self, event: Event, store: IdempotencyStore | None, key: str | None
    ) -> PipelineResponse:
        try:
            result = await self.router.dispatch(event)
        except BaseException as exc:
            await _release(store, key)
            if not isinstance(exc, Exception):  # a cancellation too
                raise
            webhook_logger().exception("webhook dispatch failed for %s event", event.event)
            return _error(500, "handler_failed", "webhook dispatch failed")
        if result.ok or not self.fail_on_handler_error:
            return PipelineResponse(status=204, outcome="processed", event=event, dispatch=result)
        await _release(store, key)
        response = _error(500, "handler_failed", f"{len(result.failures)} handler(s) failed")
        return attrs.evolve(response, event=event, dispatch=result)


async def _release(store: IdempotencyStore | None, key: str | None) -> None:
    """Un-mark ``key`` so that the sender's redelivery is processed, not dropped."""
    if store is None or key is None:
        return
    import anyio

    # Shielded: this runs while a cancellation may be propagating, and the key
    # must still be released.
    with anyio.CancelScope(shield=True):
        try:
            await store.unmark(key)
        except Exception:
            webhook_logger().exception("webhook idempotency store failed to release a key")
