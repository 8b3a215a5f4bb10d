"""Retry decisions: which failures are retried, and after how long. No I/O here.

Retried: ``connect`` (the server never saw the request), ``timeout`` and
``connection_lost`` (no complete answer: the server may have acted), and the statuses
408, 429, 500, 502, 503 and 504. GET, PUT and DELETE are idempotent: all of these are
retried for them. The creating POSTs (``users/new``, ``avatars/new``, ``sessions/new``,
``renders/new`` and the photo upload) are not: repeating one after the server acted
creates a second user, avatar or render, so they are retried only when the failure
proves the server did not act (``connect``, 429, 503). After a read timeout or a 500
the caller can check (e.g. list the user's avatars) before trying again.

Waits grow as an :class:`ExponentialBackoff` with full jitter, unless the server sent
``Retry-After``: then that is waited, and one over ``max_retry_after`` stops retrying
at once (waiting less than asked would only earn another 429). A 429 proves the server
did not act, so 429s are bounded by ``max_total_time`` alone (and
``max_rate_limit_attempts`` when set), not by ``max_attempts``: a burst against a
steady rate limit loses no call with the default policy.
"""

from __future__ import annotations

import email.utils
import enum
import math
from collections.abc import Callable

import attrs

from ._backoff import ExponentialBackoff
from ._deprecated import warn_renamed
from ._errors import AT_LEAST_ONE, NOT_NEGATIVE

__all__ = ["FailureKind", "RetryPolicy", "parse_retry_after", "retry_delay"]


class FailureKind(str, enum.Enum):
    """What went wrong with one attempt, as far as retrying cares."""

    CONNECT = "connect"
    TIMEOUT = "timeout"
    CONNECTION_LOST = "connection_lost"
    STATUS = "status"


NON_IDEMPOTENT_SAFE_STATUSES = frozenset({429, 503})


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How the client retries. ``RetryPolicy.off()`` turns retrying off.

    Attributes:
        max_attempts: attempts in all, the first included (429 answers aside).
        max_rate_limit_attempts: attempts in all when the answers are 429; ``None``
            (the default) bounds them by ``max_total_time`` only.
        initial_delay: upper bound of the first jittered wait, in seconds.
        max_delay: upper bound of any jittered wait.
        max_total_time: no retry starts later than this many seconds after the first attempt.
        max_retry_after: the longest ``Retry-After`` honoured; a longer one ends retrying.
        retry_statuses: statuses retried for idempotent requests.
    """

    max_attempts: int = attrs.field(default=4, validator=AT_LEAST_ONE)
    initial_delay: float = attrs.field(default=0.5, validator=NOT_NEGATIVE)
    max_delay: float = attrs.field(default=8.0, validator=NOT_NEGATIVE)
    max_total_time: float = attrs.field(default=60.0, validator=NOT_NEGATIVE)
    max_retry_after: float = attrs.field(default=60.0, validator=NOT_NEGATIVE)
    retry_statuses: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
    max_rate_limit_attempts: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(AT_LEAST_ONE)
    )

    @classmethod
    def off(cls) -> RetryPolicy:
        """No retrying at all, 429s included: every failure is raised at once."""
        return cls(max_attempts=1, max_rate_limit_attempts=1)

    @classmethod
    def disabled(cls) -> RetryPolicy:
        """Deprecated: :meth:`off`."""
        warn_renamed("RetryPolicy.disabled()", "RetryPolicy.off()")
        return cls.off()

    def is_retryable(self, kind: FailureKind, status: int | None, *, idempotent: bool) -> bool:
        """Whether this failure may be retried at all, attempts and time aside."""
        if kind is FailureKind.CONNECT:
            return True
        if kind is FailureKind.STATUS:
            if status not in self.retry_statuses:
                return False
            return idempotent or status in NON_IDEMPOTENT_SAFE_STATUSES
        # timeout, connection_lost: the server may have acted.
        return idempotent

    def backoff(self, retry_number: int, random: Callable[[], float]) -> float:
        """The jittered wait before retry number ``retry_number`` (1 for the first retry)."""
        backoff = ExponentialBackoff(
            initial=self.initial_delay, maximum=self.max_delay, jitter="full"
        )
        return backoff.delay(retry_number, random)


def retry_delay(
    policy: RetryPolicy,
    *,
    attempt: int,
    kind: FailureKind,
    status: int | None = None,
    retry_after: float | None = None,
    idempotent: bool,
    elapsed: float,
    random: Callable[[], float],
) -> float | None:
    """Seconds to wait after failed attempt number ``attempt`` (1: the first); ``None``: give up."""
    if kind is FailureKind.STATUS and status == 429:
        limit = policy.max_rate_limit_attempts
        if limit is not None and attempt >= limit:
            return None
    elif attempt >= policy.max_attempts:
        return None
    if not policy.is_retryable(kind, status, idempotent=idempotent):
        return None
    if retry_after is not None:
        if retry_after > policy.max_retry_after:
            return None
        delay = max(0.0, retry_after)
    else:
        delay = policy.backoff(attempt, random)
    return None if elapsed + delay > policy.max_total_time else delay


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds, or an HTTP-date read against
    ``now``, the Unix time: a past date gives 0); ``None`` when missing or unparsable."""
    if value is None:  # no Retry-After, as on nearly every answer: the client asks each one
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return None if when.tzinfo is None else max(0.0, when.timestamp() - now)
