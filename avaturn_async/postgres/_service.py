"""The lifecycle the event hub's transport and the rate-limit gate share: a pool
with the component's schema migrated, a ``LISTEN`` listener, and the loops that
run beside it, started once and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from ._listen import Listener
from ._setup import open_pool

if TYPE_CHECKING:
    import asyncpg

__all__ = ["ListeningService"]

Loop = Callable[[], Coroutine[Any, Any, None]]


class ListeningService:
    """Opens the pool, then runs ``listener`` and ``loops`` as tasks until :meth:`aclose`.

    ``prepare`` runs on the new pool before it is published in :attr:`pool` (and
    before any loop starts), for reads the loops rely on.
    """

    def __init__(
        self,
        dsn: str,
        component: str,
        migrations: Sequence[str],
        *,
        max_size: int,
        listener: Listener,
        loops: Sequence[Loop],
        prepare: Callable[[asyncpg.Pool], Awaitable[None]] | None = None,
    ) -> None:
        self._dsn = dsn
        self._component = component
        self._migrations = migrations
        self._max_size = max_size
        self._listener = listener
        self._loops = loops
        self._prepare = prepare
        self.pool: asyncpg.Pool | None = None
        """Set once started, ``None`` again once closed."""
        self._tasks: list[asyncio.Task[None]] = []
        self._starting: asyncio.Lock | None = None

    @property
    def begun(self) -> bool:
        """:meth:`start` was called: it may have finished, be running, or have failed."""
        return self._starting is not None

    async def start(self) -> None:
        """Open the pool and start the tasks, unless done already; returns once the
        listener's first catch-up ran. Concurrent calls wait for the first one."""
        # Made here, not in __init__: the lock belongs to the running event loop.
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self.pool is not None:
                return
            pool = await open_pool(
                self._dsn, self._component, self._migrations, max_size=self._max_size
            )
            if self._prepare is not None:
                await self._prepare(pool)
            self.pool = pool
            ready = asyncio.Event()
            self._tasks = [
                asyncio.create_task(self._listener.run(started=ready.set)),
                *(asyncio.create_task(loop()) for loop in self._loops),
            ]
            await ready.wait()

    def spawn(self, job: Loop) -> None:
        """Run ``job`` as a task that :meth:`aclose` cancels; needs a running loop
        (``RuntimeError`` otherwise, before ``job`` is called)."""
        self._tasks.append(asyncio.get_running_loop().create_task(job()))

    async def aclose(self) -> None:
        """Cancel the tasks and wait for them, then close the pool. Idempotent."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        pool, self.pool = self.pool, None
        if pool is not None:
            await pool.close()
