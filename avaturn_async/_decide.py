"""The retry loop's decision: after a failed attempt, retry after how long, or give up.

Pure, as httpx keeps the decision apart from sending: the client's loop sends one
attempt, asks :func:`decide`, then waits or gives up. The rules themselves (what
is retried, backoff, budgets) are in ``_retry``.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ._answers import error_from_response, retry_after_seconds
from ._errors import APIError, CertificateError, ConnectError, RequestTimeoutError, TransportError
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
    if isinstance(outcome, CertificateError):  # the next attempt meets the same certificate
        return Decision(error=outcome, reason="certificate", delay=None)
    error: TransportError | APIError
    if isinstance(outcome, TransportError):
        kind, status, retry_after, error = _failure_kind(outcome), None, None, outcome
    else:
        kind, status, retry_after = FailureKind.STATUS, outcome.status, retry_after_seconds(outcome)
        error = error_from_response(outcome, request)
    delay = retry_delay(
        policy,
        attempt=attempt,
        kind=kind,
        status=status,
        retry_after=retry_after,
        idempotent=request.idempotent,
        elapsed=elapsed,
        random=random,
    )
    reason = kind.value if status is None else f"status {status}"
    return Decision(error=error, reason=reason, delay=delay)
