"""Shared adaptive backoff: when one request is rate limited, the whole client slows down.

Two mechanisms, both shared by every task using one client:

* a **gate**: a 429 (or a 503 with ``Retry-After``) holds every request that has
  not been sent yet until the time the server named (``default_pause`` when it
  named none), so the other tasks stop hammering an API that already said no;
* an **AIMD concurrency limit**: the number of requests in flight is multiplied
  by ``decrease_factor`` on rate limiting (at most once per congestion episode:
  only answers to requests sent after the last decrease count) and grows back
  by ``1 / limit`` per success, i.e. by about one per round of successes,
  between ``min_concurrency`` and the client's ``max_concurrency``.

The state here is plain arithmetic on an injected clock; the client does the
waiting and applies :attr:`AdaptiveLimiter.limit` to its capacity limiter.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import attrs

from ._public import public

__all__ = ["AdaptiveConcurrency", "AdaptiveLimiter"]


@attrs.frozen(kw_only=True)
class AdaptiveConcurrency:
    """Settings of the shared backoff. Pass ``adaptive=None`` to the client to turn it off.

    Attributes:
        min_concurrency: the limit never shrinks below this.
        decrease_factor: the limit is multiplied by this on rate limiting.
        default_pause: how long the gate closes on a 429 without ``Retry-After``.
        max_pause: the gate never closes for longer than this.
    """

    min_concurrency: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    decrease_factor: float = attrs.field(
        default=0.5, validator=[attrs.validators.gt(0), attrs.validators.lt(1)]
    )
    default_pause: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    max_pause: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))


class AdaptiveLimiter:
    """The shared state: when the gate opens, and how many requests may be in flight."""

    def __init__(
        self,
        settings: AdaptiveConcurrency,
        max_concurrency: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.max_concurrency = max_concurrency
        self._clock = clock
        self._limit = float(max_concurrency)
        self.at_max = True
        """The limit is at ``max_concurrency``: successes have nothing to grow."""
        self._last_decrease = -math.inf
        self.resume_at = -math.inf
        self.rate_limited = 0
        self.decreases = 0

    def __repr__(self) -> str:
        return f"AdaptiveLimiter(limit={self.limit}, rate_limited={self.rate_limited})"

    @property
    def limit(self) -> int:
        """Requests allowed in flight now."""
        floor = min(self.settings.min_concurrency, self.max_concurrency)
        return max(floor, min(self.max_concurrency, int(self._limit)))

    def pause_remaining(self) -> float:
        """Seconds until the gate opens (0 when open)."""
        return max(0.0, self.resume_at - self._clock())

    def on_rate_limited(self, *, retry_after: float | None, sent_at: float) -> None:
        """A request sent at ``sent_at`` (clock time) was told to slow down."""
        now = self._clock()
        self.rate_limited += 1
        pause = self.settings.default_pause if retry_after is None else retry_after
        self.resume_at = max(self.resume_at, now + min(pause, self.settings.max_pause))
        # Many requests of one burst are refused together: count that as one
        # episode, so the limit halves once rather than collapsing to the floor.
        if sent_at >= self._last_decrease:
            self._limit = max(
                float(self.settings.min_concurrency), self._limit * self.settings.decrease_factor
            )
            self._last_decrease = now
            self.decreases += 1
            self.at_max = self._limit >= self.max_concurrency

    def on_success(self) -> bool:
        """Grow the limit after a success; ``True`` when it changed."""
        if self._limit >= self.max_concurrency:
            return False
        self._limit = min(float(self.max_concurrency), self._limit + 1.0 / self._limit)
        self.at_max = self._limit >= self.max_concurrency
        return True


public("avaturn_async", AdaptiveConcurrency, AdaptiveLimiter)
