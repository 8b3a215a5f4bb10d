"""The pure part of fault plans: which fault meets the n-th request of a route."""

from __future__ import annotations

from collections import Counter

import pytest

from avaturn_async import ConfigurationError
from avaturn_async.testing.emulator._fault_plan import (
    FaultKind,
    FaultPlan,
    RouteFaults,
    WebhookFaults,
    decide,
    decide_webhook,
)

MIXED = RouteFaults(
    rate_429=0.1,
    rate_429_no_retry_after=0.05,
    rate_500=0.1,
    rate_502=0.05,
    rate_503=0.1,
    rate_reset=0.05,
    rate_cutoff=0.05,
    latency=(0.01, 0.02),
    slow_upload=0.3,
)


def kinds(plan: FaultPlan, route: str, n: int = 200) -> list[FaultKind | None]:
    return [decide(plan, route, i).kind for i in range(n)]


def test_the_same_seed_route_and_index_give_the_same_decision() -> None:
    plan = FaultPlan(seed=7, default=MIXED)
    assert [decide(plan, "upload", i) for i in range(100)] == [
        decide(FaultPlan(seed=7, default=MIXED), "upload", i) for i in range(100)
    ]


def test_another_seed_gives_other_decisions() -> None:
    assert kinds(FaultPlan(seed=1, default=MIXED), "users.create") != kinds(
        FaultPlan(seed=2, default=MIXED), "users.create"
    )


def test_routes_draw_from_separate_streams() -> None:
    plan = FaultPlan(seed=1, default=MIXED)
    assert kinds(plan, "users.create") != kinds(plan, "avatars.create")


def test_a_plan_without_rates_never_fails() -> None:
    plan = FaultPlan(seed=3)
    assert {decide(plan, "users.create", i) for i in range(500)} == {decide(plan, "x", 0)}
    assert decide(plan, "users.create", 0).kind is None


def test_a_route_entry_overrides_the_default() -> None:
    plan = FaultPlan(routes={"users.create": RouteFaults(rate_503=1.0)}, default=RouteFaults())
    assert (set(kinds(plan, "users.create")), set(kinds(plan, "avatars.create"))) == (
        {FaultKind.UNAVAILABLE},
        {None},
    )


def test_observed_frequencies_follow_the_rates() -> None:
    counts = Counter(kinds(FaultPlan(seed=11, default=MIXED), "avatars.list", n=20_000))
    expected = {kind: rate for kind, rate in MIXED.error_rates()}
    for kind, rate in expected.items():
        assert counts[kind] / 20_000 == pytest.approx(rate, abs=0.015), kind
    assert counts[None] / 20_000 == pytest.approx(0.5, abs=0.015)


@pytest.mark.parametrize(
    "kind", [FaultKind.RATE_LIMITED, FaultKind.RATE_LIMITED_BARE, FaultKind.UNAVAILABLE]
)
def test_429_and_503_never_come_after_acting(kind: FaultKind) -> None:
    rate = {k: 0.0 for k, _ in RouteFaults().error_rates()}
    rate[kind] = 1.0
    faults = RouteFaults(
        rate_429=rate[FaultKind.RATE_LIMITED],
        rate_429_no_retry_after=rate[FaultKind.RATE_LIMITED_BARE],
        rate_503=rate[FaultKind.UNAVAILABLE],
        acted=1.0,
    )
    decisions = [decide(FaultPlan(default=faults), "users.create", i) for i in range(100)]
    assert {(d.kind, d.acted) for d in decisions} == {(kind, False)}


def test_acted_probability_splits_ambiguous_failures_into_before_and_after() -> None:
    plan = FaultPlan(seed=5, default=RouteFaults(rate_500=1.0, acted=0.3))
    acted = sum(decide(plan, "users.create", i).acted for i in range(10_000))
    assert acted / 10_000 == pytest.approx(0.3, abs=0.02)


@pytest.mark.parametrize(("acted", "expected"), [(0.0, {False}), (1.0, {True})])
def test_acted_zero_and_one_are_certain(acted: float, expected: set[bool]) -> None:
    plan = FaultPlan(default=RouteFaults(rate_reset=0.5, rate_cutoff=0.5, acted=acted))
    assert {decide(plan, "upload", i).acted for i in range(200)} == expected


def test_latency_is_drawn_within_its_bounds() -> None:
    plan = FaultPlan(seed=2, default=RouteFaults(latency=(0.05, 0.1)))
    latencies = [decide(plan, "avatars.list", i).latency for i in range(1000)]
    assert 0.05 <= min(latencies) < max(latencies) <= 0.1
    assert len(set(latencies)) > 900


def test_a_single_latency_number_is_a_fixed_delay() -> None:
    plan = FaultPlan(default=RouteFaults(latency=0.02))
    assert {decide(plan, "avatars.list", i).latency for i in range(50)} == {0.02}


def test_slow_uploads_carry_their_pace() -> None:
    plan = FaultPlan(default=RouteFaults(slow_upload=1.0, upload_bytes_per_second=1000.0))
    assert decide(plan, "upload", 0).upload_bytes_per_second == 1000.0


def test_changing_one_rate_keeps_latency_and_acting_draws() -> None:
    base = FaultPlan(seed=9, default=RouteFaults(rate_500=0.2, latency=(0, 1)))
    other = FaultPlan(seed=9, default=RouteFaults(rate_502=0.2, latency=(0, 1)))
    assert [decide(base, "upload", i).latency for i in range(50)] == [
        decide(other, "upload", i).latency for i in range(50)
    ]


@pytest.mark.parametrize(
    "options",
    [
        {"rate_500": 0.6, "rate_503": 0.6},
        {"rate_429": -0.1},
        {"rate_reset": 1.5},
        {"acted": 2.0},
        {"latency": (0.2, 0.1)},
        {"latency": (-1.0, 0.0)},
        {"upload_bytes_per_second": 0.0},
    ],
)
def test_invalid_route_faults_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RouteFaults(**options)  # type: ignore[arg-type]


def test_the_plan_is_frozen() -> None:
    plan = FaultPlan(routes={"upload": RouteFaults()})
    with pytest.raises(TypeError):
        plan.routes["users.create"] = RouteFaults()  # type: ignore[index]


def test_webhook_decisions_are_reproducible_and_follow_the_rates() -> None:
    plan = FaultPlan(seed=4, webhooks=WebhookFaults(drop=0.2, duplicate=0.3, delay=(0, 0.5)))
    decisions = [decide_webhook(plan, i) for i in range(10_000)]
    assert decisions[:100] == [decide_webhook(plan, i) for i in range(100)]
    dropped = sum(d.drop for d in decisions) / 10_000
    doubled = sum(d.copies == 2 for d in decisions) / 10_000
    assert dropped == pytest.approx(0.2, abs=0.02)
    assert doubled == pytest.approx(0.3, abs=0.02)
    assert all(0 <= d.delay <= 0.5 for d in decisions)


def test_no_webhook_faults_deliver_every_event_once_at_once() -> None:
    plan = FaultPlan(seed=4)
    assert {decide_webhook(plan, i) for i in range(100)} == {decide_webhook(plan, 0)}
    assert (decide_webhook(plan, 0).drop, decide_webhook(plan, 0).copies) == (False, 1)
