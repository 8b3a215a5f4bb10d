"""The emulator's background work (processing delays, renders, exports, webhook
deliveries): one task group, counted so that tests can wait until all of it is done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskGroup

__all__ = ["Job", "TaskSupervisor"]

logger = logging.getLogger("avaturn_async.testing")

Job = Callable[[], Awaitable[None]]


class TaskSupervisor:
    """Runs jobs in a task group that lives in a task of its own.

    anyio requires a task group to be exited by the task that entered it, while the
    emulator's ``start()`` and ``aclose()`` may run in different tasks (pytest-asyncio
    runs fixture setup and teardown in different tasks). The task is awaited by
    :meth:`stop`, never left dangling. A job that raises is logged, never allowed to
    take the task group (and the server) down.
    """

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._group: TaskGroup | None = None
        self._stop: anyio.Event | None = None
        self._idle: anyio.Event | None = None
        self.pending = 0

    async def start(self) -> None:
        self._stop = anyio.Event()
        self._idle = anyio.Event()
        self._idle.set()
        ready = anyio.Event()
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._supervise(ready), name="avaturn-emulator")
        await ready.wait()

    async def _supervise(self, ready: anyio.Event) -> None:
        assert self._stop is not None
        async with anyio.create_task_group() as group:
            self._group = group
            ready.set()
            await self._stop.wait()
            group.cancel_scope.cancel()
        self._group = None

    async def stop(self) -> None:
        """Cancel every pending job and wait for the supervising task to end."""
        if self._stop is not None and self._task is not None:
            self._stop.set()
            await self._task

    def spawn(self, job: Job) -> None:
        """Run ``job`` in the background and count it as pending; ignored once stopped."""
        if self._group is None:
            return
        if self.pending == 0:
            self._idle = anyio.Event()
        self.pending += 1
        self._group.start_soon(self._run, job)

    async def _run(self, job: Job) -> None:
        try:
            await job()
        except Exception:
            logger.exception("emulator background job failed")
        finally:
            self.pending -= 1
            if self.pending == 0 and self._idle is not None:
                self._idle.set()

    async def wait_idle(self) -> None:
        while self.pending and self._idle is not None:
            await self._idle.wait()
