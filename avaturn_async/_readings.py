"""Gauges of state that lives in a database, read when a metrics collection asks.

The inbox's depth and the journal's rows by state are not counters one replica
could keep: they are read with one query on each collection (the production
rule for observable gauges). The query must run on the event loop that owns the
database connection, while collections come from another thread (an SDK's
periodic reader, a Prometheus scrape): :class:`_Watch` hands the query to that
loop and waits for it, briefly. ``_metrics``' observable callbacks read
:func:`readings`; the code that owns a database registers it with :func:`watching`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    import asyncio

# asyncio and logging are imported where used: a webhook receiver imports this
# module, and its cold start must not pay for them (tests/test_lazy_imports.py).

__all__ = ["readings", "watching"]

_FRESH = 1.0  # seconds a reading serves every gauge of one collection
_READ_TIMEOUT = 2.0


@attrs.define(eq=False)
class _Watch:
    """State in a database, read on its owner's event loop when a collection asks."""

    kind: str
    label: str
    read: Callable[[], Awaitable[Any]]
    loop: asyncio.AbstractEventLoop
    value: Any = None
    read_at: float = -math.inf
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    refreshing: asyncio.Task[None] | None = None

    def current(self) -> Any:
        """A fresh reading, or ``None`` when the database did not answer in time.

        Called by collection, in the collector's thread: the query runs on the
        owner's loop, waited for here. Called on that loop itself (a collection
        made by async code), it cannot wait: it answers the last reading and
        starts a new one.
        """
        import asyncio

        with self.lock:
            now = time.monotonic()
            if now - self.read_at < _FRESH:
                return self.value
            try:
                on_loop = asyncio.get_running_loop() is self.loop
            except RuntimeError:
                on_loop = False
            if on_loop:
                if self.refreshing is None or self.refreshing.done():
                    self.refreshing = self.loop.create_task(self._refresh())
                return self.value
            self.value, self.read_at = self._wait_for_reading(), now
            return self.value

    def _wait_for_reading(self) -> Any:
        import asyncio

        if self.loop.is_closed():
            return None
        future = asyncio.run_coroutine_threadsafe(self._read(), self.loop)
        try:
            return future.result(_READ_TIMEOUT)
        except Exception as exc:
            future.cancel()
            _unreadable(self, exc)
            return None

    async def _read(self) -> Any:
        return await self.read()

    async def _refresh(self) -> None:
        try:
            value = await self.read()
        except Exception as exc:
            _unreadable(self, exc)
            value = None
        # Not under the lock: a collector thread may hold it while waiting on this loop.
        self.value, self.read_at = value, time.monotonic()


def _unreadable(watch: _Watch, exc: BaseException) -> None:
    import logging

    logger = logging.getLogger("avaturn_async")
    logger.debug("metrics: could not read %s %s: %r", watch.kind, watch.label, exc)


_WATCHES: list[_Watch] = []
_WATCHES_LOCK = threading.Lock()


@contextmanager
def watching(kind: str, label: str, read: Callable[[], Awaitable[Any]]) -> Iterator[None]:
    """Report what ``read()`` returns (on this event loop) as ``kind``'s gauges for
    the block: ``"inbox"`` (an inbox's ``InboxStats``) or ``"journal"`` (rows by state).

    ``read`` runs only when a metrics SDK collects. The same ``label`` watched
    twice (two workers of one inbox in a process) is reported once.
    """
    import asyncio

    watch = _Watch(kind=kind, label=label, read=read, loop=asyncio.get_running_loop())
    with _WATCHES_LOCK:
        _WATCHES.append(watch)
    try:
        yield
    finally:
        with _WATCHES_LOCK:
            _WATCHES.remove(watch)


def readings(kind: str) -> Iterator[tuple[str, Any]]:
    """``(label, reading)`` of every live watch of ``kind``, each label once."""
    with _WATCHES_LOCK:
        watches = [watch for watch in _WATCHES if watch.kind == kind]
    first: dict[str, _Watch] = {}
    for watch in watches:
        first.setdefault(watch.label, watch)
    for label, watch in first.items():
        value = watch.current()
        if value is not None:
            yield label, value
