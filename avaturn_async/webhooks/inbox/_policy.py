"""Retry policy of the webhook inbox's worker, and how failures are recorded."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ..._backoff import ExponentialBackoff
from ..._errors import ConfigurationError
from ..._redact import redact_urls
from .._router import DispatchResult

__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_MAX_ATTEMPTS",
    "Backoff",
    "WorkerPolicy",
    "describe_error",
    "dispatch_error",
    "exponential_backoff",
    "make_policy",
]

Backoff = Callable[[int], float]
"""Seconds to wait after failed attempt number ``n`` (1-based) before the next one."""

_MAX_ERROR_CHARS = 500

DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_LEASE = 30.0


def exponential_backoff(
    initial: float = 5.0, *, factor: float = 3.0, maximum: float = 3600.0
) -> Backoff:
    """``initial * factor ** (n - 1)`` seconds after the n-th failure, at most ``maximum``.

    The default waits 5 s, 15 s, 45 s, ... up to an hour: with the default 8
    attempts an event goes dead about 1.5 hours after its first failure.
    """
    if initial < 0 or factor < 1 or maximum < initial:
        raise ConfigurationError("backoff needs initial >= 0, factor >= 1, maximum >= initial")
    return ExponentialBackoff(initial=initial, factor=factor, maximum=maximum).delay


@attrs.frozen(kw_only=True)
class WorkerPolicy:
    """How a worker retries; validated once, when the worker starts."""

    max_attempts: int
    backoff: Backoff
    lease: float
    batch: int

    def __attrs_post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("max_attempts must be at least 1")
        if not self.lease > 0:
            raise ConfigurationError("lease must be positive")
        if self.batch < 1:
            raise ConfigurationError("concurrency (or limit) must be at least 1")


def make_policy(
    max_attempts: int, backoff: Backoff | None, lease: float, batch: int
) -> WorkerPolicy:
    return WorkerPolicy(
        max_attempts=max_attempts,
        backoff=backoff if backoff is not None else exponential_backoff(),
        lease=lease,
        batch=batch,
    )


def describe_error(exc: BaseException) -> str:
    """``Type: message`` for ``last_error``: URL query strings redacted, length bounded."""
    message = redact_urls(str(exc))
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."


def dispatch_error(result: DispatchResult) -> str | None:
    """``None`` if every handler succeeded, else the first failure (and how many more)."""
    if result.ok:
        return None
    first = describe_error(result.failures[0].exception)
    more = len(result.failures) - 1
    return first if not more else f"{first} (and {more} more handler failure(s))"
