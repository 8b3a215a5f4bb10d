"""``PostgresLearnedPace``: one pace learned from 429s, shared through a real PostgreSQL.

Several paces on one database stand for the workers of a batch; a 429 is told to
them as a client and its shared gate would (``observe`` and ``refused``). What is
checked is what the database decided (the rate, the turns booked from it), never
how long anything took; waits for the background loop have a deadline.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio
import asyncpg
import pytest

from avaturn_async import AdaptiveConcurrency, AvaturnClient, RetryPolicy
from avaturn_async._pacing import DECREASE, SAFETY
from avaturn_async.batch import write_sample_manifest
from avaturn_async.postgres import (
    PostgresConnector,
    PostgresGate,
    PostgresLearnedPace,
    PostgresRateBudget,
    _budget,
    _learned,
    schema_version,
)
from avaturn_async.testing import AvaturnEmulator, RateLimit
from tests.pg_server import PostgresServer

ROOT = Path(__file__).resolve().parents[1]


class RecordingPace(PostgresLearnedPace):
    """Notes the turns of each booking (times on this process's monotonic clock)."""

    batches: list[list[float]]

    async def _book(self) -> None:
        before = len(self._turns)
        await super()._book()
        self.batches = [*getattr(self, "batches", []), list(self._turns)[before:]]

    @property
    def booked(self) -> list[float]:
        return [turn for batch in self.batches for turn in batch]


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 - the background loop sets no event
            await anyio.sleep(0.005)


async def refuse(
    paces: Sequence[PostgresLearnedPace], admitted: list[int], window: float
) -> None:
    """Each pace was admitted its count of requests, sent from now on, and then all hear
    of one 429 whose window ends ``window`` seconds on; returns once each recorded it."""
    sent = time.monotonic()
    for pace, count in zip(paces, admitted, strict=True):
        for _ in range(count):
            pace.observe(200, {}, None, sent)
    applied = [pace.applied for pace in paces]
    for pace in paces:
        pace.refused(window)
    await until(lambda: all(p.applied > a for p, a in zip(paces, applied, strict=True)))


async def stored_rate(dsn: str, scope: str = "default") -> float | None:
    conn = await asyncpg.connect(dsn)
    try:
        rate = await conn.fetchval("SELECT rate FROM avaturn_rate_budget WHERE scope = $1", scope)
    finally:
        await conn.close()
    return None if rate is None else float(rate)


async def test_the_rate_one_worker_learns_paces_the_others(postgres_dsn: str) -> None:
    one, two = RecordingPace(postgres_dsn), RecordingPace(postgres_dsn)
    async with one, two:
        assert not one.paced  # nothing before the first 429
        assert not two.paced
        # One was admitted 30 requests; two sent none but heard of the 429 (its gate).
        await refuse([one, two], [30, 0], 0.5)
        learned = await stored_rate(postgres_dsn)
        assert learned is not None
        assert learned == pytest.approx(SAFETY * 30 / 0.5, rel=0.1)
        # Two reads the rate when the window ends, if it recorded the window before one.
        await until(lambda: one.rate == two.rate == learned)
        async with PostgresLearnedPace(postgres_dsn) as late:  # a worker started later
            assert late.rate == learned
        await anyio.sleep(0.6)  # the 429's window ends: the pace is booked from then on
        for pace in (one, two) * 8:
            await pace.acquire()
    turns = sorted(one.booked + two.booked)
    gaps = [later - earlier for earlier, later in itertools.pairwise(turns)]
    # One timeline for both, at the rate learned, whichever worker booked a turn (less
    # the few ms a reading of the database's clock can be off).
    assert min(gaps) > 1 / learned - 0.015


async def test_every_worker_hears_of_a_window_through_the_database(postgres_dsn: str) -> None:
    # No gate: two hears of the 429 one recorded by the database's NOTIFY, and adds
    # its part, though the window had ended before the news came.
    one, two = PostgresLearnedPace(postgres_dsn), PostgresLearnedPace(postgres_dsn)
    async with one, two:
        sent = time.monotonic() - 0.5  # 15 admitted to each over the last half second
        for pace in (one, two):
            for _ in range(15):
                pace.observe(200, {}, None, sent)
        one.refused(0.0)  # as the window ended: no pause a gate could tell
        await until(lambda: one.applied == 1 and two.applied == 1)
        assert await stored_rate(postgres_dsn) == pytest.approx(SAFETY * 60, rel=0.1)
        assert one.changes == two.changes == 1  # each wrote its part


async def test_a_turn_that_falls_in_a_pause_heard_meanwhile_is_given_up(
    postgres_dsn: str,
) -> None:
    async with PostgresLearnedPace(postgres_dsn) as pace:
        await refuse([pace], [5], 0.05)  # 97 % of about 100/s
        await anyio.sleep(0.1)
        returned: list[float] = []

        async def request() -> None:
            await pace.acquire()
            returned.append(time.monotonic())

        async with anyio.create_task_group() as group:
            for _ in range(20):  # turns up to about 0.2 s ahead
                group.start_soon(request)
            await anyio.sleep(0.02)
            booked = pace.round_trips
            pause_end = time.monotonic() + 0.3
            pace.refused(0.3)
        # Those still waiting for their turn went after the pause (it ends no earlier than
        # pause_end, less a timer's early wake-up), on turns booked anew.
        assert pace.round_trips > booked
        assert len([at for at in returned if at >= pause_end - 0.001]) >= 10


async def test_the_workers_shares_add_up_to_the_whole_rate(postgres_dsn: str) -> None:
    paces = [RecordingPace(postgres_dsn) for _ in range(3)]
    async with paces[0], paces[1], paces[2]:
        await refuse(paces, [10, 12, 8], 0.5)  # 20, 24 and 16 per second
        whole = await stored_rate(postgres_dsn)
        assert whole is not None
        assert whole == pytest.approx(SAFETY * 60, rel=0.1)
        await paces[0].aclose()
        await paces[1].aclose()
        alone = paces[2]
        await anyio.sleep(0.6)
        for _ in range(6):
            await alone.acquire()
    # The one left books at the whole rate at once: the turns of a booking (as many as
    # BOOKED_AHEAD seconds of the rate hold) an interval of it apart.
    assert alone.rate == whole
    batch = next(batch for batch in alone.batches if len(batch) > 1)
    assert batch[1] - batch[0] == pytest.approx(1 / whole, abs=1e-4)


async def test_a_window_heard_by_every_worker_slows_the_pace_once(postgres_dsn: str) -> None:
    paces = [PostgresLearnedPace(postgres_dsn) for _ in range(3)]
    async with paces[0], paces[1], paces[2]:
        await refuse(paces, [20, 20, 20], 0.2)  # the first window: an upper bound
        await anyio.sleep(0.25)
        await refuse(paces, [10, 10, 10], 0.2)  # the next one measures it
        measured = await stored_rate(postgres_dsn)
        assert measured is not None
        await anyio.sleep(0.25)
        await refuse(paces, [10, 10, 10], 0.2)
        assert await stored_rate(postgres_dsn) == pytest.approx(measured * DECREASE)
        assert sum(pace.changes for pace in paces) == 3 + 3 + 1


async def test_a_worker_cut_off_from_the_database_paces_alone_until_it_is_back(
    postgres_server: PostgresServer,
) -> None:
    pace = RecordingPace(postgres_server.dsn)
    async with pace:
        await refuse([pace], [30], 0.1)
        rate = pace.rate
        assert rate is not None
        await anyio.sleep(0.15)
        await pace.acquire()
        booked = pace.round_trips
        restart = threading.Thread(target=postgres_server.restart, kwargs={"down_for": 1.0})
        restart.start()
        with anyio.fail_after(60):
            while restart.is_alive():
                await pace.acquire()  # never fails: paced alone while the server is away
            await anyio.to_thread.run_sync(restart.join)
            while pace.round_trips <= booked + 1:
                await pace.acquire()
    assert pace.rate == rate  # the row outlived the restart


async def test_terminated_sessions_are_replaced_without_a_failed_turn(postgres_dsn: str) -> None:
    async with PostgresLearnedPace(postgres_dsn) as pace:
        await refuse([pace], [30], 0.1)
        await anyio.sleep(0.15)
        await pace.acquire()
        admin = await asyncpg.connect(postgres_dsn)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        before = pace.round_trips
        with anyio.fail_after(30):
            while pace.round_trips <= before:
                await pace.acquire()


async def test_the_table_of_a_configured_budget_is_upgraded_in_place(postgres_dsn: str) -> None:
    async with PostgresConnector(postgres_dsn) as db:
        await db.migrate("rate_budget", _budget.MIGRATIONS[:1])  # as an older version left it
        async with PostgresRateBudget(db, rate=50, scope="configured") as budget:
            pass
        async with PostgresLearnedPace(db) as pace:
            await refuse([pace], [10], 0.5)
        async with db.acquire() as conn:
            assert await schema_version(conn, "rate_budget") == len(_budget.MIGRATIONS)
        async with PostgresRateBudget(db, rate=50, scope="configured") as budget:
            await budget.acquire()  # a configured budget books as before
    assert await stored_rate(postgres_dsn) is not None


async def test_a_learned_rate_nobody_used_for_long_is_learned_again(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with PostgresLearnedPace(postgres_dsn) as pace:
        await refuse([pace], [30], 0.5)
    async with PostgresLearnedPace(postgres_dsn) as soon:
        assert soon.paced  # a worker restarted within FORGET_AFTER keeps the pace
    monkeypatch.setattr(_learned, "FORGET_AFTER", 0.0)
    async with PostgresLearnedPace(postgres_dsn) as later:
        assert not later.paced
    assert await stored_rate(postgres_dsn) is None


async def test_a_client_hands_its_answers_to_a_shared_learned_pace(postgres_dsn: str) -> None:
    async with (
        AvaturnEmulator(rate_limit=RateLimit(requests=5, per=1.0)) as emu,
        PostgresLearnedPace(postgres_dsn) as pace,
        PostgresGate(postgres_dsn) as gate,
        AvaturnClient(
            emu.api_key, base_url=emu.base_url, rate_limit=pace,
            adaptive=AdaptiveConcurrency(gate=gate), retry=RetryPolicy(max_attempts=10),
        ) as client,
    ):
        for _ in range(12):
            await client.users.create()
        pacing = client._shared.pacing
        assert pacing is not None
        assert pacing.learned is None  # no pace of its own
        await until(lambda: pace.rate is not None)
    assert emu.stats.rate_limited >= 1
    assert await stored_rate(postgres_dsn) is not None


async def test_onboard_on_a_postgres_journal_learns_one_shared_pace(
    tmp_path: Path, postgres_dsn: str
) -> None:
    manifest = write_sample_manifest(tmp_path, 6)
    async with AvaturnEmulator(
        processing_delay=0.05, rate_limit=RateLimit(requests=8, per=1.0)
    ) as emu:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "AVATURN_BASE_URL": emu.base_url,
               "AVATURN_API_KEY": emu.api_key}
        argv = [sys.executable, "-m", "avaturn_async", "onboard", str(manifest), "--journal",
                postgres_dsn, "--poll-interval", "0.05", "--progress", "none"]
        with anyio.fail_after(120):
            done = await anyio.run_process(argv, env=env, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert emu.stats.rate_limited >= 1
    assert await stored_rate(postgres_dsn) is not None  # learned into the shared row


async def test_ratelimit_headers_set_the_rate_of_every_worker(postgres_dsn: str) -> None:
    async with PostgresLearnedPace(postgres_dsn) as one, PostgresLearnedPace(postgres_dsn) as two:
        one.observe(200, {"x-ratelimit-remaining": "30", "x-ratelimit-reset": "2"}, None, 0.0)
        await until(lambda: one.applied == 1)
        assert await stored_rate(postgres_dsn) == 15.0
        two.refused(0.5)  # another worker's next news reads the rate told
        await until(lambda: two.applied == 1)
        assert two.rate is not None
