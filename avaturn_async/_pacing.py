"""Pacing API requests at a rate limit, instead of running into it.

Two paces, both applied to API requests only (photo uploads and downloads go to
pre-signed URLs elsewhere and are not counted by the API's limit):

* a **configured** one, ``AvaturnClient(rate_limit=N)``: at most N requests per
  second, spread evenly (GCRA, the generic cell rate algorithm: one "theoretical
  arrival time" ``tat``; a request may go at ``tat`` and moves it one interval on).
  ``rate_limit=`` also takes any :class:`RateBudget`, such as
  ``avaturn_async.postgres.PostgresRateBudget``, one budget for many processes.
  A :class:`LearningBudget` (``avaturn_async.postgres.PostgresLearnedPace``) is told
  every API answer and learns one pace for all its sharers, in place of the client's.
* a **learned** one (:class:`LearnedPace`), on by default with the adaptive
  backoff: until the server first answers 429 nothing is paced; then the rate the
  server admitted over the window that the 429's ``Retry-After`` ends is taken as
  its limit, and requests are paced a little under it, probing upward slowly (a
  percent per window without a 429) so that a limit that rises is found again.
  Servers that send ``x-ratelimit-remaining`` and ``x-ratelimit-reset`` (or the
  ``ratelimit-*`` draft names) are paced to spread what remains over what is left of
  their window, before any 429.

The arithmetic is pure (an injected clock); the client does the waiting.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol, runtime_checkable

from ._adaptive import AdaptiveLimiter
from ._clock import Clock
from ._errors import ConfigurationError

__all__ = [
    "Gcra",
    "LearnedPace",
    "LearningBudget",
    "Pacing",
    "RateBudget",
    "TokenBucket",
    "build_pacing",
    "told_rate",
]

SAFETY = 0.97
"""A learned pace starts this far under the rate the server was seen to admit."""
DECREASE = 0.95
"""A learned pace is multiplied by this on each later window that ends in a 429."""
PROBE_STEP = 0.02
"""A learned pace rises by this fraction after a window without a 429; the step
doubles with each further such window (up to :data:`MAX_PROBE_STEP`), so a client
whose sharers have stopped takes the whole limit again within a few windows."""
MAX_PROBE_STEP = 0.5
HEADROOM = 0.97
"""A configured rate is paced at this share of it: a server's window may start at any
request, and a request that leaves a few ms late brings the next one closer; 3 % of
room (30 ms a second) keeps R + 1 requests out of one window of a limit of R."""
DEFAULT_WINDOW = 1.0
"""The window assumed when a 429 names no ``Retry-After``."""


@runtime_checkable
class RateBudget(Protocol):
    """Where the pace of a client's API requests is kept (``rate_limit=``).

    :meth:`acquire` returns when one more request may be sent; a budget shared by
    several clients or processes spreads one rate over all of them.
    """

    async def acquire(self) -> None:
        """Wait for this request's turn."""


@runtime_checkable
class LearningBudget(RateBudget, Protocol):
    """A :class:`RateBudget` that learns its rate from the API's answers, for every
    client that shares it (``avaturn_async.postgres.PostgresLearnedPace``).

    A client given one as ``rate_limit`` learns no pace of its own: it tells the
    budget every API answer, and every pause its rate-limit gate hears of.
    """

    @property
    def paced(self) -> bool:
        """Whether :meth:`acquire` may wait (a rate is known): read on every request."""

    def observe(
        self, status: int, headers: Mapping[str, str], retry_after: float | None, sent_at: float
    ) -> None:
        """An API answer to a request sent at ``sent_at`` (``time.monotonic()``)."""

    def refused(self, retry_after: float | None) -> None:
        """A 429 (here, or heard through a shared gate); ``retry_after``: seconds left."""


class Gcra:
    """The generic cell rate algorithm: ``rate`` per second, ``burst`` at once at most.

    Pure: :meth:`reserve` books the next turn at clock time ``now`` and returns how
    long to wait for it.
    """

    def __init__(self, rate: float, *, burst: int = 1) -> None:
        if not rate > 0 or not math.isfinite(rate):
            raise ConfigurationError("a rate limit must be a positive number per second")
        if burst < 1:
            raise ConfigurationError("burst must be at least 1")
        self.rate: float = rate
        self.burst: int = burst
        self._tat = -math.inf

    @property
    def interval(self) -> float:
        return 1.0 / self.rate

    def reserve(self, now: float) -> float:
        """Book one turn; the seconds to wait before it (0 when it is now)."""
        interval = 1.0 / self.rate
        start = max(self._tat, now)
        self._tat = start + interval
        # Up to ``burst`` turns may be booked ahead of time (``tolerance``).
        return max(0.0, start - now - (self.burst - 1) * interval)


class TokenBucket:
    """A :class:`RateBudget` of one process: ``rate`` requests per second, evenly."""

    def __init__(
        self,
        rate: float,
        *,
        burst: int = 1,
        now: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        if not rate > 0 or not math.isfinite(rate):
            raise ConfigurationError("a rate limit must be a positive number per second")
        self.rate: float = rate
        """The configured rate (paced at :data:`HEADROOM` of it)."""
        self._gcra = Gcra(rate * HEADROOM, burst=burst)
        self._now = now
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate:g})"

    async def acquire(self) -> None:
        delay = self._gcra.reserve(self._now())
        if delay > 0:
            if self._sleep is None:
                import anyio

                await anyio.sleep(delay)
            else:
                await self._sleep(delay)


def told_rate(headers: Mapping[str, str], *, now: Callable[[], float] = time.time) -> float | None:
    """The rate ``x-ratelimit-remaining`` over ``x-ratelimit-reset`` (or the
    ``ratelimit-*`` draft names) allow: what remains spread over what is left of the
    server's window; ``None`` when an answer does not say."""
    remaining = _number(headers, "x-ratelimit-remaining", "ratelimit-remaining")
    reset = _number(headers, "x-ratelimit-reset", "ratelimit-reset")
    if remaining is None or reset is None:
        return None
    if reset > 1e9:  # an epoch time (GitHub's style), not seconds left
        reset -= now()
    if reset <= 0:
        return None
    return max(remaining, 1.0) / reset


def _number(headers: Mapping[str, str], *names: str) -> float | None:
    for name in names:
        value = headers.get(name)
        if value is not None:
            try:
                return float(value.split(",")[0].strip())
            except ValueError:
                return None
    return None


class LearnedPace:
    """The pace the server's answers teach (see the module docstring). Pure.

    A 429's ``Retry-After`` marks the end of the server's window. The requests
    admitted between two such ends, over the time between them, are the rate the
    server admits (to this client: with others sharing the limit, its share). The
    first window's start is unknown (it may have begun before this client's first
    request), so what it gives is only an upper bound, paced to until the next
    window measures the rate. After that, a window that ends in a 429 multiplies
    the pace by :data:`DECREASE`, and each window without one raises it, by
    :data:`PROBE_STEP` first and by doubling steps after (AIMD on the rate).
    Clients sharing a gate hear each other's 429s, so they slow down together.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._gcra: Gcra | None = None
        self._admitted = 0
        self._first_sent: float | None = None
        self._bound_only = False  # the pace is the first window's upper bound
        self._window_end = -math.inf
        self._probed_at = -math.inf
        self._step = PROBE_STEP
        self._held_back = False  # a request waited for its turn since the last probe
        self.learned: int = 0
        """How many windows that ended in a 429 set the pace."""

    @property
    def first_window(self) -> bool:
        """No 429 yet: the first request's time is still worth noting."""
        return self._window_end == -math.inf

    @property
    def rate(self) -> float | None:
        """Requests per second now paced to, ``None`` while nothing is paced."""
        return None if self._gcra is None else self._gcra.rate

    def _set(self, rate: float) -> None:
        if self._gcra is None:
            self._gcra = Gcra(rate)
        else:
            self._gcra.rate = rate

    def reserve(self, now: float) -> float:
        """Book a turn for a request about to be sent; the seconds to wait."""
        gcra = self._gcra
        if gcra is None:
            return 0.0
        if now - self._probed_at >= DEFAULT_WINDOW and now >= self._window_end:
            if self._held_back:  # a window without a 429, and the pace held requests
                gcra.rate *= 1.0 + self._step
                self._step = min(2 * self._step, MAX_PROBE_STEP)
            self._probed_at, self._held_back = now, False
        delay = gcra.reserve(now)
        self._held_back = self._held_back or delay > 0
        return delay

    def sent(self, at: float) -> None:
        """A request of the first window was sent at clock time ``at``."""
        if self._first_sent is None or at < self._first_sent:
            self._first_sent = at

    def admitted(self, headers: Mapping[str, str] | None = None) -> None:
        """An answer other than 429; ``headers`` may carry the server's own count."""
        self._admitted += 1
        if headers is not None:
            self._read_headers(headers)

    def refused(self, retry_after: float | None) -> None:
        """A 429 (here, or heard through a shared gate): its window's end is news."""
        now = self._clock()
        if now < self._window_end:
            return  # another refusal of the same window: heard already
        end = now + (DEFAULT_WINDOW if retry_after is None else max(retry_after, 0.0))
        start = self._first_sent if self.first_window else self._window_end
        current = self.rate
        if current is not None and not self._bound_only:
            self._set(current * DECREASE)
            self.learned += 1
        elif start is not None and end > start and self._admitted > 0:
            self._bound_only = self.first_window
            self._set(SAFETY * self._admitted / (end - start))
            self.learned += 1
        self._window_end, self._admitted, self._probed_at = end, 0, end
        self._step = PROBE_STEP

    def _read_headers(self, headers: Mapping[str, str]) -> None:
        rate = told_rate(headers)
        if rate is not None:
            self._set(rate)
            self._probed_at = self._clock()  # the server said: nothing to probe


class Pacing:
    """What the client waits on before an API request: its configured budget and
    the learned pace (either may be absent; a :class:`LearningBudget` learns in
    place of the latter)."""

    def __init__(
        self,
        budget: RateBudget | None,
        learned: LearnedPace | None,
        *,
        now: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.budget = budget
        self.learned = learned
        self.learning = budget if isinstance(budget, LearningBudget) else None
        self._now = now
        self._sleep = sleep

    @property
    def active(self) -> bool:
        """Whether a request may have to wait (read on every request: cheap)."""
        if self.learning is not None:
            return self.learning.paced
        return self.budget is not None or (
            self.learned is not None and self.learned.rate is not None
        )

    def observe(
        self, status: int, headers: Mapping[str, str], retry_after: float | None, sent_at: float
    ) -> None:
        """Teach the learned pace an API answer to a request sent at ``sent_at``."""
        if self.learning is not None:
            self.learning.observe(status, headers, retry_after, sent_at)
        elif self.learned is not None:
            if self.learned.first_window:
                self.learned.sent(sent_at)
            if status == 429:
                self.learned.refused(retry_after)
            else:
                self.learned.admitted(headers)

    async def wait_turn(self) -> float:
        """Wait for this request's turn; returns the clock time it is sent at."""
        if self.learned is not None:
            delay = self.learned.reserve(self._now())
            if delay > 0:
                await self._sleep(delay)
        if self.budget is not None:
            await self.budget.acquire()
        return self._now()


def build_pacing(
    rate_limit: float | RateBudget | None, adaptive: AdaptiveLimiter | None, clock: Clock
) -> Pacing | None:
    """A client's pacing: its ``rate_limit`` (a number makes a :class:`TokenBucket`),
    and with the ``adaptive`` backoff a :class:`LearnedPace` that hears every pause of
    its gate: a 429 seen by any client sharing the gate (other processes, with a
    ``PostgresGate``) slows them all, not only the one that was refused. A
    :class:`LearningBudget` hears the gate instead, and no pace of the client's own
    second-guesses the one it learns for all its sharers."""
    budget = (
        TokenBucket(rate_limit, now=clock.now, sleep=clock.sleep)
        if isinstance(rate_limit, (int, float))
        else rate_limit
    )
    learned = None
    if isinstance(budget, LearningBudget):
        if adaptive is not None:
            adaptive.gate.subscribe(budget.refused)
    elif adaptive is not None:
        learned = LearnedPace(clock=clock.now)
        adaptive.gate.subscribe(learned.refused)
    if budget is None and learned is None:
        return None
    return Pacing(budget, learned, now=clock.now, sleep=clock.sleep)
