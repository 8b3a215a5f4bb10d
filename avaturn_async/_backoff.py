"""The one backoff: how long to wait before the n-th retry. Pure: no I/O, no clock.

Every growing wait of the package comes from :class:`ExponentialBackoff`: the
client's retries, job polling, the webhook inbox's redeliveries, PostgreSQL
reconnects and the emulator's webhook retries. The random source is passed in,
so that the client draws from its :class:`~avaturn_async.Clock` (and a test can
fix it); elsewhere it is :func:`random.random`.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from typing import Literal

import attrs

__all__ = ["ExponentialBackoff"]

# Far past any maximum for a factor of 1.5 or more; keeps a huge attempt number cheap.
_MAX_EXPONENT = 64


@attrs.frozen(kw_only=True)
class ExponentialBackoff:
    """``initial * factor ** (n - 1)`` seconds before retry ``n``, at most ``maximum``, jittered.

    ``jitter``: ``0`` for none; a fraction ``j`` for a wait drawn uniformly within ``±j``
    of the nominal one (it stays near its size); ``"full"`` for a wait drawn uniformly
    in ``[0, nominal)`` (spreads a crowd of clients the most).
    """

    initial: float
    factor: float = 2.0
    maximum: float = float("inf")
    jitter: float | Literal["full"] = 0.0

    def nominal(self, attempt: int) -> float:
        """The wait before retry ``attempt`` (1 for the first), before jitter."""
        exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
        try:
            grown = self.initial * self.factor**exponent
        except OverflowError:  # a huge factor: past the maximum long ago
            return float(self.maximum)
        return float(min(self.maximum, grown))

    def delay(self, attempt: int, random: Callable[[], float] = _random.random) -> float:
        """The jittered wait before retry ``attempt``; ``random`` gives a float in ``[0, 1)``."""
        nominal = self.nominal(attempt)
        if self.jitter == "full":
            return random() * nominal
        if self.jitter:
            return nominal * (1.0 - self.jitter + 2.0 * self.jitter * random())
        return nominal
