"""A server-side rate limit for the emulator: a fixed window shared by all API routes.

Pure arithmetic on an injected clock, so it is tested without a server. The
emulator asks :meth:`FixedWindowLimit.admit` before handling each API request
and answers 429 with ``Retry-After`` (seconds, fractional) when refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import attrs

from ..._errors import AT_LEAST_ONE, option_validator

__all__ = ["FixedWindowLimit", "RateLimit"]


@attrs.frozen(kw_only=True)
class RateLimit:
    """At most ``requests`` API requests per ``per`` seconds, across all routes."""

    requests: int = attrs.field(validator=AT_LEAST_ONE)
    per: float = attrs.field(validator=option_validator(attrs.validators.gt(0)))


class FixedWindowLimit:
    """Counts requests in the current window; refusals say when the window ends."""

    def __init__(self, limit: RateLimit, *, now: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._now = now
        self._window_start = now()
        self._used = 0

    def admit(self) -> float | None:
        """``None`` when the request may go on, else the seconds until the next window."""
        now = self._now()
        if now - self._window_start >= self.limit.per:
            self._window_start, self._used = now, 0
        if self._used < self.limit.requests:
            self._used += 1
            return None
        return self.limit.per - (now - self._window_start)
