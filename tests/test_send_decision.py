"""``decide``: the retry loop's pure step, what to do after a failed attempt."""

from __future__ import annotations

from avaturn_async import (
    ConnectError,
    ConnectionLostError,
    RateLimitError,
    Response,
    RetryPolicy,
    ServerError,
    decide,
)
from avaturn_async._requests import build_create_user, build_list_avatars

CREATE = build_create_user()
LIST = build_list_avatars("U", False)


def at_one() -> float:
    return 1.0


def test_connect_error_on_a_create_is_retried_after_backoff() -> None:
    error = ConnectError("cannot connect")
    decision = decide(RetryPolicy(), CREATE, error, attempt=1, elapsed=0.0, random=at_one)
    assert (decision.delay, decision.reason, decision.error) == (0.5, "connect", error)


def test_lost_connection_on_a_create_gives_up_with_that_error() -> None:
    error = ConnectionLostError("dropped")
    decision = decide(RetryPolicy(), CREATE, error, attempt=1, elapsed=0.0, random=at_one)
    assert (decision.delay, decision.error) == (None, error)


def test_server_error_on_a_create_gives_up_with_a_typed_error() -> None:
    answer = Response(status=500, body=b'{"detail": "boom"}')
    decision = decide(RetryPolicy(), CREATE, answer, attempt=1, elapsed=0.0, random=at_one)
    assert (decision.delay, type(decision.error), decision.reason) == (
        None,
        ServerError,
        "status 500",
    )


def test_server_error_on_a_list_is_retried() -> None:
    answer = Response(status=502)
    decision = decide(RetryPolicy(), LIST, answer, attempt=2, elapsed=0.0, random=at_one)
    assert decision.delay == 1.0


def test_rate_limit_uses_retry_after_and_names_the_error() -> None:
    answer = Response(status=429, headers={"Retry-After": "2"})
    decision = decide(RetryPolicy(), CREATE, answer, attempt=9, elapsed=0.0, random=at_one)
    assert (decision.delay, type(decision.error)) == (2.0, RateLimitError)
