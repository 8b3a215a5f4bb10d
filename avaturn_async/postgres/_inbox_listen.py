"""Waking on ``NOTIFY``: one dedicated ``LISTEN`` connection, reconnected when it drops.

A pooled connection would not do: asyncpg's pool runs ``UNLISTEN *`` when a
connection goes back. A dropped listener is noticed by asyncpg's termination
callback (a clean shutdown or restart) or by ``is_closed()`` at the next wait;
the waiters keep polling meanwhile, so a lost notification costs at most one
poll interval.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import anyio

from .._backoff import ExponentialBackoff
from ._connect import connect

if TYPE_CHECKING:
    import asyncpg

__all__ = ["WakeListener"]

#: At most this long per reconnect attempt, so a partition delays a worker's poll little.
_CONNECT_BUDGET = 3.0
#: Between failed reconnects: 1 s doubling to 30 s (the waiters poll meanwhile).
_RECONNECT_BACKOFF = ExponentialBackoff(initial=1.0, maximum=30.0)

logger = logging.getLogger("avaturn_async.postgres")


class WakeListener:
    """A dedicated ``LISTEN`` connection on ``channel`` that wakes waiters; reconnects on demand.

    Catch-up rule (PostgreSQL's ``LISTEN`` docs): after every (re)connect the
    next wait returns at once, so the worker reads the table *after* listening.

    Not ``_listen.Listener`` (a background task that calls back, for the hub and
    the gate): this one is pulled by the inbox worker between its polls, and
    connects only when a worker waits.
    """

    def __init__(self, dsn: str, channel: str, *, connect_timeout: float) -> None:
        self._dsn = dsn
        self._channel = channel
        self._connect_timeout = connect_timeout
        self._conn: asyncpg.Connection | None = None
        self._wake = anyio.Event()
        self._retry_at = 0.0
        self._failures = 0

    def _notified(self, *args: object) -> None:
        self._wake.set()

    def _lost(self, *args: object) -> None:
        self._conn = None
        self._wake.set()  # look at the table now; the next wait reconnects

    async def _ensure(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            return
        self._conn = None
        if time.monotonic() < self._retry_at:
            return
        conn: asyncpg.Connection | None = None
        try:
            with anyio.fail_after(min(self._connect_timeout, _CONNECT_BUDGET)):
                conn = await connect(self._dsn, connect_timeout=self._connect_timeout)
                await conn.add_listener(self._channel, self._notified)
        except Exception as exc:
            if conn is not None:
                conn.terminate()
            self._failures += 1
            self._retry_at = time.monotonic() + _RECONNECT_BACKOFF.delay(self._failures)
            logger.warning("LISTEN %s unavailable (%s); polling meanwhile", self._channel, exc)
            return
        conn.add_termination_listener(self._lost)
        self._conn, self._failures = conn, 0
        self._wake.set()  # catch up: anything stored before LISTEN took effect

    async def wait(self, max_wait: float) -> None:
        """Return on a notification (or a reconnect), or after ``max_wait`` seconds."""
        await self._ensure()  # outside the wait's deadline, so a short one cannot starve it
        with anyio.move_on_after(max_wait):
            await self._wake.wait()
        if self._wake.is_set():
            self._wake = anyio.Event()

    def terminate(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with anyio.move_on_after(5) as scope:
                await conn.close()
            if scope.cancelled_caught:
                conn.terminate()
