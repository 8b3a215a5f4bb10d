"""``PostgresLearnedPace``: one pace, learned from 429s, shared by every process using a database.

Workers that each learned a pace of their own paced at their own share of the limit,
and when the others stopped, the last one took several windows to probe its way up
to the whole of it. Here the pace is one row of ``avaturn_rate_budget`` (the table
of :class:`~avaturn_async.postgres.PostgresRateBudget`): its ``tat`` is booked by
every worker, as a configured budget's is, at the ``rate`` learned into the same
row, so the rate is the whole limit whoever is left to use it.

The arithmetic is pure (``avaturn_async._shared_pace``), on the database's clock.
Every change (a 429's window, a probe upward, a rate the server's headers tell) is
made by a background loop in a transaction that locks the row, so workers hearing
of the same 429 record it once. The worker that records a new window ``NOTIFY``s
its end: a window that measures needs every worker's part, and a 429 that comes
just as its window ends leaves no pause for a shared gate to tell. Booking stays
one statement, which also notes whether a request had to wait for its turn (a
window worth probing upward) and returns the row, so every worker follows the rate
within a booking or two.

Before the first 429 nothing is booked (no round trip per request). A worker that
cannot reach the database paces itself alone at the rate it last knew.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .._pacing import DEFAULT_WINDOW, Gcra, told_rate
from .._shared_pace import Share, SharedPace, heard_refusal, probe, told
from ._budget import BOOKED_AHEAD, MIGRATIONS
from ._connector import PostgresConnector, connector_for
from ._learned_sql import BOOK, FORGET, LOCK, WRITE, columns, pace_of
from ._tasks import BackgroundStart

if TYPE_CHECKING:
    from asyncpg import Record
    from asyncpg.pool import PoolConnectionProxy

    from ._listen import Subscription
    from ._tasks import BackgroundTask

__all__ = ["CHANNEL", "FORGET_AFTER", "PostgresLearnedPace"]

FORGET_AFTER = 600.0
"""A learned rate nobody booked by for this many seconds is learned again when a
worker starts: the plan behind the API key may have changed."""
ALONE_FOR = 1.0
"""Seconds a worker paces alone after a booking failed, before it tries the database again."""

CHANNEL = "avaturn_pace"
"""Where a worker that recorded a new window says when it ends: ``"<end> <scope>"``,
the end in seconds since the epoch on the database's clock."""

_log = logging.getLogger("avaturn_async.postgres")
Change = Callable[[SharedPace, float], "SharedPace | None"]
"""A change of the pace: the pace and the database's clock now, to the new pace."""

def _read(pace: SharedPace, now: float) -> None:
    """No change: the row as it is (read, and adopted by the worker)."""
    return None


class PostgresLearnedPace(BackgroundStart):
    """A rate budget learned from the API's 429s and shared through PostgreSQL: one
    pace for every client given one of the same scope, in any process.

    ::

        async with PostgresGate(dsn) as gate, PostgresLearnedPace(dsn) as pace:
            client = AvaturnClient(rate_limit=pace, adaptive=AdaptiveConcurrency(gate=gate))

    Nothing is paced until the server first answers 429. Then the rate the server
    admitted over the window the 429's ``Retry-After`` ends (the sum of what each
    sharer was admitted) is the rate of all of them, paced at 97 % of it: one row
    every sharer books its turns from, as from a :class:`PostgresRateBudget`. The
    next window that ends in a 429 measures it again (the first may have begun
    before any request); later ones slow it by 5 % each, and each window that held
    requests back and ended without one raises it, by 2 % and then by doubling
    steps. When some sharers stop, the others book at the whole rate at once.

    Give the clients a shared :class:`PostgresGate` too: a sharer hears of another's
    429 through it and adds what it was admitted. ``avaturn onboard`` with a
    ``postgresql://`` journal and no ``--rate`` makes one for its workers. A rate
    nobody booked by for ten minutes is learned again when a sharer starts (the plan
    behind the key may have changed); a sharer that cannot reach the database paces
    alone at the rate it last knew. Use ``async with pace:`` (or ``await
    pace.start()`` / ``aclose()``).

    Args:
        dsn: ``postgresql://...``, or a :class:`PostgresConnector` shared with the
            process's other backends.
        scope: what is rate limited together (one API key); a
            :class:`PostgresRateBudget` of the same scope books from the same row.

    Raises ``ConfigurationError`` for a bad DSN, ``StorageUnavailableError`` when no
    server answers (at start).
    """

    _what = "shared learned pace"

    def __init__(self, dsn: str | PostgresConnector, *, scope: str = "default") -> None:
        super().__init__()
        self.connector: PostgresConnector
        self._owned: bool
        self.connector, self._owned = connector_for(dsn, pool_size=2)
        self.scope: str = scope
        self._pace = SharedPace()
        self._share = Share()
        self._offset = 0.0  # the database's clock minus time.monotonic(), last measured
        self._turns: collections.deque[float] = collections.deque()  # time.monotonic()
        self._lock = asyncio.Lock()
        self._changes: collections.deque[Change] = collections.deque()
        self._wake = asyncio.Event()
        self._probing = False
        self._reading = False
        self._read_later: asyncio.TimerHandle | None = None
        self._told_at = -math.inf
        self._alone: Gcra | None = None
        self._alone_until = -math.inf
        self._loop: BackgroundTask | None = None
        self._subscription: Subscription | None = None
        self._starting: asyncio.Lock | None = None
        self.round_trips: int = 0
        """Bookings made in the database by this process."""
        self.changes: int = 0
        """Changes of the shared pace written by this process."""
        self.applied: int = 0
        """News (a 429's window, a probe, a rate told by headers) this process brought
        to the database: written, found there already, or kept to itself when the
        database could not be reached."""

    def __repr__(self) -> str:
        rate = "None" if self.rate is None else f"{self.rate:.3g}"
        return f"PostgresLearnedPace(scope={self.scope!r}, rate={rate})"

    @property
    def rate(self) -> float | None:
        """API requests per second paced to, as this process last read it; ``None``
        while nothing is paced."""
        return self._pace.rate

    @property
    def paced(self) -> bool:
        """Whether :meth:`acquire` may wait: a rate is known."""
        return self._pace.rate is not None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect, create or upgrade the table, and read the pace learned so far."""
        self._started = True  # no background start once this one began
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._loop is not None:
                return
            await self.connector.open()
            await self.connector.migrate("rate_budget", MIGRATIONS)

            async def forget(conn: PoolConnectionProxy) -> None:
                await conn.execute(FORGET, self.scope, FORGET_AFTER)

            await self.connector.run("reading the learned rate", forget)
            await self._apply(_read)
            self._loop = self.connector.spawn(self._change_loop)
            self._subscription = await self.connector.subscribe(
                CHANNEL, self._notified, self._catch_up
            )

    async def aclose(self) -> None:
        await self._stop_background()
        if self._read_later is not None:
            self._read_later.cancel()
            self._reading = False
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await self.connector.unsubscribe(subscription)
        loop, self._loop = self._loop, None
        if loop is not None:
            await loop.stop()
        if self._owned:
            await self.connector.aclose()

    # ------------------------------------------------------------ the client's side

    def observe(
        self, status: int, headers: Mapping[str, str], retry_after: float | None, sent_at: float
    ) -> None:
        """An API answer to a request sent at ``sent_at`` (``time.monotonic()``)."""
        if self._share.first_window:
            self._share.sent(sent_at)
        if status == 429:
            self.refused(retry_after)
            return
        self._share.admitted()
        rate = told_rate(headers)
        if rate is not None and time.monotonic() - self._told_at >= DEFAULT_WINDOW:
            self._told_at = time.monotonic()  # once a window: the same news from every answer
            self._queue(lambda pace, db_now: told(pace, db_now, rate))

    def refused(self, retry_after: float | None) -> None:
        """A 429 here, or heard of through a shared gate: its window ended."""
        now = time.monotonic()
        self._heard(now, self._share.refused(now, retry_after))

    def _notified(self, payload: str) -> None:
        """A sharer recorded a new window: this worker adds its part if it has not."""
        end, _, scope = payload.partition(" ")
        if scope == self.scope:
            now = time.monotonic()
            self._heard(now, self._share.ended(now, float(end) - self._offset))

    def _heard(self, now: float, heard: tuple[float, float] | None) -> None:
        if heard is None:
            return  # this window was heard of already
        end, share = heard
        self._turns.clear()  # booked before the pause: spent
        self._queue(
            lambda pace, db_now: heard_refusal(
                pace, now + self._offset, end + self._offset, share
            )
        )

    async def _catch_up(self) -> None:
        """Listening (again): the rate may have changed meanwhile."""
        self._queue(_read)

    async def acquire(self) -> None:
        """Wait for this request's turn (at once while nothing is paced)."""
        while self._pace.rate is not None:
            async with self._lock:  # one booking at a time; turns are handed out in order
                if not self._turns:
                    await self._book_or_pace_alone()
                turn = self._turns.popleft() if self._turns else None
            if turn is None:
                return
            delay = turn - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            # A 429 heard while this request waited: its turn falls in the server's
            # pause, where it would be refused. It waits for the pause's end and books
            # a turn again, behind the requests paced from then on.
            pause = self._share.window_end - time.monotonic()
            if pause <= 0:
                return
            await asyncio.sleep(pause)

    # ------------------------------------------------------------ the database's side

    async def _book_or_pace_alone(self) -> None:
        now = time.monotonic()
        if now >= self._alone_until:
            try:
                await self._book()
                self._alone_until = -math.inf
                return
            except Exception as exc:
                # An outage is logged once by the connector; anything else once here.
                if self._alone_until == -math.inf and not self.connector.outage.down:
                    _log.warning("pacing alone at the learned rate: %s", exc)
                self._alone_until = now + ALONE_FOR
        rate = self._pace.rate
        if rate is None:
            return
        if self._alone is None:
            self._alone = Gcra(rate)
        self._alone.rate = rate
        self._turns.append(now + self._alone.reserve(now))

    async def _book(self) -> None:
        if self._loop is None:
            await self.start()
        rate = self._pace.rate
        count = max(1, round((rate or 1.0) * BOOKED_AHEAD))

        async def book(conn: PoolConnectionProxy) -> Record | None:
            row: Record | None = await conn.fetchrow(BOOK, self.scope, float(count))
            return row

        sent = time.monotonic()
        # Tried once: a request waits for no reconnect, it paces alone meanwhile.
        row = await self.connector.run("booking request turns", book, deadline=0)
        self.round_trips += 1
        if row is None:  # learned again from the start (forgotten, or reset by hand)
            self._pace = SharedPace()
            return
        db_now = self._read_clock(row["now"], sent)
        self._pace = pace_of(row)
        rate, end = row["rate"], row["tat"] - self._offset
        self._turns.extend(end - (count - i) / rate for i in range(count))
        if not self._probing and probe(self._pace, db_now) is not None:
            self._probing = True
            self._queue(self._probe)

    def _read_clock(self, db_now: float, sent: float) -> float:
        """Note the database's clock, read about halfway through a round trip."""
        self._offset = db_now - (sent + time.monotonic()) / 2
        return float(db_now)

    def _probe(self, pace: SharedPace, now: float) -> SharedPace | None:
        self._probing = False
        return probe(pace, now)

    def _queue(self, change: Change) -> None:
        self._changes.append(change)
        self._wake.set()
        self._start_in_background()

    async def _change_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._changes:
                change = self._changes.popleft()
                try:
                    await self._apply(change)
                except Exception as exc:
                    if not self.connector.outage.down:  # an outage: one line, the connector's
                        _log.warning("could not share a change of the learned rate: %s", exc)
                    now = time.monotonic() + self._offset
                    self._pace = change(self._pace, now) or self._pace  # this process's, then
                if change is not _read:
                    self.applied += 1
                self._read_when_measured()

    def _read_when_measured(self) -> None:
        """Nothing learned here while a window measures (this worker, admitted nothing,
        added nothing): read the row when the window ends, when every sharer has added
        its part, rather than going unpaced until the next 429."""
        pace, end = self._pace, self._pace.window_end
        if pace.rate is not None or pace.measured is None or end is None or self._reading:
            return
        self._reading = True
        delay = max(0.0, end - self._offset - time.monotonic())
        self._read_later = asyncio.get_running_loop().call_later(delay, self._read_again)

    def _read_again(self) -> None:
        self._reading = False
        self._queue(_read)

    async def _apply(self, change: Change) -> None:
        """``change`` made to the row, locked: at most one worker records each window."""

        async def transact(conn: PoolConnectionProxy) -> SharedPace:
            async with conn.transaction():
                sent = time.monotonic()
                row = await conn.fetchrow(LOCK, self.scope)
                if row is None:
                    return SharedPace()  # the row was deleted: start() makes it again
                db_now = self._read_clock(row["now"], sent)
                pace = pace_of(row)
                changed = change(pace, db_now)
                if changed is None or changed == pace:
                    return pace
                await conn.execute(WRITE, self.scope, *columns(changed))
                if changed.window_end is not None and changed.window_end != pace.window_end:
                    # A new window: every sharer hears of it, gate or no gate (on commit).
                    news = f"{changed.window_end!r} {self.scope}"
                    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, news)
                self.changes += 1
                return changed

        self._pace = await self.connector.run("learning the shared rate", transact, deadline=2.0)
