"""Shared adaptive backoff: the gate and the AIMD concurrency limit."""

from __future__ import annotations

import anyio
import pytest

from avaturn_async import AdaptiveConcurrency, AvaturnClient, RetryPolicy
from avaturn_async._adaptive import AdaptiveLimiter
from avaturn_async._protocol import Response
from avaturn_async.testing import AvaturnEmulator, RateLimit
from avaturn_async.testing.emulator._ratelimit import FixedWindowLimit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def limiter(max_concurrency: int = 16, **settings: float) -> tuple[AdaptiveLimiter, Clock]:
    clock = Clock()
    return AdaptiveLimiter(AdaptiveConcurrency(**settings), max_concurrency, clock=clock), clock  # type: ignore[arg-type]


def test_rate_limit_halves_the_limit() -> None:
    state, clock = limiter(16)
    state.on_rate_limited(retry_after=None, sent_at=clock.now)
    assert state.limit == 8


def test_one_burst_of_refusals_halves_only_once() -> None:
    state, clock = limiter(16)
    for _ in range(10):
        state.on_rate_limited(retry_after=1.0, sent_at=clock.now - 0.5)
    assert (state.limit, state.decreases, state.rate_limited) == (16 // 2, 1, 10)


def test_a_later_episode_halves_again() -> None:
    state, clock = limiter(16)
    state.on_rate_limited(retry_after=None, sent_at=clock.now)
    clock.now += 2
    state.on_rate_limited(retry_after=None, sent_at=clock.now - 1)
    assert state.limit == 4


def test_limit_never_goes_below_the_minimum() -> None:
    state, clock = limiter(4, min_concurrency=2)
    for _ in range(5):
        clock.now += 1
        state.on_rate_limited(retry_after=None, sent_at=clock.now)
    assert state.limit == 2


def test_successes_grow_the_limit_back_additively() -> None:
    state, clock = limiter(16)
    state.on_rate_limited(retry_after=None, sent_at=clock.now)
    for _ in range(9):
        state.on_success()
    assert state.limit == 9


def test_at_max_clears_on_a_decrease_and_returns_once_grown_back() -> None:
    state, clock = limiter(2)
    state.on_rate_limited(retry_after=None, sent_at=clock.now)
    seen = [state.at_max]
    while state.on_success():
        seen.append(state.at_max)
    assert (seen[0], seen[-1], state.limit) == (False, True, 2)


async def test_client_limiter_grows_back_to_max_after_rate_limiting() -> None:
    client = AvaturnClient("k", base_url="http://127.0.0.1:9", max_concurrency=4)
    assert client.backoff is not None
    client.backoff.on_rate_limited(retry_after=0.0, sent_at=client.clock.now())
    client._adapt(Response(status=200), None, 0.0)  # the limiter follows the shrunk limit
    shrunk = client.concurrency_limit
    while not client.backoff.at_max:
        client._adapt(Response(status=200), None, 0.0)
    assert (shrunk, client.concurrency_limit) == (2, 4)
    await client.aclose()


def test_gate_closes_for_retry_after() -> None:
    state, clock = limiter()
    state.on_rate_limited(retry_after=3.0, sent_at=clock.now)
    clock.now += 1
    assert state.pause_remaining() == pytest.approx(2.0)


def test_gate_pause_is_capped() -> None:
    state, clock = limiter(max_pause=5.0)
    state.on_rate_limited(retry_after=600.0, sent_at=clock.now)
    assert state.pause_remaining() == pytest.approx(5.0)


def test_settings_reject_a_factor_that_does_not_shrink() -> None:
    with pytest.raises(ValueError, match="decrease_factor"):
        AdaptiveConcurrency(decrease_factor=1.0)


async def burst(emulator: AvaturnEmulator, adaptive: AdaptiveConcurrency | bool) -> int:
    """1,000 concurrent list calls under the emulator's rate limit; returns its refusals."""
    client = AvaturnClient(
        emulator.api_key,
        base_url=emulator.base_url,
        max_concurrency=64,
        adaptive=adaptive,
        retry=RetryPolicy(max_attempts=100, max_total_time=120, initial_delay=0.01),
    )
    results: list[object] = []

    async def call() -> None:
        results.append(await client.avatars.list(user_id))

    emulator.rate_limit = None
    user_id = (await client.users.create()).id
    emulator.rate_limit = RateLimit(requests=25, per=0.05)
    before = emulator.stats.rate_limited
    async with client, anyio.create_task_group() as tg:
        for _ in range(1000):
            tg.start_soon(call)
    assert len(results) == 1000
    return emulator.stats.rate_limited - before


async def test_shared_backoff_cuts_429s_in_a_burst_and_loses_no_call(
    emulator: AvaturnEmulator,
) -> None:
    independent = await burst(emulator, False)
    shared = await burst(emulator, AdaptiveConcurrency())
    assert shared * 5 < independent, (shared, independent)


def test_fixed_window_refuses_past_its_budget_and_says_when_to_come_back() -> None:
    clock = Clock()
    window = FixedWindowLimit(RateLimit(requests=2, per=1.0), clock=clock)
    answers = [window.admit(), window.admit()]
    clock.now += 0.25
    assert (answers, window.admit()) == ([None, None], pytest.approx(0.75))
