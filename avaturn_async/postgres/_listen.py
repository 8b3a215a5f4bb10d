"""One ``LISTEN`` connection for every channel of a process, surviving restarts.

The event hub, the rate-limit gate and the inbox's workers learn of other
processes' writes through ``NOTIFY``. Notifications are hints, never the data:
each subscriber re-reads its table in ``catch_up``. A dedicated connection
holds the ``LISTEN`` (a pooled one would be reset on release), and one is
enough for every channel: :class:`SharedListener` fans each notification out
to the subscribers of its channel.

Nothing is stored for a session while it is disconnected, so on every
(re)connect the listener ``LISTEN``-s first and only then calls every
``catch_up`` (the other order loses wake-ups). While it is down, the
``catch_up``-s run every ``poll_interval`` seconds through the pool; a
``SELECT 1`` every :data:`PING_INTERVAL` seconds finds a connection that died
silently.

After each connect, a ``NOTIFY`` sent through the pool must come back on the
listening connection within ``probe_timeout``. Through a pooler in transaction
or statement mode (PgBouncer) ``LISTEN`` seems to succeed and nothing ever
arrives: the probe notices, says so once, and the subscribers are polled every
``poll_interval`` seconds instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from .._backoff import ExponentialBackoff
from ._connect import is_transient, one_line
from ._outage import OutageLog, logger

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PROBE_CHANNEL", "SharedListener", "Subscription"]

PROBE_CHANNEL = "avaturn_probe"
PING_INTERVAL = 5.0


@attrs.frozen(kw_only=True, eq=False)
class Subscription:
    """One subscriber of one ``LISTEN`` channel, from :meth:`PostgresConnector.subscribe`;
    :meth:`PostgresConnector.unsubscribe` ends it."""

    channel: str
    on_notify: Callable[[str], None]
    catch_up: Callable[[], Awaitable[None]]


class SharedListener:
    """The one ``LISTEN`` connection of a connector, and its subscribers (module docstring)."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        notify: Callable[[str, str], Awaitable[None]],
        outage: OutageLog,
        *,
        poll_interval: float = 1.0,
        probe_timeout: float = 5.0,
    ) -> None:
        self._connect = connect
        self._notify = notify
        self._outage = outage
        self.poll_interval = poll_interval
        self.probe_timeout = probe_timeout
        # 50 ms doubling to 16 s, but never longer than a poll: it is the poll's wait too.
        self._retry = ExponentialBackoff(initial=0.05, maximum=min(16.0, poll_interval), jitter=0.5)
        self.connected = False
        self.notifications: bool | None = None
        """Whether a probe came back on the last connection (``None``: not probed yet)."""
        self.connects = 0
        self._subscriptions: list[Subscription] = []
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()  # one operation at a time on the listening connection
        self._lost = asyncio.Event()
        self._probe: tuple[str, asyncio.Event] | None = None
        self._started: Callable[[], None] | None = None
        self._warned_deaf = False

    @property
    def healthy(self) -> bool:
        """Connected, and notifications arrive (else the subscribers are polled)."""
        return self.connected and self.notifications is not False

    @property
    def channels(self) -> set[str]:
        return {sub.channel for sub in self._subscriptions}

    async def subscribe(self, subscription: Subscription) -> None:
        """Add ``subscription``, ``LISTEN`` to its channel if connected, then catch it
        up (connected or not: the read it would have missed)."""
        new = subscription.channel not in self.channels
        self._subscriptions.append(subscription)
        async with self._lock:
            conn = self._conn
            if conn is not None and new:
                with contextlib.suppress(Exception):  # a lost connection is redone by run()
                    await conn.add_listener(subscription.channel, self._dispatch)
        with contextlib.suppress(Exception):
            await subscription.catch_up()

    async def unsubscribe(self, subscription: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(subscription)
        if subscription.channel in self.channels:
            return
        async with self._lock:
            conn = self._conn
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.remove_listener(subscription.channel, self._dispatch)

    def _dispatch(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        text = str(payload)
        probe = self._probe
        if channel == PROBE_CHANNEL:
            if probe is not None and probe[0] == text:
                probe[1].set()
            return
        for sub in list(self._subscriptions):
            if sub.channel == channel:
                sub.on_notify(text)

    async def _catch_up_all(self) -> None:
        for sub in list(self._subscriptions):
            with contextlib.suppress(Exception):
                await sub.catch_up()

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
                self._report(exc)
            self.connected = False
            self._mark_started()
            await self._catch_up_all()  # poll while the listener is down
            failures += 1
            await anyio.sleep(self._retry.delay(failures))

    def _report(self, exc: BaseException) -> None:
        if is_transient(exc):
            self._outage.failed(exc)  # one line per outage, for every part of the process
        else:
            logger.warning("PostgreSQL listener failed: %s", one_line(exc))

    def _mark_started(self) -> None:
        started, self._started = self._started, None
        if started is not None:
            started()

    def _terminated(self, conn: Any) -> None:
        self._lost.set()

    async def _session(self) -> None:
        self._lost = asyncio.Event()
        conn = await self._connect()
        try:
            conn.add_termination_listener(self._terminated)
            async with self._lock:
                await conn.add_listener(PROBE_CHANNEL, self._dispatch)
                for channel in sorted(self.channels):
                    await conn.add_listener(channel, self._dispatch)
                self._conn = conn
            self.connects += 1
            self.connected = True
            self._outage.succeeded()
            await self._catch_up_all()
            self._mark_started()
            await self._check_notifications()
            await self._watch(conn)
        finally:
            self.connected = False
            self._conn = None
            with contextlib.suppress(Exception):
                conn.terminate()

    async def _check_notifications(self) -> None:
        """Send a ``NOTIFY`` through the pool; it must come back on this connection."""
        token = secrets.token_hex(8)
        arrived = asyncio.Event()
        self._probe = (token, arrived)
        try:
            await self._notify(PROBE_CHANNEL, token)
            with anyio.move_on_after(self.probe_timeout):
                await arrived.wait()
        finally:
            self._probe = None
        self.notifications = arrived.is_set()
        if not self.notifications and not self._warned_deaf:
            self._warned_deaf = True
            logger.warning(
                "PostgreSQL at %s: LISTEN received no notification within %g s (a pooler "
                "in transaction or statement mode, such as PgBouncer, does not carry "
                "LISTEN); polling every %g s instead",
                self._outage.label,
                self.probe_timeout,
                self.poll_interval,
            )

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Return when the connection is lost (terminated, or a ping fails)."""
        while True:
            deaf = self.notifications is False
            with anyio.move_on_after(self.poll_interval if deaf else PING_INTERVAL):
                await self._lost.wait()
                return
            if deaf:
                await self._catch_up_all()
            async with self._lock:
                with anyio.fail_after(PING_INTERVAL):
                    await conn.fetchval("SELECT 1")

    def terminate(self) -> None:
        """Drop the listening connection now (the loop is cancelled by its owner)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()
