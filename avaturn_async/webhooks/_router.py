"""Route typed events to handlers; one failing handler never stops the others.

Handlers are plain functions or coroutine functions taking the event. By
default:

* handlers of one event run **concurrently** in an anyio task group;
  ``WebhookRouter(concurrent=False)`` runs them one after the other, in
  registration order (use it when handlers depend on each other's effects);
* **sync handlers run in a worker thread** (``anyio.to_thread.run_sync``), so a
  blocking handler (a database driver, a file download) cannot stall the event
  loop; ``sync_in_thread=False`` runs them inline on the loop, for handlers that
  are quick or not thread-safe.

A handler's exception is logged (logger ``avaturn_async.webhooks``, event type
and handler name only: event fields may hold pre-signed URLs), passed to
``on_handler_error`` and listed in the :class:`DispatchResult`. Cancellation is
never swallowed.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeAlias, TypeVar, cast, overload

import attrs

from .. import _traces
from .._errors import ConfigurationError
from .._events import Event
from ._log import webhook_logger

__all__ = ["DispatchResult", "HandlerFailure", "WebhookRouter"]


E = TypeVar("E")
R = TypeVar("R")
E2 = TypeVar("E2")
E3 = TypeVar("E3")
Matchable: TypeAlias = "type[Any] | types.UnionType | tuple[type[Any] | types.UnionType, ...]"

Handler: TypeAlias = Callable[[Any], object]
ErrorCallback: TypeAlias = Callable[["HandlerFailure"], object]


@attrs.frozen(kw_only=True)
class HandlerFailure:
    """One handler that raised while handling ``event``."""

    event: Event
    handler: Handler
    exception: Exception

    @property
    def handler_name(self) -> str:
        return _name_of(self.handler)


@attrs.frozen(kw_only=True)
class DispatchResult:
    """What :meth:`WebhookRouter.dispatch` did with one event."""

    event: Event
    handled: int
    """How many handlers ran (successfully or not)."""
    failures: tuple[HandlerFailure, ...] = ()

    @property
    def ok(self) -> bool:
        """No handler raised (also ``True`` when no handler matched)."""
        return not self.failures


def _name_of(handler: Handler) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)


def _is_async(handler: Handler) -> bool:
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - async callable objects
    )


@attrs.frozen
class _Route:
    match: Matchable
    handler: Handler
    is_async: bool


class _Registrar(Generic[E]):
    """Decorator returned by :meth:`WebhookRouter.on`; returns the handler unchanged."""

    __slots__ = ("_match", "_router")

    def __init__(self, router: WebhookRouter, match: Matchable) -> None:
        self._router = router
        self._match = match

    def __call__(self, handler: Callable[[E], R]) -> Callable[[E], R]:
        self._router.add_handler(self._match, handler)
        return handler


class WebhookRouter:
    """Maps event types to handlers.

    ::

        router = WebhookRouter()

        @router.on(RenderReady)
        async def save_render(event: RenderReady) -> None: ...

        @router.on_any
        def audit(event: Event) -> None: ...   # sync: runs in a worker thread
    """

    def __init__(
        self,
        *,
        concurrent: bool = True,
        sync_in_thread: bool = True,
        on_handler_error: ErrorCallback | None = None,
    ) -> None:
        self.concurrent = concurrent
        self.sync_in_thread = sync_in_thread
        self.on_handler_error = on_handler_error
        self._routes: list[_Route] = []

    def __repr__(self) -> str:
        return f"WebhookRouter(handlers={len(self._routes)}, concurrent={self.concurrent})"

    @overload
    def on(self, event_type: type[E], /) -> _Registrar[E]: ...
    @overload
    def on(self, first: type[E], second: type[E2], /) -> _Registrar[E | E2]: ...
    @overload
    def on(
        self, first: type[E], second: type[E2], third: type[E3], /
    ) -> _Registrar[E | E2 | E3]: ...
    @overload
    def on(self, *event_types: type[Any] | types.UnionType) -> _Registrar[Any]: ...
    def on(self, *event_types: Any) -> _Registrar[Any]:
        """Decorator: call the handler for events that are instances of any of ``event_types``.

        Each is an event class or a union; ``router.on(Event)`` (or
        ``router.on(KnownEvent)`` for the documented three) matches broadly, like
        :meth:`on_any`. Prefer ``on(AvatarReady, ExportReady)`` to an inline
        ``on(AvatarReady | ExportReady)``: type checkers can then check that the
        handler accepts both.
        """
        if not event_types:
            raise ConfigurationError("on() needs at least one event type")
        for event_type in event_types:
            _check_matchable(event_type)
        match = event_types[0] if len(event_types) == 1 else event_types
        return _Registrar(self, match)

    def on_any(self, handler: Callable[[Event], R]) -> Callable[[Event], R]:
        """Decorator: call the handler for every event, known or not."""
        self.add_handler(object, handler)
        return handler

    def add_handler(self, event_type: Matchable, handler: Handler) -> None:
        """Register ``handler`` for ``event_type`` (a class, union or tuple of them)."""
        for item in event_type if isinstance(event_type, tuple) else (event_type,):
            _check_matchable(item)
        if not callable(handler):
            raise ConfigurationError("a webhook handler must be callable")
        self._routes.append(_Route(event_type, handler, _is_async(handler)))

    def handlers_for(self, event: Event) -> tuple[Handler, ...]:
        """The handlers :meth:`dispatch` would run for ``event``, in registration order."""
        return tuple(route.handler for route in self._matching(event))

    def _matching(self, event: Event) -> list[_Route]:
        return [route for route in self._routes if isinstance(event, route.match)]

    async def dispatch(self, event: Event) -> DispatchResult:
        """Run every matching handler; collect, log and report their exceptions.

        With a tracer provider installed, a span for the event (linked to the span
        of the call that created its avatar, when known) and one per handler.
        """
        name = f"avaturn webhook {event.event}"
        attributes = {"avaturn.webhook.event": event.event}
        links = _traces.links_for(event)
        with _traces.span(name, attributes, consumer=True, links=links):
            return await self._dispatch(event)

    async def _dispatch(self, event: Event) -> DispatchResult:
        routes = self._matching(event)
        if not routes:
            webhook_logger().debug("no webhook handler for %s event", event.event)
            return DispatchResult(event=event, handled=0)
        failures: list[HandlerFailure] = []
        if self.concurrent and len(routes) > 1:
            import anyio  # on first use: ARCHITECTURE.md, cold start

            async with anyio.create_task_group() as group:
                for route in routes:
                    group.start_soon(self._run, route, event, failures)
        else:
            for route in routes:
                await self._run(route, event, failures)
        return DispatchResult(event=event, handled=len(routes), failures=tuple(failures))

    async def _run(self, route: _Route, event: Event, failures: list[HandlerFailure]) -> None:
        try:
            name = _name_of(route.handler)
            with _traces.span(f"avaturn handler {name}", {"avaturn.webhook.handler": name}):
                await self._call(route, event)
        except Exception as exc:  # never a cancellation: no Exception since Python 3.8
            failure = HandlerFailure(event=event, handler=route.handler, exception=exc)
            failures.append(failure)
            webhook_logger().error(
                "webhook handler %s failed on %s event",
                failure.handler_name,
                event.event,
                exc_info=exc,
            )
            await self._report(failure)

    async def _call(self, route: _Route, event: Event) -> None:
        if route.is_async:
            await cast(Awaitable[object], route.handler(event))
            return
        if self.sync_in_thread:
            import anyio.to_thread

            result = await anyio.to_thread.run_sync(route.handler, event)
        else:
            result = route.handler(event)
        if inspect.isawaitable(result):
            # A sync callable that returns an awaitable (a lambda around a coroutine).
            await result

    async def _report(self, failure: HandlerFailure) -> None:
        if self.on_handler_error is None:
            return
        try:
            outcome = self.on_handler_error(failure)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            webhook_logger().exception("on_handler_error callback failed")


def _check_matchable(event_type: object) -> None:
    if isinstance(event_type, (types.UnionType, type)):
        return
    raise ConfigurationError(
        f"cannot route on {event_type!r}: expected an event class or a union of them"
    )
