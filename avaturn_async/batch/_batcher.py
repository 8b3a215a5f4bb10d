"""Blocking calls in a worker thread, many per thread hop.

A hop to a worker thread costs far more than a small blocking call (a journal
write, reading a small photo), so calls that tasks make at about the same time
are run together: the first caller of a batch leads it; calls made while the
batch waits for its turn join it; when the previous batch is done, the leader
runs the whole batch in one hop and every caller gets its own result. Batches
run one after the other, so the calls of one batcher never overlap (a single
SQLite connection relies on that).

It runs once or more per onboarded row, so it uses asyncio directly (aiohttp
ties the SDK to asyncio already): the loop's default executor instead of
``anyio.to_thread`` (30 µs of CPU per hop instead of 46, measured alone on one
core) and ``asyncio.Event`` instead of anyio's wrapper of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

import anyio
import attrs

__all__ = ["Call", "ThreadBatcher", "run_each"]

T = TypeVar("T")


@attrs.define(eq=False)
class Call(Generic[T]):
    """One queued call and, once its batch ran, its outcome."""

    fn: Callable[[], T]
    result: T | None = None
    error: Exception | None = None
    ran: bool = False

    def run(self) -> None:
        try:
            self.result = self.fn()
        except Exception as exc:
            self.error = exc
        self.ran = True


def run_each(calls: list[Call[Any]]) -> None:
    """The default way to run a batch: each call on its own."""
    for call in calls:
        call.run()


@attrs.define(eq=False)
class _Batch:
    calls: list[Call[Any]] = attrs.field(factory=list)
    turn: asyncio.Event = attrs.field(factory=asyncio.Event)
    done: asyncio.Event = attrs.field(factory=asyncio.Event)


class ThreadBatcher:
    """Runs blocking callables in a worker thread, batched (module docstring).

    ``execute`` runs one batch (in the worker thread); it must record each
    call's outcome, as :func:`run_each` does. ``gather`` is how long a batch
    that could run at once waits for more calls (a little latency for fewer hops).
    """

    def __init__(
        self, execute: Callable[[list[Call[Any]]], None] = run_each, *, gather: float = 0.0
    ) -> None:
        self._execute = execute
        self._gather = gather
        self._open: _Batch | None = None
        self._busy = False
        self.batches = 0

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` in the worker thread and return its result (or raise).

        Once queued, the call runs even if the caller is cancelled (a write that
        was decided must still be made); the leader is shielded, since leaving
        would strand its batch.
        """
        call: Call[T] = Call(fn)
        batch, leader = self._join(call)
        if leader:
            with anyio.CancelScope(shield=True):
                await self._lead(batch)
        else:
            await batch.done.wait()
        if call.error is not None:
            raise call.error
        return cast(T, call.result)

    def _join(self, call: Call[Any]) -> tuple[_Batch, bool]:
        batch = self._open
        leader = batch is None
        if batch is None:
            batch = self._open = _Batch()
            if not self._busy:
                batch.turn.set()
        batch.calls.append(call)
        return batch, leader

    async def _lead(self, batch: _Batch) -> None:
        if batch.turn.is_set():
            # Nothing to wait for: let others join first (``gather`` 0 is one checkpoint).
            await asyncio.sleep(self._gather)
        else:
            await batch.turn.wait()
        self._open = None  # later calls open the next batch
        self._busy = True
        try:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._execute, batch.calls)
            self.batches += 1
        except Exception as exc:  # the executor itself broke: fail what it did not run
            for call in batch.calls:
                if not call.ran:
                    call.error = exc
        finally:
            self._busy = False
            batch.done.set()
            if self._open is not None:
                self._open.turn.set()
