"""The async SQLite store of the inbox: the table confined to one worker thread, its
writes group-committed (``avaturn_async._sqlite``).

Durability reasoning (SIGKILL, power loss, failed commits): ``inbox._sqlite``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import partial

import anyio
from anyio.lowlevel import current_token

from ..._errors import ConfigurationError
from ..._redact import looks_like_url, redact_location
from ..._sqlite import SQLiteThread
from ._sqlite import SQLiteInboxTable, Synchronous
from ._stats import InboxStats
from ._store import Claimed, Delivery, InboxRecord, InboxStatus

__all__ = ["SQLiteInboxStore"]


class SQLiteInboxStore:
    """The :class:`~avaturn_async.webhooks.InboxStore` of one SQLite file (WAL).

    Concurrent :meth:`insert` calls, of any event loop, are group-committed
    (see ``inbox._sqlite`` for why that keeps the durability guarantee). Table
    calls run in one worker thread, in order; a write that has started is
    waited for, even when the caller is cancelled. A worker in the same process
    and event loop is woken by each stored delivery; one elsewhere polls.
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
        opener = partial(
            SQLiteInboxTable, path, synchronous=synchronous, create=create,
            busy_timeout=busy_timeout,
        )
        self._db = SQLiteThread(opener, name="avaturn-inbox")
        self._wake: tuple[object, anyio.Event] | None = None

    def __repr__(self) -> str:
        return f"SQLiteInboxStore({os.fspath(self.path)!r})"

    @property
    def label(self) -> str:
        """The file, as metrics and logs name this inbox."""
        return os.fspath(self.path)

    @property
    def batches(self) -> int:
        """Write transactions committed so far: fewer than inserts under load."""
        return self._db.commits

    async def insert(self, delivery: Delivery) -> int | None:
        new_id = await self._db.write(SQLiteInboxTable.insert, delivery)
        wake = self._wake
        if new_id is not None and wake is not None and wake[0] == current_token():
            wake[1].set()
        return new_id

    async def claim(
        self, *, now: float, lease: float, limit: int, max_attempts: int, token: str
    ) -> list[Claimed]:
        claim = SQLiteInboxTable.claim
        return await self._db.write(
            claim, now=now, lease=lease, limit=limit, max_attempts=max_attempts, token=token
        )

    async def renew(self, claimed: Claimed, *, now: float, lease: float) -> bool:
        return await self._db.write(SQLiteInboxTable.renew, claimed, now=now, lease=lease)

    async def complete(self, claimed: Claimed, *, now: float) -> bool:
        return await self._db.write(SQLiteInboxTable.complete, claimed, now=now)

    async def fail(
        self, claimed: Claimed, *, now: float, error: str, retry_at: float | None
    ) -> bool:
        return await self._db.write(
            SQLiteInboxTable.fail, claimed, now=now, error=error, retry_at=retry_at
        )

    async def release(self, claimed: Claimed, *, now: float) -> bool:
        return await self._db.write(SQLiteInboxTable.release, claimed, now=now)

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
        return await self._db.read(SQLiteInboxTable.counts)

    async def stats(self, *, now: float) -> InboxStats:
        return await self._db.read(SQLiteInboxTable.stats, now=now)

    async def ping(self) -> None:
        """One trivial query, queued like every other: a store stuck on a lock times out."""
        await self._db.read(SQLiteInboxTable.ping)

    async def records(self, *, status: InboxStatus | None, limit: int) -> list[InboxRecord]:
        return await self._db.read(SQLiteInboxTable.records, status=status, limit=limit)

    async def replay(self, ids: Iterable[int] | None, *, now: float) -> list[int]:
        return await self._db.write(SQLiteInboxTable.replay, ids, now=now)

    async def purge(self, *, finished_before: float) -> int:
        return await self._db.write(SQLiteInboxTable.purge, finished_before=finished_before)

    def close(self) -> None:
        self._db.close()

    async def aclose(self) -> None:
        self.close()
