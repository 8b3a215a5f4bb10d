"""The retry loop's decision: after a failed attempt, retry after how long, or give up.

Pure, as httpx keeps the decision apart from sending: the client's loop sends one
attempt, asks :func:`decide`, then waits or gives up. The rules themselves (what
is retried, backoff, budgets) are in ``_retry``.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ._answers import error_from_response, retry_after_seconds
from ._errors import APIError, ConnectError, RequestTimeoutError, TransportError
from ._requests import Request, Response
from ._retry import FailureKind, RetryPolicy, retry_delay

__all__ = ["Decision", "decide"]


def _failure_kind(exc: TransportError) -> FailureKind:
    if isinstance(exc, ConnectError):
        return FailureKind.CONNECT
    if isinstance(exc, RequestTimeoutError):
        return FailureKind.TIMEOUT
    return FailureKind.CONNECTION_LOST


@attrs.frozen(slots=True)
class Decision:
    """What to do after a failed attempt: retry after ``delay`` seconds, or raise ``error``."""

    error: TransportError | APIError
    reason: str
    delay: float | None
    """``None``: give up."""


def decide(
    policy: RetryPolicy,
    request: Request,
    outcome: Response | TransportError,
    *,
    attempt: int,
    elapsed: float,
    random: Callable[[], float],
) -> Decision:
    """The next step after attempt number ``attempt`` failed.

    Pure: no I/O and no monotonic clock (``elapsed`` and ``random`` are given); only
    a ``Retry-After`` in HTTP-date form is read against the wall clock.
    """
    if isinstance(outcome, TransportError):
        kind = _failure_kind(outcome)
        delay = retry_delay(
            policy,
            attempt=attempt,
            kind=kind,
            idempotent=request.idempotent,
            elapsed=elapsed,
            random=random,
        )
        return Decision(error=outcome, reason=kind.value, delay=delay)
    delay = retry_delay(
        policy,
        attempt=attempt,
        kind=FailureKind.STATUS,
        status=outcome.status,
        retry_after=retry_after_seconds(outcome),
        idempotent=request.idempotent,
        elapsed=elapsed,
        random=random,
    )
    error = error_from_response(outcome, request)
    return Decision(error=error, reason=f"status {outcome.status}", delay=delay)
