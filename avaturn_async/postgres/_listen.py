"""A ``LISTEN`` connection that survives restarts, and falls back to polling meanwhile.

The event hub and the rate-limit gate learn of other processes' writes through
``NOTIFY``. Notifications are hints, never the data: each wake-up re-reads the
table. A dedicated connection holds the ``LISTEN`` (a pooled one would be reset
on release). Nothing is stored for a session while it is disconnected, so on
every (re)connect the listener LISTENs first and only then calls ``catch_up``
(the other order loses wake-ups). While it is down, ``catch_up`` runs every
``poll_interval`` seconds through the pool; a ``SELECT 1`` every
``ping_interval`` seconds finds a connection that died silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio

from .._backoff import ExponentialBackoff
from ._connect import connect, is_transient

if TYPE_CHECKING:
    import asyncpg

__all__ = ["Listener"]

_log = logging.getLogger("avaturn_async.postgres")


class Listener:
    """Calls ``on_notify(payload)`` for each notification on ``channel`` and
    ``catch_up()`` after each (re)connect and on each poll while disconnected."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        *,
        on_notify: Callable[[str], None],
        catch_up: Callable[[], Awaitable[None]],
        poll_interval: float = 1.0,
        ping_interval: float = 5.0,
    ) -> None:
        self._dsn = dsn
        self._channel = channel
        self._on_notify = on_notify
        self._catch_up = catch_up
        self.poll_interval = poll_interval
        self.ping_interval = ping_interval
        self.healthy = False
        self.connects = 0
        self._lost = asyncio.Event()
        self._started: Callable[[], None] | None = None

    def _notified(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        self._on_notify(str(payload))

    def _terminated(self, conn: Any) -> None:
        self._lost.set()

    async def run(self, *, started: Callable[[], None] | None = None) -> None:
        """Listen until cancelled; ``started`` is called once the first catch-up ran
        (connected, or polling when the server cannot be reached)."""
        self._started = started
        failures = 0
        while True:
            try:
                await self._session()
                failures = 0
            except Exception as exc:
                if not is_transient(exc):
                    _log.warning("PostgreSQL listener on %s failed: %r", self._channel, exc)
            self.healthy = False
            self._mark_started()
            # Poll while the listener is down, then try to reconnect.
            with contextlib.suppress(Exception):
                await self._catch_up()
            failures += 1
            # 50 ms doubling to 16 s, but never longer than a poll: it is the poll's wait too.
            backoff = ExponentialBackoff(
                initial=0.05, maximum=min(16.0, self.poll_interval), jitter=0.5
            )
            await anyio.sleep(backoff.delay(failures))

    def _mark_started(self) -> None:
        started, self._started = self._started, None
        if started is not None:
            started()

    async def _session(self) -> None:
        conn: asyncpg.Connection = await connect(self._dsn)
        try:
            self._lost = asyncio.Event()
            conn.add_termination_listener(self._terminated)
            await conn.add_listener(self._channel, self._notified)
            self.connects += 1
            self.healthy = True
            await self._catch_up()
            self._mark_started()
            await self._watch(conn)
        finally:
            self.healthy = False
            with contextlib.suppress(Exception):
                conn.terminate()

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Return when the connection is lost (terminated, or a ping fails)."""
        while True:
            with anyio.move_on_after(self.ping_interval):
                await self._lost.wait()
                return
            with anyio.fail_after(self.ping_interval):
                await conn.fetchval("SELECT 1")
