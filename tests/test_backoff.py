"""The one backoff helper, and the places that take their waits from it."""

from __future__ import annotations

import anyio
import pytest

from avaturn_async import AvaturnClient, Clock, RetryPolicy
from avaturn_async._backoff import ExponentialBackoff
from avaturn_async._jobs import poll_delays
from avaturn_async.postgres import retry_transient
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import AvaturnEmulator
from avaturn_async.webhooks import exponential_backoff

FRONTAL, SIDE_1, SIDE_2 = sample_photo_paths()

# -- the helper --------------------------------------------------------------------------


def test_waits_grow_by_the_factor_up_to_the_maximum() -> None:
    backoff = ExponentialBackoff(initial=0.5, factor=3.0, maximum=10.0)
    assert [backoff.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.5, 4.5, 10.0]


def test_the_default_factor_doubles_without_a_maximum() -> None:
    backoff = ExponentialBackoff(initial=0.25)
    assert [backoff.delay(n) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]


def test_an_attempt_below_one_waits_like_the_first() -> None:
    assert ExponentialBackoff(initial=2.0).delay(0) == 2.0


def test_a_huge_attempt_number_waits_the_maximum() -> None:
    assert ExponentialBackoff(initial=1.0, maximum=60.0).delay(10**9) == 60.0


def test_a_factor_that_overflows_a_float_waits_the_maximum() -> None:
    assert ExponentialBackoff(initial=1.0, factor=1e300, maximum=60.0).delay(5) == 60.0


def test_full_jitter_scales_the_wait_by_the_random_draw() -> None:
    backoff = ExponentialBackoff(initial=1.0, maximum=8.0, jitter="full")
    assert backoff.delay(3, lambda: 0.25) == 1.0


@pytest.mark.parametrize(("draw", "factor"), [(0.0, 0.9), (0.5, 1.0), (1.0, 1.1)])
def test_a_jitter_fraction_spreads_the_wait_that_much_either_side(
    draw: float, factor: float
) -> None:
    backoff = ExponentialBackoff(initial=10.0, jitter=0.1)
    assert backoff.delay(1, lambda: draw) == pytest.approx(10.0 * factor)


def test_nominal_is_the_wait_before_jitter() -> None:
    backoff = ExponentialBackoff(initial=1.0, maximum=3.0, jitter="full")
    assert [backoff.nominal(n) for n in (1, 2, 3)] == [1.0, 2.0, 3.0]


# -- its users keep their numbers --------------------------------------------------------


def test_retry_policy_backoff_is_full_jitter_doubling_to_max_delay() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=8.0)
    assert [policy.backoff(n, lambda: 0.5) for n in (1, 2, 6)] == [0.25, 0.5, 4.0]


def test_poll_delays_draw_their_jitter_from_the_given_source() -> None:
    delays = poll_delays(10.0, random=lambda: 0.0)
    assert next(delays) == pytest.approx(9.0)


def test_exponential_backoff_defaults_to_5_s_tripling_to_an_hour() -> None:
    backoff = exponential_backoff()
    assert [backoff(n) for n in (1, 2, 8, 9)] == [5.0, 15.0, 3600.0, 3600.0]


async def test_job_polling_draws_its_jitter_from_the_client_clock(
    emulator: AvaturnEmulator,
) -> None:
    emulator.processing_delay = 0.2  # not ready at the first poll
    waits: list[float] = []

    async def record(delay: float) -> None:
        waits.append(delay)
        await anyio.sleep(0.01)

    clock = Clock(sleep=record, random=lambda: 1.0)
    async with AvaturnClient(emulator.api_key, base_url=emulator.base_url, clock=clock) as sdk:
        user = await sdk.users.create()
        job = await sdk.avatars.create_from_photos(
            user.id, frontal=FRONTAL, side_1=SIDE_1, side_2=SIDE_2, body_type="male"
        )
        with anyio.fail_after(10):
            await job.wait(poll_interval=2.0)
    assert waits[:2] == [pytest.approx(2.2), pytest.approx(3.3)]


class _Conflict(Exception):
    pass


def _is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, _Conflict)


async def test_retry_transient_retries_what_retry_if_accepts() -> None:
    failures = [_Conflict(), _Conflict()]

    async def operation() -> str:
        if failures:
            raise failures.pop()
        return "done"

    assert await retry_transient(operation, deadline=5, retry_if=_is_conflict) == "done"


async def test_retry_transient_raises_what_retry_if_refuses_at_once() -> None:
    calls: list[int] = []

    async def operation() -> None:
        calls.append(1)
        raise _Conflict

    with pytest.raises(_Conflict):
        await retry_transient(operation, deadline=5)
    assert calls == [1]
