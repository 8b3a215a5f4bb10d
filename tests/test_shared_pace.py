"""The arithmetic of one pace learned by many workers together (``_shared_pace``).

Pure: every time is given (the database's clock, in the real thing), so these tests
count what the pace decided and never wait."""

from __future__ import annotations

import attrs
import pytest

from avaturn_async._pacing import DECREASE, MAX_PROBE_STEP, PROBE_STEP, SAFETY
from avaturn_async._shared_pace import (
    SAME_WINDOW,
    Share,
    SharedPace,
    heard_refusal,
    probe,
    told,
)


def _hear_all(pace: SharedPace, heard: list[tuple[float, float, float]]) -> SharedPace:
    """``pace`` after workers heard of a 429: ``(heard_at, end, share)`` each, in order."""
    for heard_at, end, share in heard:
        pace = heard_refusal(pace, heard_at, end, share) or pace
    return pace


def test_nothing_is_paced_before_the_first_429() -> None:
    pace = SharedPace()
    assert pace.rate is None
    assert probe(pace, 100.0) is None


def test_a_worker_shares_what_it_was_admitted_over_the_window() -> None:
    share = Share()
    share.sent(10.0)
    for _ in range(20):
        share.admitted()
    assert share.refused(10.5, 0.5) == (11.0, 20.0)  # 20 admitted in the 1.0 s to the end
    assert share.refused(10.6, 0.4) is None  # the same window, heard of again
    for _ in range(30):
        share.admitted()
    end, rate = share.refused(12.5, 0.0) or (0.0, 0.0)  # the next window starts at 11.0
    assert end == 12.5
    assert rate == pytest.approx(30 / 1.5)


def test_the_first_window_adds_every_workers_share_as_an_upper_bound() -> None:
    pace = _hear_all(SharedPace(), [(10.5, 11.0, 20.0), (10.51, 11.0, 21.0), (10.52, 11.0, 19.0)])
    assert pace.rate == pytest.approx(SAFETY * 60.0)
    assert pace.bound_only
    assert pace.window_end == 11.0


def test_a_worker_that_was_admitted_nothing_leaves_the_sum_to_the_others() -> None:
    pace = _hear_all(SharedPace(), [(10.5, 11.0, 0.0), (10.51, 11.0, 30.0), (10.52, 11.0, 0.0)])
    assert pace.rate == pytest.approx(SAFETY * 30.0)


def test_the_next_window_that_ends_in_a_429_measures_the_rate_again() -> None:
    # The first window began before the workers: it looked like 300/s.
    pace = _hear_all(SharedPace(), [(0.3, 1.0, 150.0), (0.3, 1.0, 150.0)])
    assert pace.rate == pytest.approx(SAFETY * 300.0)
    pace = _hear_all(pace, [(1.2, 2.0, 31.0), (1.21, 2.0, 29.0)])
    assert pace.rate == pytest.approx(SAFETY * 60.0)
    assert not pace.bound_only


def test_later_windows_ending_in_a_429_slow_the_pace_once_however_many_hear() -> None:
    pace = _hear_all(SharedPace(), [(0.3, 1.0, 60.0)])
    pace = _hear_all(pace, [(1.5, 2.0, 60.0)])  # measured: SAFETY * 60
    measured = pace.rate
    assert measured is not None
    pace = _hear_all(pace, [(5.8, 6.0, 20.0), (5.81, 6.0, 20.0), (5.85, 6.0, 20.0)])
    assert pace.rate == pytest.approx(measured * DECREASE)


def test_a_429_heard_late_through_a_gate_is_of_the_window_recorded() -> None:
    pace = _hear_all(SharedPace(), [(0.3, 1.0, 60.0), (1.5, 2.0, 60.0)])
    later = heard_refusal(pace, 5.8, 6.0, 20.0)
    assert later is not None
    # Heard after the window's end, but it ends where the recorded one does.
    assert heard_refusal(later, 6.01, 6.0 + SAME_WINDOW / 2, 20.0) is None


def test_the_pace_rises_only_after_windows_that_held_requests_back() -> None:
    pace = _hear_all(SharedPace(), [(0.5, 1.0, 60.0)])
    rate = pace.rate
    assert rate is not None
    assert probe(pace, 1.5) is None  # not a window since the 429's window ended
    quiet = probe(pace, 2.0)
    assert quiet is not None
    assert (quiet.rate, quiet.probed_at) == (rate, 2.0)
    held = probe(attrs.evolve(quiet, held=True), 3.0)
    assert held is not None
    assert held.rate == pytest.approx(rate * (1 + PROBE_STEP))
    assert (held.step, held.held) == (2 * PROBE_STEP, False)


def test_probe_steps_double_up_to_a_ceiling() -> None:
    pace = SharedPace(rate=10.0, probed_at=0.0, step=PROBE_STEP)
    steps = []
    for second in range(1, 10):
        raised = probe(attrs.evolve(pace, held=True), float(second))
        assert raised is not None
        pace = raised
        steps.append(pace.step)
    assert steps[-1] == MAX_PROBE_STEP
    assert steps[:3] == [pytest.approx(0.04), pytest.approx(0.08), pytest.approx(0.16)]


def test_a_429_after_probing_restarts_the_steps() -> None:
    pace = SharedPace(rate=60.0, window_end=0.0, probed_at=0.0, step=0.32)
    slowed = heard_refusal(pace, 3.5, 4.0, 60.0)
    assert slowed is not None
    assert slowed.rate == pytest.approx(60.0 * DECREASE)
    assert (slowed.step, slowed.probed_at) == (PROBE_STEP, 4.0)


def test_a_probe_that_overshot_is_undone_in_one_window() -> None:
    pace = SharedPace(rate=60.0, window_end=0.0, probed_at=0.0, step=0.32, held=True)
    raised = probe(pace, 1.0)
    assert raised is not None
    assert raised.rate == pytest.approx(60.0 * 1.32)
    slowed = heard_refusal(raised, 1.5, 2.0, 60.0)
    assert slowed is not None
    assert slowed.rate == 60.0  # back to the rate the window before proved, not 5 % off
    proven = probe(raised, 2.0)  # a window without a 429 proved the raise
    assert proven is not None
    assert proven.raised_from is None
    slowed = heard_refusal(proven, 2.5, 3.0, 60.0)
    assert slowed is not None
    assert slowed.rate == pytest.approx(60.0 * 1.32 * DECREASE)


def test_a_worker_hears_of_a_window_once_however_the_news_comes() -> None:
    share = Share()
    share.sent(0.0)
    share.admitted()
    assert share.refused(0.5, 0.5) == (1.0, 1.0)
    assert share.ended(1.02, 1.0) is None  # a sharer's news of the same window, late
    share.admitted()
    heard = share.ended(2.1, 2.0)  # the next window, heard of after its end
    assert heard is not None
    assert heard[0] == 2.0
    assert heard[1] == pytest.approx(1.0)


def test_ratelimit_headers_set_the_rate_for_every_worker() -> None:
    pace = told(SharedPace(), 5.0, 15.0)
    assert (pace.rate, pace.probed_at) == (15.0, 5.0)
    assert probe(pace, 5.5) is None
