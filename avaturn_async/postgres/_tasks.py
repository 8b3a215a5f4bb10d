"""The connector's background loops: one anyio task group, hosted by one task; and the
``async with`` of the backends that start them.

A task group must be entered and left by the same task, while a connector is
opened by whichever task uses it first and closed by another. So one host
task owns the group for the connector's lifetime; :meth:`TaskHost.spawn` starts
a loop in it, in a cancel scope of its own that :meth:`BackgroundTask.stop` cancels.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from anyio.abc import TaskGroup

from ._outage import logger

__all__ = ["AsyncLifecycle", "BackgroundStart", "BackgroundTask", "TaskHost"]

_Self = TypeVar("_Self", bound="AsyncLifecycle")


class AsyncLifecycle(abc.ABC):
    """``async with`` a backend: :meth:`start` on the way in, :meth:`aclose` on the way out."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect and start what the backend runs."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Stop what :meth:`start` started and let go of the connection."""

    async def __aenter__(self: _Self) -> _Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class BackgroundStart(AsyncLifecycle):
    """A backend used before it was started starts itself in the background (the
    gate and the learned pace are reached from a client's plain functions)."""

    _what = "backend"
    """Named in the warning when a background start fails."""

    def __init__(self) -> None:
        self._background: asyncio.Task[None] | None = None
        self._started = False

    def _start_in_background(self) -> None:
        if self._started:
            return
        with contextlib.suppress(RuntimeError):  # no running loop: start() later
            self._background = asyncio.get_running_loop().create_task(self._start_quietly())
            self._started = True

    async def _start_quietly(self) -> None:
        try:
            await self.start()
        except Exception as exc:
            logger.warning("the %s could not start: %s", self._what, exc)

    async def _stop_background(self) -> None:
        background, self._background = self._background, None
        if background is not None:
            background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await background


class BackgroundTask:
    """A loop started by :meth:`PostgresConnector.spawn`, running in the connector's
    task group until it returns, :meth:`stop` is awaited, or the connector closes."""

    def __init__(self) -> None:
        # asyncio's primitives: spawn() may be called from a plain function.
        self._scope: anyio.CancelScope | None = None
        self._stopped = False
        self.done: asyncio.Event = asyncio.Event()
        self.done_callbacks: list[Callable[[BackgroundTask], None]] = []

    async def run(self, loop: Callable[[], Awaitable[None]]) -> None:
        try:
            if self._stopped:
                return
            with anyio.CancelScope() as self._scope:
                await loop()
        except Exception:  # one loop's bug must not end the others
            logger.exception("a PostgreSQL background loop failed")
        finally:
            self.done.set()
            for callback in self.done_callbacks:
                callback(self)

    def cancel(self) -> None:
        self._stopped = True
        if self._scope is not None:
            self._scope.cancel()

    async def stop(self) -> None:
        """Cancel the loop and wait until it ended (at once if its host is gone)."""
        self.cancel()
        await self.done.wait()


class TaskHost:
    """Hosts one task group in a task of its own, from :meth:`start` to :meth:`stop`."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._group: TaskGroup | None = None
        self._spawned: set[BackgroundTask] = set()

    async def start(self) -> None:
        if self._task is not None:
            return
        ready = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._host(ready))
        await ready.wait()

    async def _host(self, ready: asyncio.Event) -> None:
        async with anyio.create_task_group() as group:
            self._group = group
            ready.set()
            await anyio.sleep_forever()

    def spawn(self, loop: Callable[[], Awaitable[None]]) -> BackgroundTask:
        if self._group is None:
            raise RuntimeError("the PostgreSQL connector is not open")
        spawned = BackgroundTask()
        self._spawned.add(spawned)
        spawned.done_callbacks.append(self._spawned.discard)
        self._group.start_soon(spawned.run, loop)
        return spawned

    def cancel(self) -> None:
        """Cancel every loop now, without waiting."""
        group, self._group = self._group, None
        for spawned in list(self._spawned):
            spawned.done.set()  # never started, or cancelled with the group: stop() returns
        if group is not None:
            group.cancel_scope.cancel()

    async def stop(self) -> None:
        """Cancel every loop and wait for the host task to end."""
        task = self._task
        self.cancel()
        self._task = None
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
