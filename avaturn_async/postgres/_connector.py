"""``PostgresConnector``: one connection budget for every PostgreSQL backend of a process.

As procrastinate's connector serves its job manager and its workers, one
connector serves the inbox, the duplicate guard, the event hub, the rate-limit
gate and the journal of a process:

* **one asyncpg pool** of at most ``pool_size`` connections (default
  :data:`DEFAULT_POOL_SIZE`), opened lazily and never kept above what is in
  use, plus **one** ``LISTEN`` connection shared by every channel (the hub's,
  the gate's and the inbox workers' wake-ups), opened when the first backend
  subscribes. A process therefore holds at most ``pool_size + 1`` connections,
  each named by ``application_name`` (default :data:`APPLICATION_NAME`) in
  ``pg_stat_activity``;
* **migrations once per component**, on a pooled connection;
* **transient errors handled in one place** (:meth:`PostgresConnector.run`):
  retried with backoff, logged as one warning line per outage;
* **its loops in one anyio task group** (the listener, and the loops the
  backends :meth:`~PostgresConnector.spawn`), hosted by one task and stopped
  together by :meth:`~PostgresConnector.aclose`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from .._errors import ConfigurationError, StorageError
from ._connect import connect, create_pool, is_transient, retry_transient, sqlstate
from ._dsn import check_dsn, redact_dsn
from ._listen import SharedListener, Subscription
from ._migrate import PRIVILEGE, explain_schema_error, migrate, schema_version
from ._outage import OutageLog
from ._tasks import BackgroundTask, TaskHost

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

__all__ = ["APPLICATION_NAME", "DEFAULT_POOL_SIZE", "PostgresConnector", "connector_for"]

T = TypeVar("T")
DEFAULT_POOL_SIZE = 5
"""Pooled connections per process: ten processes hold at most 60 with the listener."""
APPLICATION_NAME = "avaturn_async"
"""What ``pg_stat_activity.application_name`` shows for the SDK's connections."""
#: The server has no free connection slot (53300): wait for a pooled connection.
_TOO_MANY = "53300"


class PostgresConnector:
    """The PostgreSQL connections of one process: give it to every backend.

    ::

        async with PostgresConnector(dsn) as db:
            inbox = PostgresInbox(db)
            hub = PostgresEventHub(db)
            ...

    Backends given a DSN instead open a connector of their own. Opens itself on
    first use (or :meth:`open`; ``async with`` also closes it). Raises
    :class:`ConfigurationError` for a malformed DSN at once.

    Args:
        dsn: ``postgresql://user:password@host:port/database``.
        pool_size: most pooled connections at once (the listener adds one).
        application_name: shown in ``pg_stat_activity`` (a DSN's own
            ``application_name=`` option wins).
        connect_timeout: seconds to wait for a connection to open.
        command_timeout: seconds a statement may run.
        poll_interval: seconds between polls while notifications cannot be had.
        statement_cache_size: asyncpg's prepared statements per connection; 0
            behind a pooler in transaction mode that cannot keep them.
    """

    def __init__(
        self,
        dsn: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        application_name: str = APPLICATION_NAME,
        connect_timeout: float = 10.0,
        command_timeout: float = 60.0,
        poll_interval: float = 1.0,
        statement_cache_size: int = 100,
    ) -> None:
        if pool_size < 1:
            raise ConfigurationError("pool_size must be at least 1")
        if not poll_interval > 0:
            raise ConfigurationError("poll_interval must be positive")
        self.dsn: str = check_dsn(dsn)
        self.pool_size = pool_size
        self.application_name = application_name
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.poll_interval = poll_interval
        self.statement_cache_size = statement_cache_size
        self.probe_timeout: float = 5.0
        """Seconds the listener waits for its probe notification before polling instead."""
        self.outage: OutageLog = OutageLog(redact_dsn(dsn))
        self._pool: asyncpg.Pool | None = None
        self._host = TaskHost()
        self._listener: SharedListener | None = None
        self._opening = asyncio.Lock()
        self._migrated: dict[str, int] = {}
        self._released: asyncio.Event | None = None
        self._in_use = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"PostgresConnector({self.label!r}, pool_size={self.pool_size})"

    @property
    def label(self) -> str:
        """The DSN without its password."""
        return redact_dsn(self.dsn)

    @property
    def listening(self) -> bool:
        """The shared ``LISTEN`` connection is up and notifications arrive on it (else
        the subscribers are polled every ``poll_interval`` seconds)."""
        return self._listener is not None and self._listener.healthy

    @property
    def notifications(self) -> bool | None:
        """Whether the last probe ``NOTIFY`` came back on the listening connection
        (``False``: a pooler that cannot carry ``LISTEN``); ``None`` before the first."""
        return None if self._listener is None else self._listener.notifications

    @property
    def listen_connects(self) -> int:
        """Times the listening connection connected (more than one: it reconnected)."""
        return 0 if self._listener is None else self._listener.connects

    @property
    def listen_channels(self) -> frozenset[str]:
        """The channels the listening connection serves."""
        return frozenset() if self._listener is None else frozenset(self._listener.channels)

    async def open(self) -> None:
        """Connect (one pooled connection, to learn of a bad DSN or server now); idempotent.

        Raises :class:`ConfigurationError` (bad DSN, role or password) or
        :class:`StorageUnavailableError` (no server answers).
        """
        if self._pool is not None:
            return
        if self._closed:
            raise StorageError(f"the PostgreSQL connector for {self.label} is closed")
        async with self._opening:
            if self._pool is not None:
                return
            pool = await create_pool(
                self.dsn,
                min_size=0,  # no floor to restore in the background during an outage
                max_size=self.pool_size,
                connect_timeout=self.connect_timeout,
                command_timeout=self.command_timeout,
                application_name=self.application_name,
                statement_cache_size=self.statement_cache_size,
            )
            try:
                async with pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
            except Exception as exc:
                pool.terminate()
                from ._connect import translate_connect_error

                raise translate_connect_error(exc, self.dsn) from None
            await self._host.start()
            self._released = asyncio.Event()
            self._pool = pool

    async def aclose(self) -> None:
        """Stop the loops, then close the listener and the pool. Idempotent."""
        self._closed = True
        await self._host.stop()
        if self._listener is not None:
            self._listener.terminate()
        pool, self._pool = self._pool, None
        if pool is not None:
            with anyio.move_on_after(10) as scope:
                await pool.close()
            if scope.cancelled_caught:
                pool.terminate()

    def close(self) -> None:
        """Drop every connection now (:meth:`aclose` closes them cleanly)."""
        self._closed = True
        self._host.cancel()
        if self._listener is not None:
            self._listener.terminate()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()

    async def __aenter__(self) -> PostgresConnector:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def spawn(self, loop: Callable[[], Awaitable[None]]) -> BackgroundTask:
        """Run ``loop`` in the connector's task group until it returns, its handle is
        stopped, or the connector closes. An error ends that loop only (logged)."""
        return self._host.spawn(loop)

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[PoolConnectionProxy]:
        """A pooled connection for the block. When the server is out of connection
        slots, waits for one of the pool's own connections to come back."""
        await self.open()
        pool = self._pool
        if pool is None:
            raise StorageError(f"the PostgreSQL connector for {self.label} is closed")
        conn = await self._checkout(pool)
        self._in_use += 1
        try:
            yield conn
        finally:
            self._in_use -= 1
            try:
                await pool.release(conn)
            finally:
                released, self._released = self._released, asyncio.Event()
                if released is not None:
                    released.set()

    async def _checkout(self, pool: asyncpg.Pool) -> PoolConnectionProxy:
        while True:
            released = self._released
            try:
                conn: PoolConnectionProxy = await pool.acquire()
                return conn
            except Exception as exc:
                # A pooled connection is in use: wait for it rather than for a free slot.
                if sqlstate(exc) != _TOO_MANY or self._in_use == 0 or released is None:
                    raise
            await released.wait()

    async def run(
        self,
        what: str,
        operation: Callable[[PoolConnectionProxy], Awaitable[T]],
        *,
        deadline: float = 30.0,
        retry_if: Callable[[BaseException], bool] = is_transient,
    ) -> T:
        """``operation(conn)`` on a pooled connection, retried on transient errors (or
        those ``retry_if`` accepts) for ``deadline`` seconds (0: once), then
        :class:`StorageUnavailableError`. ``operation`` must be safe to repeat.
        A role lacking a privilege is a :class:`ConfigurationError`."""

        async def attempt() -> T:
            try:
                async with self.acquire() as conn:
                    result = await operation(conn)
            except Exception as exc:
                if is_transient(exc):
                    self.outage.failed(exc)
                raise
            self.outage.succeeded()
            return result

        try:
            return await retry_transient(attempt, deadline=deadline, what=what, retry_if=retry_if)
        except Exception as exc:
            if sqlstate(exc) == PRIVILEGE:
                raise ConfigurationError(
                    f"PostgreSQL at {self.label} refused {what}: {exc}; grant the role "
                    "SELECT, INSERT, UPDATE, DELETE on the avaturn_* tables and USAGE on "
                    "their sequences"
                ) from None
            raise

    async def ping(self) -> None:
        """One ``SELECT 1`` on a pooled connection, not retried (a readiness check: bound
        it with ``anyio.fail_after``). Raises when the server does not answer."""
        await self.run("a readiness check", lambda conn: conn.fetchval("SELECT 1"), deadline=0)

    async def migrate(self, component: str, steps: Sequence[str]) -> int:
        """Install or upgrade ``component``'s tables, once per connector (see :func:`migrate`).

        A role that may not create them, or a ``search_path`` naming no schema, is
        a :class:`ConfigurationError` that says what to grant or create.
        """
        if self._migrated.get(component) == len(steps):
            return len(steps)

        async def install(conn: PoolConnectionProxy) -> int:
            try:
                return await migrate(conn, component, steps)
            except Exception as exc:
                problem = await explain_schema_error(conn, exc, component, self.label)
                if problem is not None:
                    raise problem from None
                raise

        version = await self.run(f"installing the {component} tables", install)
        self._migrated[component] = version
        return version

    async def installed_version(self, component: str) -> int:
        """The version of ``component`` in the database (0: never installed); reads only."""
        return await self.run(
            f"reading the {component} schema version", lambda conn: schema_version(conn, component)
        )

    async def subscribe(
        self,
        channel: str,
        on_notify: Callable[[str], None],
        catch_up: Callable[[], Awaitable[None]],
    ) -> Subscription:
        """Call ``on_notify(payload)`` for each ``NOTIFY`` on ``channel``, and ``catch_up()``
        once listening, after each reconnect, and every ``poll_interval`` seconds while
        notifications cannot be had. Returns once the listener made its first attempt."""
        await self.open()
        listener = await self._ensure_listener()
        subscription = Subscription(channel=channel, on_notify=on_notify, catch_up=catch_up)
        await listener.subscribe(subscription)
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        if self._listener is not None:
            await self._listener.unsubscribe(subscription)

    async def _ensure_listener(self) -> SharedListener:
        if self._listener is not None:
            return self._listener
        listener = SharedListener(
            self._connect_listener,
            self._notify,
            self.outage,
            poll_interval=self.poll_interval,
            probe_timeout=self.probe_timeout,
        )
        self._listener = listener
        started = anyio.Event()
        self.spawn(lambda: listener.run(started=started.set))
        await started.wait()
        return listener

    async def _connect_listener(self) -> asyncpg.Connection:
        return await connect(
            self.dsn,
            connect_timeout=self.connect_timeout,
            application_name=self.application_name,
            statement_cache_size=self.statement_cache_size,
        )

    async def _notify(self, channel: str, payload: str) -> None:
        async def send(conn: Any) -> None:
            await conn.execute("SELECT pg_notify($1, $2)", channel, payload)

        await self.run("sending a probe notification", send, deadline=0)


def connector_for(
    target: str | PostgresConnector, *, max_connections: int | None = None, **options: Any
) -> tuple[PostgresConnector, bool]:
    """The connector a backend uses for ``target`` (a DSN, or a connector to share),
    and whether the backend owns it (then it closes it too). ``max_connections`` (its
    ``pool_size``) and ``options`` are for a connector of its own."""
    if isinstance(target, PostgresConnector):
        if max_connections is not None:
            raise ConfigurationError("a shared connector has its own pool_size")
        return target, False
    if max_connections is not None:
        options["pool_size"] = max_connections
    return PostgresConnector(target, **options), True
