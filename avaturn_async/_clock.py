"""Where the client reads the time, waits, and draws retry jitter: one public seam.

Tests pass their own :class:`Clock` to ``AvaturnClient(clock=...)`` to record the
retry loop's waits instead of sleeping through them, or to make jitter fixed.
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Awaitable, Callable

import anyio
import attrs

__all__ = ["Clock"]


@attrs.frozen(kw_only=True)
class Clock:
    """The client's time source, sleep and jitter source.

    Attributes:
        now: monotonic seconds; retry budgets and the adaptive gate are measured on it.
        sleep: waits between retries and between job polls (``anyio.sleep``).
        random: a float in ``[0, 1)``: the jitter of retry waits and of job polls.
    """

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    random: Callable[[], float] = _random.random
