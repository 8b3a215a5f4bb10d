"""Pacing API requests at a rate limit: the configured budget, the learned pace, the
PostgreSQL budget shared by processes. Times come from fake clocks: the tests count
what the pace decided, they do not time it."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest

from avaturn_async import AvaturnClient, Clock, ConfigurationError, TokenBucket
from avaturn_async._cli import main
from avaturn_async._pacing import DECREASE, HEADROOM, PROBE_STEP, SAFETY, Gcra, LearnedPace
from avaturn_async.batch import write_sample_manifest
from avaturn_async.postgres import PostgresRateBudget
from avaturn_async.testing import AvaturnEmulator, RateLimit
from tests.support import json_answer, scripted_server


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_gcra_spreads_turns_one_interval_apart() -> None:
    gcra = Gcra(10)
    assert [round(gcra.reserve(0.0), 9) for _ in range(4)] == [0.0, 0.1, 0.2, 0.3]


def test_gcra_does_not_bank_idle_time_into_a_burst() -> None:
    gcra = Gcra(10)
    gcra.reserve(0.0)
    assert [round(gcra.reserve(5.0), 9) for _ in range(3)] == [0.0, 0.1, 0.2]


def test_a_rate_limit_must_be_positive() -> None:
    with pytest.raises(ConfigurationError):
        AvaturnClient("k", base_url="http://127.0.0.1:9", rate_limit=0)


async def test_the_client_paces_api_requests_at_the_rate_limit_with_headroom() -> None:
    fake = FakeTime()
    clock = Clock(now=fake.clock, sleep=fake.sleep)
    async with scripted_server(*[json_answer(200, {"id": "U"})] * 5) as server:
        async with AvaturnClient(
            "k", base_url=server.base_url, rate_limit=10, clock=clock
        ) as client:
            for _ in range(5):
                await client.users.create()
    interval = 1 / (10 * HEADROOM)
    assert [round(s, 6) for s in fake.sleeps] == [round(interval, 6)] * 4


async def test_uploads_to_presigned_urls_are_not_paced() -> None:
    from tests.support import SAMPLE_JPEG

    fake = FakeTime()
    clock = Clock(now=fake.clock, sleep=fake.sleep)
    async with scripted_server(*[json_answer(200, {"status": "ok"})] * 3) as server:
        async with AvaturnClient(
            "k", base_url=server.base_url, rate_limit=1, clock=clock
        ) as client:
            for _ in range(3):
                await client.avatars.upload_photos(
                    f"{server.base_url}/up?signature=s", frontal=SAMPLE_JPEG,
                    side_1=SAMPLE_JPEG, side_2=SAMPLE_JPEG, body_type="male",
                )
    assert fake.sleeps == []


async def test_a_token_bucket_can_be_shared_by_two_clients() -> None:
    fake = FakeTime()
    bucket = TokenBucket(10, now=fake.clock, sleep=fake.sleep)
    async with scripted_server(*[json_answer(200, {"id": "U"})] * 4) as server:
        async with (
            AvaturnClient("k", base_url=server.base_url, rate_limit=bucket) as one,
            AvaturnClient("k", base_url=server.base_url, rate_limit=bucket) as two,
        ):
            for client in (one, two, one, two):
                await client.users.create()
    assert len(fake.sleeps) == 3  # one budget: the second client waits its turn too


def test_nothing_is_paced_before_the_first_429() -> None:
    pace = LearnedPace(clock=lambda: 0.0)
    for _ in range(100):
        pace.admitted()
    assert (pace.rate, pace.reserve(0.0)) == (None, 0.0)


def _learned_after_first_window(
    admitted: int, first_sent: float, now: float, retry: float
) -> LearnedPace:
    times = iter([now])
    pace = LearnedPace(clock=lambda: next(times))
    pace.sent(first_sent)
    for _ in range(admitted):
        pace.admitted()
    pace.refused(retry)
    return pace


def test_the_first_window_gives_an_upper_bound_of_the_rate() -> None:
    # 60 admitted from t=0; refused at 0.4 until the window's end at 1.0.
    pace = _learned_after_first_window(60, 0.0, 0.4, 0.6)
    assert pace.rate == pytest.approx(SAFETY * 60 / 1.0)


def test_the_second_window_measures_the_rate() -> None:
    now = [0.3]
    pace = LearnedPace(clock=lambda: now[0])
    pace.sent(0.0)
    for _ in range(90):  # the first window began before this client: 90 looks like 300/s
        pace.admitted()
    pace.refused(0.0)
    for _ in range(60):
        pace.admitted()
    now[0] = 1.2
    pace.refused(0.1)  # the next window ends at 1.3: 60 in 1.0 s
    assert pace.rate == pytest.approx(SAFETY * 60 / 1.0)


def test_later_windows_ending_in_a_429_slow_the_pace_by_a_step() -> None:
    pace = _learned_after_first_window(60, 0.0, 0.5, 0.5)
    pace._bound_only = False  # as if the second window had measured it
    before = pace.rate
    assert before is not None
    now_clock = iter([5.0, 5.0])
    pace._clock = lambda: next(now_clock)
    pace.refused(0.5)
    pace.refused(0.4)  # the same window: heard once
    assert pace.rate == pytest.approx(before * DECREASE)


def test_the_pace_rises_only_after_windows_that_held_requests_back() -> None:
    pace = _learned_after_first_window(60, 0.0, 0.5, 0.5)
    rate = pace.rate
    assert rate is not None
    pace.reserve(2.0)  # a window later, nothing was held back: no probe
    assert pace.rate == pytest.approx(rate)
    for _ in range(10):
        pace.reserve(2.0)  # these wait for their turns
    pace.reserve(3.1)
    assert pace.rate == pytest.approx(rate * (1 + PROBE_STEP))


def test_ratelimit_headers_pace_what_remains_over_what_is_left() -> None:
    pace = LearnedPace(clock=lambda: 0.0)
    pace.admitted({"x-ratelimit-remaining": "30", "x-ratelimit-reset": "2"})
    assert pace.rate == pytest.approx(15.0)


async def test_the_client_learns_a_pace_from_the_servers_429s() -> None:
    limit = RateLimit(requests=5, per=1.0)
    async with AvaturnEmulator(rate_limit=limit) as emu:
        async with AvaturnClient(emu.api_key, base_url=emu.base_url) as client:
            for _ in range(12):
                await client.users.create()
            pacing = client._shared.pacing
    assert emu.stats.rate_limited >= 1
    learned = pacing.learned if pacing is not None else None
    assert learned is not None
    assert learned.learned >= 1
    assert learned.rate is not None
    assert math.isfinite(learned.rate)


class _RecordingBudget(PostgresRateBudget):
    """Notes every turn it books (a time on this process's monotonic clock)."""

    booked: list[float]

    async def _book(self) -> None:
        before = len(self._turns)
        await super()._book()
        self.booked = [*getattr(self, "booked", []), *list(self._turns)[before:]]


async def test_workers_share_one_postgres_budget(postgres_dsn: str) -> None:
    rate = 25.0
    one = _RecordingBudget(postgres_dsn, rate=rate)
    two = _RecordingBudget(postgres_dsn, rate=rate)
    async with one, two:
        for budget in (one, two) * 6:
            await budget.acquire()
    turns = sorted(one.booked + two.booked)
    gaps = [later - earlier for earlier, later in itertools.pairwise(turns)]
    # One timeline for both: no two turns closer than an interval (less the few ms
    # a reading of the database's clock can be off), whichever worker booked them.
    assert min(gaps) > 1 / (rate * HEADROOM) - 0.015
    assert min(one.round_trips, two.round_trips) >= 2


def test_the_emulator_command_serves_a_fixed_window_rate_limit() -> None:
    from avaturn_async._cli import _parser
    from avaturn_async._cli._emulator import _emulator

    def served(rate: str) -> RateLimit | None:
        args = _parser().parse_args(["emulator", "--rate-limit", rate])
        limit: RateLimit | None = _emulator(args).rate_limit
        return limit

    assert served("60") == RateLimit(requests=60, per=1.0)
    assert served("0.5") == RateLimit(requests=1, per=2.0)


def test_onboard_with_a_rate_paces_and_finishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_sample_manifest(tmp_path, 4)
    args = ["onboard", str(manifest), "--journal", str(tmp_path / "j.db"), "--emulator",
            "--rate", "200", "--progress", "none"]
    assert main(args) == 0
    assert "4 ready" in capsys.readouterr().out
