"""Shared adaptive backoff: the gate and the AIMD concurrency limit."""

from __future__ import annotations

import anyio
import pytest
from aiohttp import web

from avaturn_async import AdaptiveConcurrency, AvaturnClient, ConfigurationError, RetryPolicy
from avaturn_async import Clock as ClientClock
from avaturn_async._adaptive import AdaptiveLimiter
from avaturn_async._requests import Response
from avaturn_async.testing import AvaturnEmulator, RateLimit
from avaturn_async.testing.emulator._ratelimit import FixedWindowLimit
from tests.support import scripted_server


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def limiter(max_concurrency: int = 16, **settings: float) -> tuple[AdaptiveLimiter, Clock]:
    clock = Clock()
    return AdaptiveLimiter(AdaptiveConcurrency(**settings), max_concurrency, now=clock), clock  # type: ignore[arg-type]


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
    with pytest.raises(ConfigurationError, match="decrease_factor"):
        AdaptiveConcurrency(decrease_factor=1.0)


CALLS = 1000
MAX_CONCURRENCY = 64


async def refusals_in_a_burst(adaptive: AdaptiveConcurrency | bool) -> tuple[int, int]:
    """``CALLS`` concurrent list calls while the server is rate limiting: (429s, calls done).

    No clock decides anything. The server refuses every request (429, Retry-After: 1)
    until every call is stuck: asleep (a retry backoff or the shared gate; the fake
    sleep lasts until the server opens) or waiting for a slot. Then it opens, and the
    client's clock jumps past every Retry-After.
    """
    clock = Clock()
    opened = anyio.Event()
    refused = sleeping = 0

    async def answer(request: web.Request) -> web.StreamResponse:
        nonlocal refused
        if opened.is_set():
            return web.json_response([])
        refused += 1
        return web.json_response({"detail": "slow down"}, status=429, headers={"Retry-After": "1"})

    async def sleep(delay: float) -> None:
        nonlocal sleeping
        sleeping += 1
        try:
            await opened.wait()
        finally:
            sleeping -= 1

    results: list[object] = []
    async with scripted_server(answer) as server:
        client = AvaturnClient(
            "k",
            base_url=server.base_url,
            max_concurrency=MAX_CONCURRENCY,
            adaptive=adaptive,
            clock=ClientClock(now=clock, sleep=sleep),
        )

        async def call() -> None:
            results.append(await client.avatars.list("U"))

        async with client, anyio.create_task_group() as tg:
            for _ in range(CALLS):
                tg.start_soon(call)
            # The state is spread over the limiter's queue and the sleeping tasks: poll it.
            with anyio.fail_after(60):
                while sleeping + client.requests_waiting < CALLS:  # noqa: ASYNC110
                    await anyio.sleep(0.001)
            clock.now += 2.0
            opened.set()
    return refused, len(results)


async def test_without_shared_backoff_every_call_of_a_burst_is_refused() -> None:
    assert await refusals_in_a_burst(False) == (CALLS, CALLS)


async def test_shared_backoff_refuses_only_the_calls_already_in_flight() -> None:
    refused, done = await refusals_in_a_burst(AdaptiveConcurrency())
    assert (1 <= refused <= MAX_CONCURRENCY, done) == (True, CALLS), refused


async def test_a_burst_against_the_emulator_rate_limit_loses_no_call(
    emulator: AvaturnEmulator,
) -> None:
    client = AvaturnClient(
        emulator.api_key,
        base_url=emulator.base_url,
        max_concurrency=MAX_CONCURRENCY,
        retry=RetryPolicy(max_attempts=100, max_total_time=120, initial_delay=0.01),
    )
    results: list[object] = []
    async with client:
        user_id = (await client.users.create()).id
        emulator.rate_limit = RateLimit(requests=25, per=0.05)

        async def call() -> None:
            results.append(await client.avatars.list(user_id))

        async with anyio.create_task_group() as tg:
            for _ in range(CALLS):
                tg.start_soon(call)
    assert len(results) == CALLS


def test_fixed_window_refuses_past_its_budget_and_says_when_to_come_back() -> None:
    clock = Clock()
    window = FixedWindowLimit(RateLimit(requests=2, per=1.0), now=clock)
    answers = [window.admit(), window.admit()]
    clock.now += 0.25
    assert answers == [None, None]
    assert window.admit() == pytest.approx(0.75)
