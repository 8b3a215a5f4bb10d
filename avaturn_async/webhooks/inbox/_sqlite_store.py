"""The async SQLite store of the inbox: the table's calls in threads, inserts group-committed.

Durability reasoning (SIGKILL, power loss, failed commits): ``_inbox_sqlite``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from anyio.lowlevel import current_token

from ..._errors import ConfigurationError
from ..._redact import looks_like_url, redact_location
from ._group import GroupCommit
from ._sqlite import SQLiteInboxTable, Synchronous
from ._store import Claimed, Delivery, InboxRecord, InboxStatus

__all__ = ["SQLiteInboxStore"]

T = TypeVar("T")


class SQLiteInboxStore:
    """The :class:`~avaturn_async.webhooks.InboxStore` of one SQLite file (WAL).

    Concurrent :meth:`insert` calls (of one event loop) are group-committed
    (see ``_inbox_sqlite`` for why that keeps the durability guarantee). Table calls run in
    worker threads, one at a time; a commit that has started is waited for,
    even when the caller is cancelled. A worker in the same process is woken
    by each stored delivery; one in another process polls.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "full",
        create: bool = True,
        busy_timeout: float = 10.0,
    ) -> None:
        if looks_like_url(path):  # never a file of that name, and never printed as one
            raise ConfigurationError(
                f"an inbox URL is not a SQLite file: {redact_location(str(path))!r} "
                "(for PostgreSQL use avaturn_async.postgres.PostgresInbox)"
            )
        self.path = path
        self.table: SQLiteInboxTable = SQLiteInboxTable(
            path, synchronous=synchronous, create=create, busy_timeout=busy_timeout
        )
        # One group per event loop: a store may serve, say, uvicorn's loop in a
        # thread and the application's loop (the table itself is thread-safe).
        self._groups: dict[object, GroupCommit[Delivery, int | None]] = {}
        self._wake: tuple[object, anyio.Event] | None = None

    def __repr__(self) -> str:
        return f"SQLiteInboxStore({os.fspath(self.path)!r})"

    @property
    def batches(self) -> int:
        """Insert transactions committed (or failed) so far: fewer than inserts under load."""
        return sum(group.batches for group in self._groups.values())

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))

    async def _insert_batch(self, deliveries: Sequence[Delivery]) -> list[int | None]:
        ids = await self._call(self.table.insert_many, deliveries)
        wake = self._wake
        if wake is not None and wake[0] == current_token() and any(i is not None for i in ids):
            wake[1].set()
        return ids

    async def insert(self, delivery: Delivery) -> int | None:
        token = current_token()
        group = self._groups.get(token)
        if group is None:
            group = self._groups[token] = GroupCommit(self._insert_batch)
        return await group.submit(delivery)

    async def claim(
        self, *, now: float, lease: float, limit: int, max_attempts: int, token: str
    ) -> list[Claimed]:
        return await self._call(
            self.table.claim,
            now=now,
            lease=lease,
            limit=limit,
            max_attempts=max_attempts,
            token=token,
        )

    async def renew(self, claimed: Claimed, *, now: float, lease: float) -> bool:
        return await self._call(self.table.renew, claimed, now=now, lease=lease)

    async def complete(self, claimed: Claimed, *, now: float) -> bool:
        return await self._call(self.table.complete, claimed, now=now)

    async def fail(
        self, claimed: Claimed, *, now: float, error: str, retry_at: float | None
    ) -> bool:
        return await self._call(self.table.fail, claimed, now=now, error=error, retry_at=retry_at)

    async def release(self, claimed: Claimed, *, now: float) -> bool:
        return await self._call(self.table.release, claimed, now=now)

    async def wait_for_work(self, max_wait: float) -> None:
        token = current_token()
        if self._wake is None or self._wake[0] != token:
            self._wake = (token, anyio.Event())
        wake = self._wake[1]
        with anyio.move_on_after(max_wait):
            await wake.wait()
        if wake.is_set():  # consumed; a store since then sets the new one
            self._wake = (token, anyio.Event())

    async def counts(self) -> dict[str, int]:
        return await self._call(self.table.counts)

    async def records(self, *, status: InboxStatus | None, limit: int) -> list[InboxRecord]:
        return await self._call(self.table.records, status=status, limit=limit)

    async def replay(self, ids: Iterable[int] | None, *, now: float) -> list[int]:
        return await self._call(self.table.replay, ids, now=now)

    async def purge(self, *, finished_before: float) -> int:
        return await self._call(self.table.purge, finished_before=finished_before)

    def close(self) -> None:
        self.table.close()

    async def aclose(self) -> None:
        self.close()
