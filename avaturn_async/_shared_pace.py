"""The arithmetic of one pace learned by many processes together. Pure: times are given.

``avaturn_async.postgres.PostgresLearnedPace`` keeps one :class:`SharedPace` in a
database row that every worker books its turns from (one GCRA timeline at ``rate``),
and changes it only through the functions here, with every time on the database's
clock, so that workers whose clocks disagree agree on it. It follows one process's
:class:`~avaturn_async._pacing.LearnedPace`, with one rate for all of them:

* until the server first answers 429 nothing is paced (``rate`` is ``None``);
* a 429 ends a window (``Retry-After`` says when). In a window that *measures*
  (the first one, and the next one that ends in a 429 while the rate is only the
  first's upper bound), every worker that hears of the 429 adds the rate the server
  admitted *to it* over the window (its :class:`Share`): the sum is the rate
  admitted to all of them, paced at :data:`SAFETY` of it. The first window may have
  begun before any request, so what it gives is only an upper bound;
* after that, a window that ends in a 429 multiplies the rate by :data:`DECREASE`
  once (whichever worker hears of it first), or takes it back to where it was before
  a raise no window has proven yet, if that is lower: a probe that overshot is undone
  in one window, not in many. A window that held requests back and ended without a
  429 raises the rate, by :data:`PROBE_STEP` and then by doubling steps.

The rate is the whole limit, not a worker's part of it: a worker whose sharers have
stopped books at the whole rate at once, instead of probing its way up to it.
"""

from __future__ import annotations

import math

import attrs

from ._pacing import DECREASE, DEFAULT_WINDOW, MAX_PROBE_STEP, PROBE_STEP, SAFETY

__all__ = ["SAME_WINDOW", "Share", "SharedPace", "heard_refusal", "probe", "told"]

SAME_WINDOW = 0.1
"""A 429 whose window ends at most this long after the one recorded is of that window
(heard late, through a gate, just as the window ended), not of a new one."""


@attrs.frozen(kw_only=True)
class SharedPace:
    """What the workers sharing a learned pace know of the server's rate.

    Attributes:
        rate: requests per second for all of them; ``None`` while nothing is paced.
        window_end: when the last window that ended in a 429 ended.
        measured: the rates the workers added for that window so far, while it
            measures (``None`` when it does not).
        bound_only: ``rate`` is the first window's upper bound, to be measured again.
        probed_at: when the rate was last raised, or found not worth raising.
        step: the fraction the next raise adds.
        held: a request waited for its turn since ``probed_at``.
        raised_from: the rate before the last raise, until a window without a 429
            proves the raise.
    """

    rate: float | None = None
    window_end: float | None = None
    measured: float | None = None
    bound_only: bool = False
    probed_at: float | None = None
    step: float = PROBE_STEP
    held: bool = False
    raised_from: float | None = None


def heard_refusal(
    pace: SharedPace, heard_at: float, end: float, share: float
) -> SharedPace | None:
    """A worker heard at ``heard_at`` of a 429 whose window ends at ``end``; ``share``
    is the rate the server admitted to that worker over the window. The new pace, or
    ``None`` when nothing changes (another worker recorded this window already)."""
    recorded = pace.window_end
    if recorded is not None and (heard_at < recorded or end < recorded + SAME_WINDOW):
        if pace.measured is None or not share > 0:
            return None
        measured = pace.measured + SAFETY * share
        return attrs.evolve(pace, rate=measured, measured=measured)
    fresh = attrs.evolve(
        pace, window_end=end, probed_at=end, step=PROBE_STEP, held=False, raised_from=None
    )
    if pace.rate is not None and not pace.bound_only:
        slower = pace.rate * DECREASE
        if pace.raised_from is not None:
            slower = min(slower, pace.raised_from)
        return attrs.evolve(fresh, rate=slower, measured=None)
    measured = SAFETY * share if share > 0 and math.isfinite(share) else 0.0
    return attrs.evolve(
        fresh,
        rate=measured if measured > 0 else pace.rate,
        measured=measured,
        bound_only=pace.rate is None,  # the first window: its start is unknown
    )


def probe(pace: SharedPace, now: float) -> SharedPace | None:
    """At ``now``, a window after the last probe and after the last 429's window:
    the rate raised if that window held requests back; ``None`` when it is not time."""
    if pace.rate is None:
        return None
    if pace.window_end is not None and now < pace.window_end:
        return None
    if pace.probed_at is not None and now - pace.probed_at < DEFAULT_WINDOW:
        return None
    if not pace.held:
        return attrs.evolve(pace, probed_at=now, raised_from=None)
    return attrs.evolve(
        pace,
        rate=pace.rate * (1.0 + pace.step),
        step=min(2 * pace.step, MAX_PROBE_STEP),
        probed_at=now,
        held=False,
        raised_from=pace.rate,  # proven by the window before this one
    )


def told(pace: SharedPace, now: float, rate: float) -> SharedPace:
    """The server's ``x-ratelimit-*`` headers allow ``rate`` for what is left of its
    window: paced to that, nothing to probe before a window has passed."""
    return attrs.evolve(pace, rate=rate, probed_at=now, raised_from=None)


class Share:
    """One worker's part in the windows that measure: the requests the server admitted
    to it since the last window ended, on the worker's own clock."""

    def __init__(self) -> None:
        self._first_sent: float | None = None
        self._admitted = 0
        self._window_end = -math.inf

    @property
    def first_window(self) -> bool:
        """No 429 heard yet: the first request's time is still worth noting."""
        return self._window_end == -math.inf

    @property
    def window_end(self) -> float:
        """When the last window heard of ended (or ends), on this worker's clock."""
        return self._window_end

    def sent(self, at: float) -> None:
        """A request of the first window was sent at ``at``."""
        if self._first_sent is None or at < self._first_sent:
            self._first_sent = at

    def admitted(self) -> None:
        """An answer other than 429."""
        self._admitted += 1

    def refused(self, now: float, retry_after: float | None) -> tuple[float, float] | None:
        """A 429 heard at ``now``: its window's end and this worker's admitted rate over
        the window, or ``None`` when this window was heard of already."""
        return self.ended(
            now, now + (DEFAULT_WINDOW if retry_after is None else max(retry_after, 0.0))
        )

    def ended(self, now: float, end: float) -> tuple[float, float] | None:
        """A window ending (or ended) at ``end`` in a 429, heard of at ``now``: as
        :meth:`refused`, for news that names the end itself (a sharer recorded it)."""
        if now < self._window_end or end < self._window_end + SAME_WINDOW:
            return None
        start = self._first_sent if self.first_window else self._window_end
        share = self._admitted / (end - start) if start is not None and end > start else 0.0
        self._window_end, self._admitted = end, 0
        return end, share
