"""``PostgresRateBudget``: one request rate shared by every process using the same database.

The generic cell rate algorithm needs one number per budget, the "theoretical
arrival time" ``tat``: a turn is booked by moving it one interval on. Here that
number is one row, moved atomically by each worker for a few turns at a time::

    UPDATE ... SET tat = greatest(tat, clock_timestamp()) + n * interval RETURNING tat

The answer, read as seconds from now on the database's clock, says when the ``n``
turns booked fall; the worker converts them to its own clock (machines need not
agree on the time) and hands them out to its requests in order. ``n`` covers about
:data:`BOOKED_AHEAD` seconds of the rate, so a worker makes a round trip per few
requests and books little it may not use.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import TYPE_CHECKING

from .._errors import ConfigurationError
from .._pacing import HEADROOM
from ._connector import PostgresConnector, connector_for
from ._tasks import AsyncLifecycle

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy


__all__ = ["BOOKED_AHEAD", "MIGRATIONS", "PostgresRateBudget"]

BOOKED_AHEAD = 0.05
"""Seconds of turns a worker books per round trip to the database."""

MIGRATIONS = [
    """
    CREATE TABLE avaturn_rate_budget (
        scope text PRIMARY KEY,
        tat   timestamptz NOT NULL
    )
    """,
    # 2: the pace learned by PostgresLearnedPace (_learned.py), booked on the same tat
    """
    ALTER TABLE avaturn_rate_budget
        ADD COLUMN rate       float8,
        ADD COLUMN window_end timestamptz,
        ADD COLUMN measured   float8,
        ADD COLUMN bound_only boolean NOT NULL DEFAULT false,
        ADD COLUMN probed_at  timestamptz,
        ADD COLUMN step       float8,
        ADD COLUMN held       boolean NOT NULL DEFAULT false,
        ADD COLUMN raised_from float8
    """,
]

_BOOK = """
INSERT INTO avaturn_rate_budget AS b (scope, tat)
VALUES ($1, clock_timestamp() + make_interval(secs => $2))
ON CONFLICT (scope) DO UPDATE
    SET tat = greatest(b.tat, clock_timestamp()) + make_interval(secs => $2)
RETURNING extract(epoch FROM b.tat - clock_timestamp())::float8
"""


class PostgresRateBudget(AsyncLifecycle):
    """A :class:`~avaturn_async.RateBudget` shared through PostgreSQL: at most ``rate``
    API requests per second across every client given a budget of the same scope.

    ``AvaturnClient(rate_limit=PostgresRateBudget(dsn, rate=50))``; use
    ``async with budget:`` (or ``await budget.start()`` / ``aclose()``); a budget used
    before it was started starts itself. ``avaturn onboard --rate N`` with a
    ``postgresql://`` journal makes one for its workers.

    Raises ``ConfigurationError`` for a bad rate or DSN, ``StorageUnavailableError``
    when no server answers (at start).
    """

    def __init__(
        self, dsn: str | PostgresConnector, *, rate: float, scope: str = "default"
    ) -> None:
        if not rate > 0:
            raise ConfigurationError("rate must be a positive number of requests per second")
        self.connector: PostgresConnector
        self._owned: bool
        self.connector, self._owned = connector_for(dsn, pool_size=2)
        self.rate: float = float(rate)
        self.scope: str = scope
        self._batch = max(1, round(self.rate * BOOKED_AHEAD))
        self._turns: collections.deque[float] = collections.deque()  # time.monotonic()
        self._lock = asyncio.Lock()
        self._started = False
        self.round_trips: int = 0
        """Bookings made in the database by this process."""

    def __repr__(self) -> str:
        return f"PostgresRateBudget(rate={self.rate:g}, scope={self.scope!r})"

    async def start(self) -> None:
        """Connect and create the budget's table if needed."""
        if not self._started:
            await self.connector.open()
            await self.connector.migrate("rate_budget", MIGRATIONS)
            self._started = True

    async def aclose(self) -> None:
        self._started = False
        if self._owned:
            await self.connector.aclose()

    async def acquire(self) -> None:
        async with self._lock:  # one booking at a time; turns are handed out in order
            if not self._turns:
                await self._book()
            turn = self._turns.popleft()
        delay = turn - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _book(self) -> None:
        await self.start()
        interval = 1.0 / (self.rate * HEADROOM)  # the room TokenBucket leaves, shared
        count = self._batch

        async def book(conn: PoolConnectionProxy) -> float:
            return float(await conn.fetchval(_BOOK, self.scope, count * interval))

        sent = time.monotonic()
        end_in = await self.connector.run("booking request turns", book)
        self.round_trips += 1
        # The database read its clock about halfway through the round trip.
        end = (sent + time.monotonic()) / 2 + end_in
        self._turns.extend(end - (count - i) * interval for i in range(count))
