"""Fault plans for the emulator: what goes wrong, how often, reproducibly. No I/O here.

A :class:`FaultPlan` says, per route, how often a request is answered 429 (with or
without ``Retry-After``), 500, 502 or 503, has its connection reset before any
answer, or has its answer cut off mid-body; how much latency is added; how often
an upload is received slowly; and how webhooks are dropped, duplicated, delayed
or reordered::

    plan = FaultPlan(
        seed=1,
        routes={"users.create": RouteFaults(rate_429=0.1, rate_500=0.05)},
        default=RouteFaults(rate_503=0.02, latency=(0.0, 0.01)),
        webhooks=WebhookFaults(drop=0.05, duplicate=0.1, delay=(0.0, 0.2), reorder=True),
    )
    emulator = AvaturnEmulator(faults=plan)   # or later: emulator.faults = plan

Decisions are pure functions of ``(seed, route, n)``: the n-th request of a route
(counted from 0 since the plan was installed) meets the same fault in every run,
whatever the other routes do meanwhile (:func:`decide`, :func:`decide_webhook`).

Whether the server *acted* matters to a client that must not create twice:

* 429 and 503 always come **before** the request is handled: nothing changed;
* 500, 502, a reset connection and a cut-off body come **after** the request was
  handled (the state changed, the answer is lost) with probability
  ``RouteFaults.acted``, and before it otherwise. A request the server rejected
  (a 4xx) changed nothing either way.

The emulator counts each applied fault in ``stats.faults`` under
``"<route>:<kind>:<before|after>"`` and lists the ids of records created by
requests whose answer was lost in ``stats.ambiguous_creates[route]``.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from ..._errors import NOT_NEGATIVE, ConfigurationError, option_validator

__all__ = [
    "FaultDecision",
    "FaultKind",
    "FaultPlan",
    "RouteFaults",
    "WebhookDecision",
    "WebhookFaults",
    "decide",
    "decide_webhook",
]


class FaultKind(str, enum.Enum):
    """A failure in place of a normal answer."""

    RATE_LIMITED = "429"
    """429 with a ``Retry-After`` header."""
    RATE_LIMITED_BARE = "429_no_retry_after"
    """429 without ``Retry-After``."""
    SERVER_ERROR = "500"
    BAD_GATEWAY = "502"
    UNAVAILABLE = "503"
    RESET = "reset"
    """The connection is closed without an answer."""
    CUTOFF = "cutoff"
    """Headers promise more body than is sent, then the connection is closed."""

    @property
    def may_act(self) -> bool:
        """Whether the server may have handled the request before this failure."""
        return self not in _NEVER_ACT

    @property
    def status(self) -> int | None:
        """The HTTP status sent, or ``None`` when no complete answer is."""
        return _STATUSES.get(self)


_NEVER_ACT = frozenset({FaultKind.RATE_LIMITED, FaultKind.RATE_LIMITED_BARE, FaultKind.UNAVAILABLE})
_STATUSES = {
    FaultKind.RATE_LIMITED: 429,
    FaultKind.RATE_LIMITED_BARE: 429,
    FaultKind.SERVER_ERROR: 500,
    FaultKind.BAD_GATEWAY: 502,
    FaultKind.UNAVAILABLE: 503,
}


def _probability(instance: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
        raise ConfigurationError(f"{attribute.name} must be a probability in [0, 1], got {value!r}")


def _seconds_range(
    instance: Any, attribute: attrs.Attribute[tuple[float, float]], value: tuple[float, float]
) -> None:
    low, high = value
    if not (math.isfinite(low) and math.isfinite(high) and 0.0 <= low <= high):
        raise ConfigurationError(f"{attribute.name} must be (low, high) with 0 <= low <= high")


def _to_range(value: float | tuple[float, float]) -> tuple[float, float]:
    if isinstance(value, int | float):
        return (float(value), float(value))
    low, high = value
    return (float(low), float(high))


@attrs.frozen(kw_only=True)
class RouteFaults:
    """Faults of one route. Rates are probabilities per request; their sum is at most 1.

    Attributes:
        rate_429: answer 429 with ``Retry-After: <retry_after>``.
        rate_429_no_retry_after: answer 429 without ``Retry-After``.
        rate_500, rate_502, rate_503: answer that status (JSON ``{"detail": ...}``).
        rate_reset: close the connection without answering.
        rate_cutoff: send the headers and part of the body, then close.
        acted: for 500, 502, reset and cut-off, the probability that the request
            was handled (state changed) before the failure.
        retry_after: the ``Retry-After`` value sent, in seconds.
        latency: ``(low, high)`` seconds (or one number) added before handling,
            drawn uniformly per request.
        slow_upload: the probability that an upload's body is read at
            ``upload_bytes_per_second`` (only the ``upload`` route reads one).
        upload_bytes_per_second: the pace of a slow upload.
    """

    rate_429: float = attrs.field(default=0.0, validator=_probability)
    rate_429_no_retry_after: float = attrs.field(default=0.0, validator=_probability)
    rate_500: float = attrs.field(default=0.0, validator=_probability)
    rate_502: float = attrs.field(default=0.0, validator=_probability)
    rate_503: float = attrs.field(default=0.0, validator=_probability)
    rate_reset: float = attrs.field(default=0.0, validator=_probability)
    rate_cutoff: float = attrs.field(default=0.0, validator=_probability)
    acted: float = attrs.field(default=0.5, validator=_probability)
    retry_after: float = attrs.field(default=0.0, validator=NOT_NEGATIVE)
    latency: tuple[float, float] = attrs.field(
        default=(0.0, 0.0), converter=_to_range, validator=_seconds_range
    )
    slow_upload: float = attrs.field(default=0.0, validator=_probability)
    upload_bytes_per_second: float = attrs.field(
        default=256 * 1024.0, validator=option_validator(attrs.validators.gt(0.0))
    )

    def __attrs_post_init__(self) -> None:
        total = sum(rate for _, rate in self.error_rates())
        if total > 1.0 + 1e-9:
            raise ConfigurationError(f"a route's failure rates add up to {total:g}, over 1")

    def error_rates(self) -> tuple[tuple[FaultKind, float], ...]:
        """Each failure with its rate, in the fixed order decisions use."""
        return (
            (FaultKind.RATE_LIMITED, self.rate_429),
            (FaultKind.RATE_LIMITED_BARE, self.rate_429_no_retry_after),
            (FaultKind.SERVER_ERROR, self.rate_500),
            (FaultKind.BAD_GATEWAY, self.rate_502),
            (FaultKind.UNAVAILABLE, self.rate_503),
            (FaultKind.RESET, self.rate_reset),
            (FaultKind.CUTOFF, self.rate_cutoff),
        )


@attrs.frozen(kw_only=True)
class WebhookFaults:
    """Faults of webhook deliveries, decided once per event.

    Attributes:
        drop: the probability that an event is never delivered.
        duplicate: the probability that an event is delivered twice (same ``webhook-id``).
        delay: ``(low, high)`` seconds (or one number) waited before delivering.
        reorder: hold events in batches, flushed when a batch holds the emulator's
            ``REORDER_BATCH_SIZE`` (2) events or ``REORDER_WINDOW`` (0.1 s) after its
            first event, whichever is first; each batch is delivered newest first.
    """

    drop: float = attrs.field(default=0.0, validator=_probability)
    duplicate: float = attrs.field(default=0.0, validator=_probability)
    delay: tuple[float, float] = attrs.field(
        default=(0.0, 0.0), converter=_to_range, validator=_seconds_range
    )
    reorder: bool = False


def _freeze_routes(routes: Mapping[str, RouteFaults]) -> Mapping[str, RouteFaults]:
    return MappingProxyType(dict(routes))


@attrs.frozen(kw_only=True)
class FaultPlan:
    """What goes wrong, per route (``routes``, else ``default``) and for webhooks.

    ``seed`` makes every decision reproducible. Route names are the emulator's
    ``ROUTES`` (the emulator rejects others when the plan is installed).
    """

    seed: int = 0
    routes: Mapping[str, RouteFaults] = attrs.field(factory=dict, converter=_freeze_routes)
    default: RouteFaults = RouteFaults()
    webhooks: WebhookFaults = WebhookFaults()

    def for_route(self, route: str) -> RouteFaults:
        return self.routes.get(route, self.default)


@attrs.frozen(kw_only=True)
class FaultDecision:
    """What happens to one request.

    ``kind`` is ``None`` for a normal answer. ``acted`` says whether the request is
    handled before the failure (always ``False`` without one). ``latency`` is
    added before handling; ``upload_bytes_per_second`` paces reading the body
    (``None``: full speed).
    """

    kind: FaultKind | None = None
    acted: bool = False
    latency: float = 0.0
    upload_bytes_per_second: float | None = None
    retry_after: float = 0.0


@attrs.frozen(kw_only=True)
class WebhookDecision:
    """What happens to one event: dropped, or sent ``copies`` times after ``delay``
    seconds (``reorder``: held with the next events, the batch sent newest first)."""

    drop: bool = False
    copies: int = 1
    delay: float = 0.0
    reorder: bool = False


def _rng(seed: int, stream: str, index: int) -> random.Random:
    # A string seed is hashed with SHA-512: stable across processes and versions.
    return random.Random(f"{seed}/{stream}/{index}")


def decide(plan: FaultPlan, route: str, index: int) -> FaultDecision:
    """The fate of request number ``index`` (from 0) of ``route`` under ``plan``.

    Every random number is drawn whether it is used or not, so that changing
    one rate does not reshuffle the others' decisions.
    """
    faults = plan.for_route(route)
    rng = _rng(plan.seed, route, index)
    roll, act_roll, latency_roll, slow_roll = (rng.random() for _ in range(4))
    kind: FaultKind | None = None
    for candidate, rate in faults.error_rates():
        if roll < rate:
            kind = candidate
            break
        roll -= rate
    low, high = faults.latency
    slow = faults.upload_bytes_per_second if slow_roll < faults.slow_upload else None
    return FaultDecision(
        kind=kind,
        acted=kind is not None and kind.may_act and act_roll < faults.acted,
        latency=low + (high - low) * latency_roll,
        upload_bytes_per_second=slow,
        retry_after=faults.retry_after,
    )


def decide_webhook(plan: FaultPlan, index: int) -> WebhookDecision:
    """The fate of event number ``index`` (from 0) under ``plan``."""
    faults = plan.webhooks
    rng = _rng(plan.seed, "webhook", index)
    drop_roll, duplicate_roll, delay_roll = (rng.random() for _ in range(3))
    low, high = faults.delay
    return WebhookDecision(
        drop=drop_roll < faults.drop,
        copies=2 if duplicate_roll < faults.duplicate else 1,
        delay=low + (high - low) * delay_roll,
        reorder=faults.reorder,
    )
