"""The one backoff helper, and the places that take their waits from it."""

from __future__ import annotations

import pytest

from avaturn_async._backoff import ExponentialBackoff

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


def test_calling_the_helper_gives_a_webhooks_backoff() -> None:
    assert ExponentialBackoff(initial=5.0, factor=3.0)(2) == 15.0
