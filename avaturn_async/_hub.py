"""``EventHub``: hands completion webhooks to the tasks waiting for them.

A webhook receiver publishes every event into the hub (``hub.attach(router)``
does it for a :class:`~avaturn_async.webhooks.WebhookRouter`); jobs returned by
``create_from_photos``, ``renders.create`` and ``exports.create`` wait on it.

Events are correlated by key: ``("avatar", avatar_id)``, ``("render", render id)``
and ``("export", avatar_id)``. A webhook can arrive before its waiter exists (the
server may finish before our ``create`` call returns), so the hub remembers
recent events, bounded in count and age. Duplicates simply overwrite the
remembered event. Each event is stamped with the hub's time when published, so
a waiter can ignore events older than its own request (an export of an earlier
version of the same avatar, say).

How a published event reaches the hubs of other processes is a seam, the
:class:`HubChannel` (not the client's HTTP ``Transport``): ``PostgresEventHub``'s
carries it to every replica sharing one PostgreSQL database.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

import anyio
import attrs

from . import _metrics, _traces
from ._deprecated import renamed_argument, warn_renamed
from ._events import AvatarReady, Event, ExportReady, RenderReady, UnknownEvent

__all__ = [
    "EventHub",
    "EventKey",
    "EventSource",
    "HubChannel",
    "InMemoryHubChannel",
    "event_key",
    "share_origin",
]

logger = logging.getLogger("avaturn_async")

EventKey = tuple[str, str]


@runtime_checkable
class EventSource(Protocol):
    """Anything that calls a handler for every event it sees: a
    :class:`~avaturn_async.webhooks.WebhookRouter`, or a receiver of yours with ``on_any``."""

    def on_any(
        self, handler: Callable[[Event], Awaitable[None]]
    ) -> Callable[[Event], Awaitable[None]]: ...


def event_key(event: Event) -> EventKey | None:
    """The correlation key of a completion event, or ``None`` for other events."""
    if isinstance(event, AvatarReady):
        return ("avatar", event.avatar_id)
    if isinstance(event, RenderReady):
        return ("render", event.id)
    if isinstance(event, ExportReady):
        return ("export", event.avatar_id)
    return None


@runtime_checkable
class HubChannel(Protocol):
    """Carries published events to every hub that shares the channel.

    ``connect`` is called once by each hub built on the channel; ``send``
    must call every connected ``deliver`` (the sender's own included) with the
    event, in this process or others, and return once the event is durably
    handed over (for a shared channel: stored where the others will read it).
    """

    def connect(self, deliver: Callable[[Event], None]) -> None: ...

    async def send(self, event: Event) -> None: ...


class InMemoryHubChannel:
    """The default channel: events reach the hubs of this process connected to it."""

    def __init__(self) -> None:
        self._hubs: list[Callable[[Event], None]] = []

    def __repr__(self) -> str:
        return f"InMemoryHubChannel(hubs={len(self._hubs)})"

    def connect(self, deliver: Callable[[Event], None]) -> None:
        self._hubs.append(deliver)

    async def send(self, event: Event) -> None:
        for deliver in self._hubs:
            deliver(event)


@attrs.define
class _Waiters:
    arrived: anyio.Event = attrs.field(factory=anyio.Event)
    count: int = 0


class EventHub:
    """In-process rendezvous between webhook events and waiting jobs.

    Args:
        remember: how many recent events are kept for waiters that come late.
        max_age: seconds a remembered event stays usable.
        now: monotonic seconds, when events are stamped and aged (a seam for tests).
        channel: how published events reach the hubs of other processes
            (default: an :class:`InMemoryHubChannel` of this hub's own).
        clock, transport: the old names of ``now`` and ``channel``, deprecated.

    Use it from one event loop; publish from async code (router handlers are).
    """

    def __init__(
        self,
        *,
        remember: int = 10_000,
        max_age: float = 3600.0,
        now: Callable[[], float] = time.monotonic,
        channel: HubChannel | None = None,
        clock: Callable[[], float] | None = None,
        transport: HubChannel | None = None,
    ) -> None:
        self._remember = remember
        self._max_age = max_age
        self._now = renamed_argument("EventHub", "clock", "now", clock, now)
        self._recent: OrderedDict[EventKey, tuple[Event, float]] = OrderedDict()  # (event, at)
        self._waiters: dict[EventKey, _Waiters] = {}
        self.published: int = 0
        channel = renamed_argument("EventHub", "transport", "channel", transport, channel)
        self.channel: HubChannel = channel if channel is not None else InMemoryHubChannel()
        self.channel.connect(self.deliver)
        _metrics.watch_hub(self)  # the avaturn.hub.waiting gauge

    @property
    def transport(self) -> HubChannel:
        """Deprecated: :attr:`channel`."""
        warn_renamed("EventHub.transport", "EventHub.channel")
        return self.channel

    def __repr__(self) -> str:
        return f"EventHub(remembered={len(self._recent)}, waiting={len(self._waiters)})"

    def now(self) -> float:
        return self._now()

    @property
    def waiting(self) -> int:
        """Tasks waiting on this hub now (each ``job.wait()`` that listens to it)."""
        return sum(waiters.count for waiters in list(self._waiters.values()))

    def attach(self, router: EventSource) -> None:
        """Publish every event the ``WebhookRouter`` dispatches into this hub."""
        if not isinstance(router, EventSource):
            raise TypeError("attach() takes an avaturn_async.webhooks.WebhookRouter")
        router.on_any(self.publish)

    async def publish(self, event: Event) -> None:
        """Send ``event`` to every hub on the channel; waiters for its key wake."""
        if event_key(event) is None:
            return
        await self.channel.send(event)

    def deliver(self, event: Event) -> None:
        """Record ``event`` here and wake this hub's waiters (the channel calls it)."""
        key = event_key(event)
        if key is None:
            if isinstance(event, UnknownEvent) and event.event == _traces.ORIGIN_EVENT:
                _traces.learn_origin(event.raw)
            return
        self.published += 1
        self._recent[key] = (event, self._now())
        self._recent.move_to_end(key)
        while len(self._recent) > self._remember:
            self._recent.popitem(last=False)
        waiters = self._waiters.pop(key, None)
        if waiters is not None:
            waiters.arrived.set()

    def latest(self, key: EventKey, *, since: float | None = None) -> Event | None:
        """The remembered event for ``key`` published at or after ``since``, if any."""
        event, at = self._recent.get(key, (None, 0.0))
        if event is None:
            return None
        if self._now() - at > self._max_age:
            del self._recent[key]
            return None
        return None if since is not None and at < since else event

    async def wait(self, key: EventKey, *, since: float | None = None) -> Event:
        """Wait for an event for ``key`` published at or after ``since``.

        Bound it with ``anyio.fail_after``; cancellation leaves nothing behind.
        """
        while True:
            found = self.latest(key, since=since)
            if found is not None:
                return found
            waiters = self._waiters.setdefault(key, _Waiters())
            waiters.count += 1
            try:
                await waiters.arrived.wait()
            finally:
                waiters.count -= 1
                if waiters.count == 0 and self._waiters.get(key) is waiters:
                    del self._waiters[key]


async def share_origin(hub: EventHub | None, avatar_id: str) -> None:
    """Remember the span of the call that created ``avatar_id`` (tracing is on), and
    send it to the processes sharing ``hub``, whose ``avatar.ready`` spans link to it.

    Best effort, within a second: a trace link is never worth failing the call.
    """
    if _traces.remember_origin(avatar_id) is None or hub is None:
        return
    carried = _traces.origin_of(avatar_id)
    if carried is None or isinstance(hub.channel, InMemoryHubChannel):
        return  # one process: the origin is known here already
    with anyio.move_on_after(1.0):
        try:
            await hub.channel.send(UnknownEvent(event=_traces.ORIGIN_EVENT, raw=carried))
        except Exception as exc:
            logger.debug("could not share the trace origin of avatar %s: %r", avatar_id, exc)
