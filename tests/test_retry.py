"""Retry decisions and Retry-After parsing: pure functions, no server, no waiting."""

from __future__ import annotations

import email.utils

import pytest

from avaturn_async import ConfigurationError
from avaturn_async._retry import FailureKind, RetryPolicy, parse_retry_after, retry_delay

NOW = 1_800_000_000.0


def decide(policy: RetryPolicy | None = None, **kwargs: object) -> float | None:
    args: dict[str, object] = {
        "attempt": 1,
        "kind": FailureKind.STATUS,
        "status": 503,
        "idempotent": True,
        "elapsed": 0.0,
        "random": lambda: 1.0,
    }
    args.update(kwargs)
    return retry_delay(policy or RetryPolicy(), **args)  # type: ignore[arg-type]


def test_backoff_doubles_up_to_max_delay_with_full_jitter_at_one() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=3.0, max_attempts=10, max_total_time=100)
    delays = [decide(policy, attempt=n) for n in range(1, 6)]
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_scales_the_ceiling() -> None:
    assert decide(attempt=2, random=lambda: 0.25) == pytest.approx(0.25)


def test_gives_up_after_max_attempts() -> None:
    assert decide(RetryPolicy(max_attempts=3), attempt=3) is None


def test_gives_up_when_wait_would_pass_total_time() -> None:
    assert decide(RetryPolicy(max_total_time=10.0), elapsed=9.8) is None


def test_retry_after_is_honoured_instead_of_backoff() -> None:
    assert decide(status=429, retry_after=7.0) == 7.0


def test_retry_after_beyond_cap_stops_retrying() -> None:
    assert decide(RetryPolicy(max_retry_after=30.0), status=429, retry_after=31.0) is None


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_idempotent_request_retries_retryable_statuses(status: int) -> None:
    assert decide(status=status) is not None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422])
def test_client_errors_are_never_retried(status: int) -> None:
    assert decide(status=status) is None


@pytest.mark.parametrize("status", [429, 503])
def test_non_idempotent_request_retries_statuses_proving_no_action(status: int) -> None:
    assert decide(status=status, idempotent=False) is not None


@pytest.mark.parametrize("status", [408, 500, 502, 504])
def test_non_idempotent_request_does_not_retry_ambiguous_statuses(status: int) -> None:
    assert decide(status=status, idempotent=False) is None


def test_non_idempotent_request_retries_connect_errors() -> None:
    assert decide(kind=FailureKind.CONNECT, status=None, idempotent=False) is not None


@pytest.mark.parametrize("kind", [FailureKind.TIMEOUT, FailureKind.CONNECTION_LOST])
def test_non_idempotent_request_does_not_retry_after_possible_action(kind: FailureKind) -> None:
    assert decide(kind=kind, status=None, idempotent=False) is None


@pytest.mark.parametrize("kind", [FailureKind.TIMEOUT, FailureKind.CONNECTION_LOST])
def test_idempotent_request_retries_timeouts_and_lost_connections(kind: FailureKind) -> None:
    assert decide(kind=kind, status=None) is not None


def test_disabled_policy_never_retries() -> None:
    assert decide(RetryPolicy.off(), kind=FailureKind.CONNECT, status=None) is None


def test_policy_rejects_zero_attempts() -> None:
    with pytest.raises(ConfigurationError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


@pytest.mark.parametrize(("header", "expected"), [("3", 3.0), (" 1.5 ", 1.5), ("0", 0.0)])
def test_retry_after_seconds_form(header: str, expected: float) -> None:
    assert parse_retry_after(header, now=NOW) == expected


def test_retry_after_http_date_form() -> None:
    header = email.utils.formatdate(NOW + 12, usegmt=True)
    assert parse_retry_after(header, now=NOW) == pytest.approx(12.0)


def test_retry_after_date_in_the_past_is_zero() -> None:
    header = email.utils.formatdate(NOW - 100, usegmt=True)
    assert parse_retry_after(header, now=NOW) == 0.0


@pytest.mark.parametrize("header", [None, "", "soon", "-4", "nan", "inf"])
def test_retry_after_garbage_is_ignored(header: str | None) -> None:
    assert parse_retry_after(header, now=NOW) is None


def test_rate_limited_retries_outlast_max_attempts() -> None:
    assert decide(RetryPolicy(max_attempts=4), attempt=30, status=429, idempotent=False) == 0.5 * 16


def test_rate_limited_retries_stop_at_the_total_time_budget() -> None:
    policy = RetryPolicy(max_total_time=10.0)
    assert decide(policy, attempt=30, status=429, retry_after=1.0, elapsed=9.5) is None


def test_rate_limited_retries_can_be_bounded_by_count() -> None:
    policy = RetryPolicy(max_rate_limit_attempts=5)
    assert decide(policy, attempt=5, status=429) is None


def test_off_policy_does_not_retry_rate_limiting() -> None:
    assert decide(RetryPolicy.off(), status=429, retry_after=0.0) is None


def test_other_statuses_still_stop_at_max_attempts() -> None:
    assert decide(RetryPolicy(max_attempts=4), attempt=4, status=503) is None
