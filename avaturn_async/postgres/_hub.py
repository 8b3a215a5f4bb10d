"""``PostgresEventHub``: an :class:`~avaturn_async.EventHub` shared by every replica.

A webhook received by any replica is stored in ``avaturn_hub_events`` and its
id announced with ``NOTIFY avaturn_hub`` (the id only: payloads must stay under
8,000 bytes, events need not). Each hub listens (on its connector's one ``LISTEN``
connection) and, on each notification, reads the events after the last id it has
seen, so a burst costs one read and a lost notification is caught up by the next
one, by the read after each reconnect, or by the one-second poll that runs while
the listener is down. Ids are handed out under a transaction lock, so they commit
in order and "after the last id seen" misses none.

Events are kept for ``retention`` seconds (an hour) and then deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from .._events import Event, UnknownEvent, event_to_dict, parse_event
from .._hub import EventHub, EventKey
from ._connector import PostgresConnector, connector_for
from ._tasks import AsyncLifecycle, BackgroundTask

if TYPE_CHECKING:
    from ._listen import Subscription

__all__ = ["PostgresEventHub", "PostgresHubChannel"]

CHANNEL = "avaturn_hub"
_LOCK_KEY = 0x68756273  # "hubs": orders id assignment by commit

MIGRATIONS = [
    """
    CREATE TABLE avaturn_hub_events (
        id         bigserial PRIMARY KEY,
        body       text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX avaturn_hub_events_created ON avaturn_hub_events (created_at)
    """,
]

_SEND = f"""
WITH locked AS (SELECT pg_advisory_xact_lock({_LOCK_KEY})),
     stored AS (INSERT INTO avaturn_hub_events (body) SELECT $1 FROM locked RETURNING id)
SELECT id, pg_notify('{CHANNEL}', id::text) FROM stored
"""
_READ = """
SELECT id, body FROM avaturn_hub_events
WHERE id > $1 AND created_at > now() - make_interval(secs => $2)
ORDER BY id LIMIT 500
"""
_PRUNE = "DELETE FROM avaturn_hub_events WHERE created_at < now() - make_interval(secs => $1)"


def _encode(event: Event) -> str:
    raw = event.raw if not isinstance(event, UnknownEvent) else {}
    return json.dumps({**raw, **event_to_dict(event)})


class PostgresHubChannel:
    """The :class:`~avaturn_async.HubChannel` of :class:`PostgresEventHub`.

    ``dsn`` is a DSN (a :class:`PostgresConnector` of its own is opened) or a
    connector the process shares. Starts on first use (or ``await start()``);
    ``await aclose()`` stops it. At start it reads the last ``remember`` events
    younger than ``max_age``, so a replica that (re)starts still sees an event
    that came while it was away.
    """

    def __init__(
        self,
        dsn: str | PostgresConnector,
        *,
        retention: float = 3600.0,
        poll_interval: float = 1.0,
        remember: int = 10_000,
        max_age: float = 3600.0,
    ) -> None:
        self.connector: PostgresConnector
        self.connector, self._owned = connector_for(dsn, poll_interval=poll_interval)
        self._retention = retention
        self._remember = remember
        self._max_age = max_age
        self._hubs: list[Callable[[Event], None]] = []
        self._last_seen = 0
        self._own: set[int] = set()
        self._wake = asyncio.Event()
        self._starting = asyncio.Lock()
        self._reading = asyncio.Lock()
        self._subscription: Subscription | None = None
        self._loop: BackgroundTask | None = None
        self.received: int = 0
        """Events read from the table that another process (or hub) sent."""

    def __repr__(self) -> str:
        return f"PostgresHubChannel(healthy={self.healthy}, last_seen={self._last_seen})"

    @property
    def healthy(self) -> bool:
        """The listener is connected and notifications arrive (else the table is polled)."""
        return self.connector.listening

    @property
    def connects(self) -> int:
        """Times the (shared) listener connected (more than one: it reconnected)."""
        return self.connector.listen_connects

    def connect(self, deliver: Callable[[Event], None]) -> None:
        self._hubs.append(deliver)

    async def start(self) -> None:
        """Connect, create the table if needed, and start listening (idempotent).

        Raises ``ConfigurationError`` for a bad DSN and ``StorageUnavailableError``
        when the server cannot be reached.
        """
        async with self._starting:
            if self._subscription is not None:
                return
            await self.connector.migrate("hub", MIGRATIONS)
            # Recent events are read at start too: a waiter may come after its event.
            found = await self.connector.run(
                "reading the hub's last event",
                lambda conn: conn.fetchval("SELECT max(id) FROM avaturn_hub_events"),
            )
            self._last_seen = max(0, int(found or 0) - self._remember)
            self._loop = self.connector.spawn(self._read_loop)
            self._subscription = await self.connector.subscribe(
                CHANNEL, self._notified, self._catch_up
            )

    async def aclose(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await self.connector.unsubscribe(subscription)
        loop, self._loop = self._loop, None
        if loop is not None:
            await loop.stop()
        if self._owned:
            await self.connector.aclose()

    async def send(self, event: Event) -> None:
        await self.start()
        body = _encode(event)
        stored = await self.connector.run("storing a hub event", lambda c: c.fetchval(_SEND, body))
        self._own.add(int(stored))
        for deliver in self._hubs:
            deliver(event)

    def _notified(self, payload: str) -> None:
        self._wake.set()

    async def _read_loop(self) -> None:
        pruned = anyio.current_time()
        while True:
            await self._wake.wait()
            self._wake.clear()
            with contextlib.suppress(Exception):
                await self._catch_up()
            if anyio.current_time() - pruned > 60.0:
                pruned = anyio.current_time()
                with contextlib.suppress(Exception):
                    await self.connector.run(
                        "pruning hub events",
                        lambda conn: conn.execute(_PRUNE, self._retention),
                        deadline=0,
                    )

    async def _catch_up(self) -> None:
        """Deliver every event stored after the last one seen (one reader at a time)."""
        async with self._reading:
            while True:
                rows = await self.connector.run(
                    "reading hub events",
                    lambda conn: conn.fetch(_READ, self._last_seen, self._max_age),
                    deadline=0,
                )
                for row in rows:
                    self._last_seen = max(self._last_seen, row["id"])
                    if row["id"] in self._own:
                        self._own.discard(row["id"])
                        continue
                    self._deliver(row["body"])
                if len(rows) < 500:
                    return

    def _deliver(self, body: str) -> None:
        try:
            event = parse_event(body.encode())
        except ValueError:
            return  # not ours to judge: the receiver that stored it had parsed it
        self.received += 1
        for deliver in self._hubs:
            deliver(event)


class PostgresEventHub(AsyncLifecycle, EventHub):
    """An :class:`~avaturn_async.EventHub` whose events reach every replica sharing ``dsn``.

    ``AvaturnClient(event_hub=PostgresEventHub(dsn))`` in every replica, and
    ``hub.attach(router)`` in the replicas that receive webhooks: a webhook
    received by any of them resolves ``job.wait()`` in all of them, within a
    second even while a listener reconnects. Use ``async with hub:`` (or
    ``await hub.aclose()``) to stop its background tasks; it starts itself
    on first use, or ``await hub.start()`` to learn of a bad DSN at once.
    ``dsn`` may be a :class:`PostgresConnector` shared with the process's other
    backends (``poll_interval`` is then the connector's).
    """

    def __init__(
        self,
        dsn: str | PostgresConnector,
        *,
        remember: int = 10_000,
        max_age: float = 3600.0,
        retention: float = 3600.0,
        poll_interval: float = 1.0,
    ) -> None:
        self.postgres: PostgresHubChannel = PostgresHubChannel(
            dsn, retention=retention, poll_interval=poll_interval, remember=remember,
            max_age=max_age,
        )
        super().__init__(remember=remember, max_age=max_age, channel=self.postgres)

    def __repr__(self) -> str:
        return f"PostgresEventHub(healthy={self.postgres.healthy})"

    async def start(self) -> None:
        await self.postgres.start()

    async def aclose(self) -> None:
        await self.postgres.aclose()

    async def wait(self, key: EventKey, *, since: float | None = None) -> Event:
        await self.start()
        return await super().wait(key, since=since)
