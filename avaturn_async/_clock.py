"""Where the client reads the time, waits, and draws retry jitter: one public seam.

Tests pass their own :class:`Clock` to ``AvaturnClient(clock=...)`` to record the
retry loop's waits instead of sleeping through them, or to make jitter fixed.
``clock=`` always means a :class:`Clock`; classes that only read the time take a
``now=`` function instead. :func:`utc` is the one conversion of seconds since the
epoch into the aware datetimes the inboxes store.
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

import anyio
import attrs

__all__ = ["Clock", "utc"]


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


def utc(timestamp: float) -> datetime:
    """Seconds since the epoch as an aware UTC datetime."""
    return datetime.fromtimestamp(timestamp, timezone.utc)
