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

The gate is a seam, :class:`RateLimitGate` (``PostgresGate`` shares it between
processes); each process keeps its own AIMD limit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import attrs

from ._deprecated import renamed_argument
from ._errors import AT_LEAST_ONE, NOT_NEGATIVE, option_validator

__all__ = ["AdaptiveConcurrency", "AdaptiveLimiter", "InProcessGate", "RateLimitGate"]


@runtime_checkable
class RateLimitGate(Protocol):
    """A shared "paused until": where one sharer's 429 holds every sharer's requests.

    Times are durations, never clock readings, so sharers with different clocks
    (processes, machines) agree: each converts the remaining pause into a
    deadline on its own clock when told.
    """

    def close_for(self, seconds: float) -> None:
        """Hold new requests of every sharer for ``seconds`` from now.

        Never shortens a pause already in force. Must not block: a shared gate
        sends the news in the background.
        """

    def subscribe(self, paused: Callable[[float], None]) -> None:
        """Call ``paused(remaining_seconds)`` whenever any sharer closes the gate
        (this one included), and once at once if the gate is closed now."""


class InProcessGate:
    """The default gate: shared by the clients of one process that are given it."""

    def __init__(
        self, *, now: Callable[[], float] = time.monotonic, clock: Callable[[], float] | None = None
    ) -> None:
        self._now = renamed_argument("InProcessGate", "clock", "now", clock, now)
        self._until = -math.inf
        self._subscribers: list[Callable[[float], None]] = []

    def __repr__(self) -> str:
        return f"InProcessGate(remaining={max(0.0, self._until - self._now()):.3f})"

    def close_for(self, seconds: float) -> None:
        self._until = max(self._until, self._now() + seconds)
        for paused in self._subscribers:
            paused(seconds)

    def subscribe(self, paused: Callable[[float], None]) -> None:
        self._subscribers.append(paused)
        remaining = self._until - self._now()
        if remaining > 0:
            paused(remaining)


_FRACTION = option_validator(attrs.validators.and_(attrs.validators.gt(0), attrs.validators.lt(1)))


@attrs.frozen(kw_only=True)
class AdaptiveConcurrency:
    """Settings of the shared backoff. Pass ``adaptive=False`` to the client to turn it off.

    Attributes:
        min_concurrency: the limit never shrinks below this.
        decrease_factor: the limit is multiplied by this on rate limiting.
        default_pause: how long the gate closes on a 429 without ``Retry-After``.
        max_pause: the gate never closes for longer than this.
        gate: where the pause is kept: ``None`` for this client's own; an
            :class:`InProcessGate` given to several clients, or a shared gate
            such as ``avaturn_async.postgres.PostgresGate``, pauses them all.
    """

    min_concurrency: int = attrs.field(default=1, validator=AT_LEAST_ONE)
    decrease_factor: float = attrs.field(default=0.5, validator=_FRACTION)
    default_pause: float = attrs.field(default=1.0, validator=NOT_NEGATIVE)
    max_pause: float = attrs.field(default=60.0, validator=NOT_NEGATIVE)
    gate: RateLimitGate | None = attrs.field(default=None, eq=False)


class AdaptiveLimiter:
    """The shared state: when the gate opens, and how many requests may be in flight."""

    def __init__(
        self,
        settings: AdaptiveConcurrency,
        max_concurrency: int,
        *,
        now: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings
        self.max_concurrency = max_concurrency
        self._now = now = renamed_argument("AdaptiveLimiter", "clock", "now", clock, now)
        self._limit = float(max_concurrency)
        self.at_max: bool = True
        """The limit is at ``max_concurrency``: successes have nothing to grow."""
        self._last_decrease = -math.inf
        self.resume_at: float = -math.inf
        self.rate_limited: int = 0
        self.decreases: int = 0
        self.gate: RateLimitGate = (
            settings.gate if settings.gate is not None else InProcessGate(now=now)
        )
        self.gate.subscribe(self._paused)

    def __repr__(self) -> str:
        return f"AdaptiveLimiter(limit={self.limit}, rate_limited={self.rate_limited})"

    @property
    def limit(self) -> int:
        """Requests allowed in flight now."""
        floor = min(self.settings.min_concurrency, self.max_concurrency)
        return max(floor, min(self.max_concurrency, int(self._limit)))

    def pause_remaining(self) -> float:
        """Seconds until the gate opens (0 when open)."""
        return max(0.0, self.resume_at - self._now())

    def on_rate_limited(self, *, retry_after: float | None, sent_at: float) -> None:
        """A request sent at ``sent_at`` (clock time) was told to slow down."""
        now = self._now()
        self.rate_limited += 1
        pause = self.settings.default_pause if retry_after is None else retry_after
        self.gate.close_for(min(pause, self.settings.max_pause))
        # Many requests of one burst are refused together: count that as one
        # episode, so the limit halves once rather than collapsing to the floor.
        if sent_at >= self._last_decrease:
            self._limit = max(
                float(self.settings.min_concurrency), self._limit * self.settings.decrease_factor
            )
            self._last_decrease = now
            self.decreases += 1
            self.at_max = self._limit >= self.max_concurrency

    def _paused(self, remaining: float) -> None:
        """The gate closed (here or in another sharer) for ``remaining`` seconds."""
        self.resume_at = max(self.resume_at, self._now() + remaining)

    def on_success(self) -> bool:
        """Grow the limit after a success; ``True`` when it changed."""
        if self._limit >= self.max_concurrency:
            return False
        self._limit = min(float(self.max_concurrency), self._limit + 1.0 / self._limit)
        self.at_max = self._limit >= self.max_concurrency
        return True
