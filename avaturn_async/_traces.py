"""Spans of the SDK's own work, and links across the webhook gap.

The client's attempt spans are ``_observe``'s. Here: the spans of work that is not
one HTTP call (an inbox dispatch, a webhook handler, ``job.wait()``, an
onboarding row), made only once the application installs a tracer provider (the
check costs one time comparison; the provider is looked up once a second).

Across the webhook gap: the avatar a call creates finishes minutes later, in a
webhook that may reach another process. The span of the ``avatars.create`` call
is remembered by avatar id (:func:`remember_origin`), and the span that handles
the avatar's ``avatar.ready`` links to it (:func:`links_for`). Processes that
share an event hub share these origins through it (``EventHub.share_origin``
sends an :data:`ORIGIN_EVENT`, which hubs read with :func:`learn_origin`).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from ._events import AvatarReady, Event

__all__ = [
    "ORIGIN_EVENT",
    "learn_origin",
    "links_for",
    "note_client_span",
    "origin_of",
    "remember_origin",
    "span",
    "tracing_installed",
]

ORIGIN_EVENT = "avaturn.trace_origin"
"""The event type, unknown to Avaturn, that carries an origin between event hubs."""
_REMEMBER = 10_000  # origins kept, newest last
_origins: OrderedDict[str, Any] = OrderedDict()
_last_client_span: ContextVar[Any] = ContextVar("avaturn_last_client_span", default=None)
_state = {"on": False, "checked_at": -math.inf}


def tracing_installed() -> bool:
    """Whether the application installed a tracer provider (looked up once a second)."""
    if _state["on"]:
        return True
    now = time.monotonic()
    if now - _state["checked_at"] < 1.0:
        return False
    _state["checked_at"] = now
    try:
        from opentelemetry import trace
    except ImportError:
        return False
    _state["on"] = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    return bool(_state["on"])


@contextmanager
def span(
    name: str,
    attributes: Mapping[str, str | int] | None = None,
    *,
    consumer: bool = False,
    links: list[Any] | None = None,
) -> Iterator[Any]:
    """A span for the block (``None`` while no tracer provider is installed)."""
    if not tracing_installed():
        yield None
        return
    from opentelemetry import trace

    kind = trace.SpanKind.CONSUMER if consumer else trace.SpanKind.INTERNAL
    tracer = trace.get_tracer("avaturn_async")
    with tracer.start_as_current_span(name, kind=kind, attributes=attributes, links=links) as s:
        yield s


def note_client_span(span_context: Any) -> None:
    """The client's attempt span that just got a 2xx answer (``_observe.traced``)."""
    _last_client_span.set(span_context)


def _store(avatar_id: str, span_context: Any) -> None:
    _origins[avatar_id] = span_context
    _origins.move_to_end(avatar_id)
    while len(_origins) > _REMEMBER:
        _origins.popitem(last=False)


def remember_origin(avatar_id: str) -> Any:
    """Remember the span of the call that just created ``avatar_id``: its last client
    span, else the caller's current span. Returns it (``None``: no span to remember)."""
    if not tracing_installed():
        return None
    from opentelemetry import trace

    context = _last_client_span.get()
    if context is None or not context.is_valid:
        context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    _store(avatar_id, context)
    return context


def origin_of(avatar_id: str) -> dict[str, str] | None:
    """What an :data:`ORIGIN_EVENT` carries for ``avatar_id``, if its origin is known."""
    context = _origins.get(avatar_id)
    if context is None:
        return None
    flags = int(context.trace_flags)
    parent = f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags:02x}"
    return {"avatar_id": avatar_id, "traceparent": parent}


def learn_origin(raw: Mapping[str, Any]) -> None:
    """Remember the origin an :data:`ORIGIN_EVENT` body carries (malformed: ignored)."""
    avatar_id, parent = raw.get("avatar_id"), raw.get("traceparent")
    if not isinstance(avatar_id, str) or not isinstance(parent, str):
        return
    try:
        from opentelemetry import trace

        version, trace_id, span_id, flags = parent.split("-")
        context = trace.SpanContext(
            trace_id=int(trace_id, 16),
            span_id=int(span_id, 16),
            is_remote=True,
            trace_flags=trace.TraceFlags(int(flags, 16)),
        )
    except (ImportError, ValueError):
        return
    if context.is_valid and version == "00":
        _store(avatar_id, context)


def links_for(event: Event) -> list[Any] | None:
    """Links from the span handling ``event`` to the span that created its avatar."""
    context = _origins.get(event.avatar_id) if isinstance(event, AvatarReady) else None
    if context is None:
        return None
    from opentelemetry import trace

    return [trace.Link(context, {"avaturn.link": "created_by"})]
