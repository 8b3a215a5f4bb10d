"""Group commit: concurrent callers share one commit.

``GroupCommit(commit_batch)`` turns ``await submit(item)`` calls into calls of
``commit_batch(items)``, one at a time. While a batch is being committed, new
items queue; when it returns, everything that queued meanwhile goes out as the
next batch. So under load each commit (and each fsync) carries every item that
was waiting at that moment, and an idle caller pays one commit as before.

Guarantees, per item:

* ``submit`` returns only after the batch holding the item has committed
  (``commit_batch`` returned); it returns the item's own result;
* if ``commit_batch`` raises, every ``submit`` of that batch raises that
  exception: the batch is one transaction, so none of its items is stored;
* ``commit_batch`` may answer an item with an exception instead of a result:
  that item alone was not stored (say, a value the database cannot hold), and
  its ``submit`` raises it while the others of the batch succeed;
* ``submit`` is shielded from cancellation: a started commit is waited for
  (its outcome must be known before anything is acknowledged or retried).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import anyio

__all__ = ["GroupCommit"]

I = TypeVar("I")  # noqa: E741
R = TypeVar("R")


class _Waiter(Generic[I, R]):
    __slots__ = ("done", "error", "item", "result", "wake")

    def __init__(self, item: I) -> None:
        self.item = item
        self.wake = anyio.Event()
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[I, R]):
    """Batch concurrent ``submit(item)`` calls into single ``commit_batch(items)`` calls.

    ``commit_batch`` must return one result per item, in order (an exception
    instance for an item that failed alone). One event loop only.
    """

    def __init__(
        self, commit_batch: Callable[[Sequence[I]], Awaitable[Sequence[R | Exception]]]
    ) -> None:
        self._commit_batch = commit_batch
        self._queue: list[_Waiter[I, R]] = []
        self._leading = False
        self.batches: int = 0
        """Batches committed (or failed) so far; for tests and benchmarks."""

    async def submit(self, item: I) -> R:
        """Commit ``item`` with whatever else is waiting; its result once committed."""
        waiter: _Waiter[I, R] = _Waiter(item)
        self._queue.append(waiter)
        with anyio.CancelScope(shield=True):
            if self._leading:
                await waiter.wake.wait()
            else:
                self._leading = True
            if not waiter.done:  # first in line, or promoted to lead the next batch
                await self._lead()
        if waiter.error is not None:
            raise waiter.error
        return waiter.result  # type: ignore[return-value]

    async def _lead(self) -> None:
        batch, self._queue = self._queue, []
        try:
            results = await self._commit_batch([waiter.item for waiter in batch])
            if len(results) != len(batch):
                raise RuntimeError("commit_batch returned a wrong number of results")
            for waiter, result in zip(batch, results, strict=True):
                if isinstance(result, Exception):
                    waiter.error = result  # this item alone failed
                else:
                    waiter.result = result
        except BaseException as exc:  # every item of a failed batch fails
            for waiter in batch:
                waiter.error = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            self.batches += 1
            for waiter in batch:
                waiter.done = True
                waiter.wake.set()
            if self._queue:
                self._queue[0].wake.set()  # hand the lead to the next batch's first item
            else:
                self._leading = False
