"""One SQLite connection owned by one worker thread, with group-committed writes.

:class:`SQLiteThread` opens a handle on a SQLite file (anything with a
``connection`` and a ``close()``: the onboarding journal, the webhook inbox's
table) in a thread of its own, and runs every later call on it in that same
thread, in the order they were made: the connection is never used by two
threads, and async code never blocks on the file. Calls are queued by async
callers (of any number of event loops) and answered through each caller's loop.

Writes are *group-committed*: the writes that queued while the thread was busy
(with the previous commit, typically its ``fsync``) run together in one
``BEGIN IMMEDIATE ... COMMIT`` transaction. Under load each commit, and each
fsync, carries every write that was waiting; an idle caller pays one commit as
before. ``IMMEDIATE`` takes the write lock up front, so processes sharing a
file serialize instead of both reading the same rows before one of them writes.

Durability. Files run in WAL mode: a commit appends to the write-ahead log,
which SQLite replays on the next open, so a committed transaction survives the
process being killed (``kill -9``) and one not committed is rolled back whole.
What an OS crash or power loss keeps depends on ``PRAGMA synchronous``: with
``FULL`` every ``COMMIT`` fsyncs the log before it returns; with ``NORMAL`` the
log is synced only at checkpoints, so the last commits can be lost. Grouping
keeps that reasoning and pays one fsync per *group*: a write's caller gets its
answer only after the ``COMMIT`` holding it (and that commit's fsync) returned,
so whatever a caller acknowledges onwards was committed (and, with ``FULL``,
synced) first. A group that fails (a bad write, disk full, an I/O error) is
rolled back as a whole and each of its writes is run again in a transaction of
its own: one bad write fails alone, and a write reported failed was never
stored.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar

import anyio

__all__ = ["Connected", "SQLiteThread", "transaction"]

P = ParamSpec("P")
T = TypeVar("T")


class Connected(Protocol):
    """What :class:`SQLiteThread` owns: a handle on one SQLite connection."""

    @property
    def connection(self) -> sqlite3.Connection: ...

    def close(self) -> None: ...


H = TypeVar("H", bound=Connected)


@contextlib.contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """One atomic ``BEGIN IMMEDIATE ... COMMIT``; inside an open transaction, joins it
    (a method that must be atomic on its own also runs inside a group commit)."""
    if connection.in_transaction:
        yield
        return
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:  # a failed COMMIT may leave it open
            connection.execute("ROLLBACK")
        raise


class _Call:
    """One queued call and, once it ran, its outcome."""

    __slots__ = ("args", "error", "fn", "future", "kwargs", "result", "write")

    def __init__(self, fn: Callable[..., Any], args: Any, kwargs: Any, write: bool) -> None:
        self.fn, self.args, self.kwargs, self.write = fn, args, kwargs, write
        self.future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.result: Any = None
        self.error: Exception | None = None


class _Server(Generic[H]):
    """The worker thread's side. It holds no reference to its :class:`SQLiteThread`, so
    an unclosed one that is garbage-collected stops its thread (``weakref.finalize``)."""

    def __init__(self, open_handle: Callable[[], H], gather: float, close_handle: bool) -> None:
        self.queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self.opened: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.commits = 0
        self._open_handle, self._gather, self._close_handle = open_handle, gather, close_handle

    def serve(self) -> None:
        try:
            handle = self._open_handle()
        except BaseException as exc:
            self.opened.set_exception(exc)
            return
        self.opened.set_result(None)
        running = True
        while running:
            calls = self._take()
            running = None not in calls  # close() queues its stop last
            done = [call for call in calls if call is not None]
            writes: list[_Call] = []  # in queue order: reads alone, consecutive writes grouped
            for call in done:
                if call.write:
                    writes.append(call)
                    continue
                self._commit(handle, writes)
                writes = []
                try:
                    call.result = call.fn(handle, *call.args, **call.kwargs)
                except Exception as exc:
                    call.error = exc
            self._commit(handle, writes)
            _answer(done)
        if self._close_handle:
            handle.close()

    def _take(self) -> list[_Call | None]:
        """Wait for a call, then take every other one waiting."""
        calls = [self.queue.get()]
        if self._gather and calls[0] is not None:
            time.sleep(self._gather)  # a little latency for fewer commits
        with contextlib.suppress(queue.Empty):
            while True:
                calls.append(self.queue.get_nowait())
        return calls

    def _commit(self, handle: H, writes: list[_Call]) -> None:
        """One transaction; if it fails, each write again on its own, so a bad one fails alone."""
        if not writes:
            return
        try:
            with transaction(handle.connection):
                for call in writes:
                    call.result = call.fn(handle, *call.args, **call.kwargs)
            self.commits += 1
        except Exception as exc:
            if len(writes) == 1:
                writes[0].error = exc
                return
            for call in writes:
                self._commit(handle, [call])


def _answer(calls: list[_Call]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[_Call]] = {}
    for call in calls:
        by_loop.setdefault(call.future.get_loop(), []).append(call)
    for loop, answered in by_loop.items():  # one wake-up per loop, not per call
        with contextlib.suppress(RuntimeError):  # that loop is closed: no one waits
            loop.call_soon_threadsafe(_settle, answered)


def _settle(calls: list[_Call]) -> None:
    """Hand each caller its outcome (in the caller's event loop)."""
    for call in calls:
        if call.future.done():  # the caller left (a read it no longer waits for)
            continue
        if call.error is not None:
            call.future.set_exception(call.error)
        else:
            call.future.set_result(call.result)


class SQLiteThread(Generic[H]):
    """A handle on a SQLite file, used by one worker thread only (module docstring).

    ``open_handle`` runs in the thread; its error is raised here. ``gather``
    is how long the thread, woken by a write, waits for more before committing
    (fewer commits for a little latency where commits are not fsync-bound).
    ``close_handle=False`` leaves the handle open at :meth:`close` (it belongs
    to the caller).
    """

    def __init__(
        self,
        open_handle: Callable[[], H],
        *,
        name: str = "avaturn-sqlite",
        gather: float = 0.0,
        close_handle: bool = True,
    ) -> None:
        self._server = _Server(open_handle, gather, close_handle)
        self._lock = threading.Lock()
        self._closed = False
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._server.serve, name=name, daemon=True)
        self._thread.start()
        self._server.opened.result()
        weakref.finalize(self, self._server.queue.put, None)

    @property
    def commits(self) -> int:
        """Transactions of writes committed so far: fewer than writes under load."""
        return self._server.commits

    async def write(
        self, fn: Callable[Concatenate[H, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Commit ``fn(handle, *args, **kwargs)`` (possibly with others) and return its result.

        Once called, the write is made and waited for even if the caller is
        cancelled: its outcome must be known before anything goes on from it.
        """
        future = self._submit(fn, args, kwargs, write=True)
        with anyio.CancelScope(shield=True):
            result = await future
        return result

    async def read(
        self, fn: Callable[Concatenate[H, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``fn(handle, *args, **kwargs)`` in the thread, outside any transaction."""
        return await self._submit(fn, args, kwargs, write=False)

    def _submit(
        self, fn: Callable[..., T], args: Any, kwargs: Any, *, write: bool
    ) -> asyncio.Future[T]:
        call = _Call(fn, args, kwargs, write)
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
            if self._pid != os.getpid():  # the thread did not survive a fork: it would hang
                raise RuntimeError("a SQLite store cannot cross a fork: open it in this process")
            self._server.queue.put(call)
        return call.future

    def close(self) -> None:
        """Finish the queued calls, close the handle and stop the thread (idempotent, blocking).
        Later calls raise :class:`sqlite3.ProgrammingError`, as a closed connection would."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._server.queue.put(None)
        self._thread.join()
