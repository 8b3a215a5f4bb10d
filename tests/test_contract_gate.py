"""The rate-limit gate seam's contract: a pause seen by one sharer holds them all."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import anyio.lowlevel
import pytest

from avaturn_async import AdaptiveConcurrency, InProcessGate, RateLimitGate
from avaturn_async._adaptive import AdaptiveLimiter

# Opens one more sharer of the same gate (another process, for a shared backend).
Sharer = Callable[[], Awaitable[RateLimitGate]]


@pytest.fixture(params=["in-process", "postgres"])
def dsn(request: pytest.FixtureRequest) -> str | None:
    """``None`` for the in-process implementation, else a fresh PostgreSQL database."""
    return None if request.param == "in-process" else str(request.getfixturevalue("postgres_dsn"))


@pytest.fixture
async def sharer(dsn: str | None) -> AsyncIterator[Sharer]:
    if dsn is None:
        gate = InProcessGate()

        async def same_gate() -> RateLimitGate:
            return gate

        yield same_gate
        return
    from avaturn_async.postgres import PostgresGate

    gates: list[PostgresGate] = []

    async def another_process() -> RateLimitGate:
        shared = PostgresGate(dsn)
        gates.append(shared)
        await shared.start()
        return shared

    yield another_process
    for shared in gates:
        await shared.aclose()


class Seen:
    """A subscriber that remembers the pauses it was told of."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self.told = anyio.Event()

    def __call__(self, remaining: float) -> None:
        self.pauses.append(remaining)
        self.told.set()


async def told(seen: Seen) -> list[float]:
    with anyio.fail_after(5):
        await seen.told.wait()
    return seen.pauses


async def test_a_gate_satisfies_the_protocol(sharer: Sharer) -> None:
    assert isinstance(await sharer(), RateLimitGate)


async def test_a_pause_reaches_every_sharer(sharer: Sharer) -> None:
    first, second = await sharer(), await sharer()
    seen = Seen()
    second.subscribe(seen)
    first.close_for(30.0)
    pauses = await told(seen)
    assert 20.0 < max(pauses) <= 30.0


async def test_a_sharer_that_comes_late_learns_the_pause(sharer: Sharer) -> None:
    first = await sharer()
    first.close_for(30.0)
    await anyio.lowlevel.checkpoint()
    seen = Seen()
    late = await sharer()
    late.subscribe(seen)
    assert 20.0 < max(await told(seen)) <= 30.0


async def test_a_shorter_pause_never_shortens_a_longer_one(sharer: Sharer) -> None:
    first = await sharer()
    first.close_for(30.0)
    first.close_for(1.0)
    await anyio.lowlevel.checkpoint()
    seen = Seen()
    (await sharer()).subscribe(seen)
    assert max(await told(seen)) > 20.0


async def test_limiters_sharing_a_gate_pause_together(sharer: Sharer) -> None:
    one = AdaptiveLimiter(AdaptiveConcurrency(gate=await sharer()), 8)
    other_gate = await sharer()
    other = AdaptiveLimiter(AdaptiveConcurrency(gate=other_gate), 8)
    seen = Seen()
    other_gate.subscribe(seen)  # after the limiter's own subscription
    one.on_rate_limited(retry_after=30.0, sent_at=0.0)
    await told(seen)
    assert (other.pause_remaining() > 20.0, other.limit) == (True, 8)
