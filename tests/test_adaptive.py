"""Shared adaptive backoff: the gate and the AIMD concurrency limit."""

from __future__ import annotations

import time

import anyio
import pytest
from aiohttp import web

from avaturn_async import AdaptiveConcurrency, AvaturnClient, RetryPolicy
from avaturn_async._adaptive import AdaptiveLimiter
from tests.support import scripted_server


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


class FixedWindow:
    """A server-side limit: ``per_window`` requests per ``window`` seconds, then 429."""

    def __init__(self, per_window: int, window: float) -> None:
        self.per_window = per_window
        self.window = window
        self.window_start = time.monotonic()
        self.used = 0
        self.refused = 0
        self.served = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        now = time.monotonic()
        if now - self.window_start >= self.window:
            self.window_start, self.used = now, 0
        if self.used >= self.per_window:
            self.refused += 1
            retry_after = self.window - (now - self.window_start)
            return web.json_response(
                {"detail": "rate limited"},
                status=429,
                headers={"Retry-After": f"{retry_after:.3f}"},
            )
        self.used += 1
        self.served += 1
        return web.json_response([])


async def burst(adaptive: AdaptiveConcurrency | None, calls: int) -> FixedWindow:
    limit = FixedWindow(per_window=25, window=0.05)
    async with scripted_server(limit.handle) as server:
        client = AvaturnClient(
            "key",
            base_url=server.base_url,
            max_concurrency=64,
            adaptive=adaptive,
            retry=RetryPolicy(max_attempts=100, max_total_time=120, initial_delay=0.01),
        )
        async with client, anyio.create_task_group() as tg:
            for _ in range(calls):
                tg.start_soon(client.avatars.list, "U")
    return limit


async def test_shared_backoff_cuts_429s_in_a_burst_and_loses_no_call() -> None:
    independent = await burst(None, 1000)
    shared = await burst(AdaptiveConcurrency(), 1000)
    assert (independent.served, shared.served) == (1000, 1000)
    assert shared.refused * 5 < independent.refused, (shared.refused, independent.refused)
