"""The sync client's event loop: anyio's blocking portal, one per client, started on first use.

``anyio.from_thread.start_blocking_portal()`` runs an event loop in a thread of
its own; ``portal.call(fn)`` runs a coroutine function there and returns its
result (or raises its exception) in the calling thread. Any number of threads
may call at once: each call is a task in that loop, so they share the async
client's connection pool and limits exactly as tasks do.

Calling from inside a running event loop is refused (:class:`EventLoopError`):
the call would block that loop, and from the portal's own thread it would
deadlock. The portal's thread is a daemon (anyio 4.5 and later), so a client
never closed does not keep the process from exiting; it warns when collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from .._errors import ClientClosedError, EventLoopError

__all__ = ["Bridge", "refuse_inside_event_loop"]

T = TypeVar("T")


def refuse_inside_event_loop() -> None:
    """Raise :class:`EventLoopError` when an event loop runs in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise EventLoopError(
        "avaturn_async.sync.AvaturnClient was called from inside a running event loop, "
        "which the call would block. In async code use avaturn_async.AvaturnClient and "
        "await its methods; from sync code called by async code, run the call in a "
        "worker thread (await anyio.to_thread.run_sync(...))"
    )


class Bridge:
    """One blocking portal, shared by a sync client and the clients derived from it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._portal: BlockingPortal | None = None
        self._opened = contextlib.ExitStack()
        self.closed = False

    @property
    def started(self) -> bool:
        return self._portal is not None

    def call(self, function: Callable[[], Awaitable[T]]) -> T:
        """Run ``function()`` in the portal's loop (started on first use); its result, here."""
        refuse_inside_event_loop()
        portal = self._portal
        if portal is None:
            with self._lock:
                if self.closed:
                    raise ClientClosedError("this AvaturnClient is closed; create a new one")
                if self._portal is None:
                    self._portal = self._opened.enter_context(start_blocking_portal())
                portal = self._portal
        return portal.call(function)

    def close(self, last: Callable[[], Awaitable[None]]) -> None:
        """Run ``last()`` (the async client's ``aclose``) in the loop, then stop the loop."""
        refuse_inside_event_loop()
        with self._lock:
            if self.closed:
                return
            self.closed = True
            try:
                if self._portal is not None:
                    self._portal.call(last)
            finally:
                self._opened.close()  # stops the loop and joins its thread
                self._portal = None

    def close_soon(self, last: Callable[[], Awaitable[None]]) -> None:
        """From a finalizer, in any thread: close in the loop's own time, without waiting."""
        portal = self._portal
        if portal is None or self.closed:
            return
        self.closed = True

        async def close_then_stop() -> None:
            try:
                await last()
            finally:
                await portal.stop()

        with contextlib.suppress(RuntimeError):  # in the loop's thread, or stopped already
            portal.start_task_soon(close_then_stop)
