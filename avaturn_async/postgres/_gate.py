"""``PostgresGate``: one rate-limit pause shared by every process using the same database.

A 429 (or a 503 with ``Retry-After``) seen by any process writes
``paused_until = GREATEST(paused_until, now() + pause)`` into the row of its
scope (one per API key, say) and ``NOTIFY``s the scope. Every process re-reads
the row when told, after each reconnect, and every ``poll_interval`` seconds
while its listener is down, and converts the *remaining* interval, computed by
the database's clock, into a deadline on its own clock: machines need not agree
on the time. Only the pause is shared; each process keeps its own AIMD limit.

The local pause takes effect at once; the write happens in the background, so
``close_for`` never blocks a request on the database. A process that cannot
reach the database still pauses itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._connector import PostgresConnector, connector_for
from ._tasks import BackgroundStart

if TYPE_CHECKING:
    from ._listen import Subscription
    from ._tasks import BackgroundTask

__all__ = ["PostgresGate"]

CHANNEL = "avaturn_gate"
_log = logging.getLogger("avaturn_async.postgres")

MIGRATIONS = [
    """
    CREATE TABLE avaturn_gate (
        scope        text PRIMARY KEY,
        paused_until timestamptz NOT NULL
    )
    """,
]

_CLOSE = f"""
WITH paused AS (
    INSERT INTO avaturn_gate (scope, paused_until)
    VALUES ($1, clock_timestamp() + make_interval(secs => $2))
    ON CONFLICT (scope) DO UPDATE
        SET paused_until = GREATEST(avaturn_gate.paused_until, excluded.paused_until)
    RETURNING scope
)
SELECT pg_notify('{CHANNEL}', scope) FROM paused
"""
_READ = """
SELECT extract(epoch FROM paused_until - clock_timestamp())::float8
FROM avaturn_gate WHERE scope = $1
"""


class PostgresGate(BackgroundStart):
    """A :class:`~avaturn_async.RateLimitGate` shared through PostgreSQL.

    Give it to every client that shares the API key:
    ``AdaptiveConcurrency(gate=PostgresGate(dsn))``. Use ``async with gate:``
    (or ``await gate.start()`` / ``aclose()``); a gate used before it was
    started starts itself in the background.

    Args:
        dsn: ``postgresql://...``, or a :class:`PostgresConnector` shared with
            the process's other backends.
        scope: what is rate limited together (one API key); gates of other
            scopes in the same database do not pause each other.
        poll_interval: seconds between reads while the listener is down (a
            shared connector's own setting applies to it).
    """

    _what = "shared rate-limit gate"

    def __init__(
        self, dsn: str | PostgresConnector, *, scope: str = "default", poll_interval: float = 1.0
    ) -> None:
        super().__init__()
        self.connector: PostgresConnector
        self._owned: bool
        self.connector, self._owned = connector_for(dsn, poll_interval=poll_interval)
        self.scope = scope
        self._subscribers: list[Callable[[float], None]] = []
        self._until = -1.0  # time.monotonic() deadline known here
        self._to_write = 0.0  # the longest pause not yet written
        self._written_until = -1.0
        self._write_wake = asyncio.Event()
        self._read_wake = asyncio.Event()
        self._starting: asyncio.Lock | None = None
        self._subscription: Subscription | None = None
        self._loops: list[BackgroundTask] = []
        self.writes: int = 0
        """Pauses written to the database by this process."""

    def __repr__(self) -> str:
        return f"PostgresGate(scope={self.scope!r}, remaining={self.remaining():.3f})"

    def remaining(self) -> float:
        """Seconds until the gate opens, as this process knows it."""
        return max(0.0, self._until - time.monotonic())

    # ------------------------------------------------------------ the protocol

    def close_for(self, seconds: float) -> None:
        self._tell(seconds)
        deadline = time.monotonic() + seconds
        if deadline > self._written_until + 0.05:  # not already written (by us)
            self._to_write = max(self._to_write, seconds)
            self._written_until = deadline
            self._write_wake.set()
        self._start_in_background()

    def subscribe(self, paused: Callable[[float], None]) -> None:
        self._subscribers.append(paused)
        remaining = self.remaining()
        if remaining > 0:
            paused(remaining)
        self._start_in_background()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect, create the table if needed, read the pause and start listening.

        Raises ``ConfigurationError`` for a bad DSN and ``StorageUnavailableError``
        when the server cannot be reached.
        """
        self._started = True  # no background start once this one began
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._subscription is not None:
                return
            await self.connector.migrate("gate", MIGRATIONS)
            self._loops = [
                self.connector.spawn(self._write_loop),
                self.connector.spawn(self._read_loop),
            ]
            # Subscribing reads the pause in force (and after each reconnect).
            self._subscription = await self.connector.subscribe(
                CHANNEL, self._notified, self._read
            )

    async def aclose(self) -> None:
        await self._stop_background()
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await self.connector.unsubscribe(subscription)
        loops, self._loops = self._loops, []
        for loop in loops:
            await loop.stop()
        if self._owned:
            await self.connector.aclose()

    # ------------------------------------------------------------ the work

    def _tell(self, remaining: float) -> None:
        if remaining <= 0:
            return
        self._until = max(self._until, time.monotonic() + remaining)
        for paused in self._subscribers:
            paused(remaining)

    def _notified(self, payload: str) -> None:
        if payload == self.scope:
            self._read_wake.set()

    async def _read(self) -> None:
        remaining = await self.connector.run(
            "reading the shared pause",
            lambda conn: conn.fetchval(_READ, self.scope),
            deadline=0,
        )
        if remaining is not None and remaining > 0 and self.remaining() < remaining - 0.01:
            self._tell(remaining)

    async def _read_loop(self) -> None:
        while True:
            await self._read_wake.wait()
            self._read_wake.clear()
            with contextlib.suppress(Exception):
                await self._read()

    async def _write_loop(self) -> None:
        while True:
            await self._write_wake.wait()
            self._write_wake.clear()
            seconds, self._to_write = self._to_write, 0.0
            if seconds <= 0:
                continue

            async def write(conn: Any, seconds: float = seconds) -> None:
                await conn.execute(_CLOSE, self.scope, seconds)

            try:
                await self.connector.run("sharing a pause", write, deadline=seconds)
                self.writes += 1
            except Exception as exc:
                _log.warning("could not share a rate-limit pause: %s", exc)
