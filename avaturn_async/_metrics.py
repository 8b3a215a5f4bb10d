"""Metrics through the OpenTelemetry metrics API: no-ops until an application installs an SDK.

A library never configures the SDK (``docs/operations.md`` shows how an app does,
and the ``avaturn`` commands do it for ``--metrics-port``). Until then:

* nothing of OpenTelemetry is imported by this module at import time; the
  instruments are made on first use, from the API's proxy meter, which forwards
  to the SDK's once one is installed;
* the client's per-request path asks :meth:`ClientMetrics.enabled_at` (one time
  comparison, the provider looked up once a second) and records nothing while
  no SDK listens: its CPU per call stays that of a build without metrics;
* gauges are *observable*: read on collection, never kept up to date by the
  code they watch. Those of state in a database (the inbox's depth, the oldest
  pending delivery, the journal's rows by state) run one cheap query per
  collection on the event loop that registered them (:func:`watching`).

Names follow the semantic conventions where they name the thing
(``http.client.request.duration``); everything else is under ``avaturn.``.
The table of names, units and attributes is in ``docs/operations.md``.
"""

from __future__ import annotations

import functools
import math
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from . import _readings
from ._errors import TransportError

if TYPE_CHECKING:  # the webhook path imports this module: no models at run time
    from ._requests import Request, Response

__all__ = [
    "HTTP_DURATION_BUCKETS",
    "ClientMetrics",
    "count_delivery",
    "count_inbox",
    "count_retry",
    "count_row",
    "sdk_installed",
    "watch_hub",
    "watching",
]

A = TypeVar("A", bound="Response")

HTTP_DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0
)  # fmt: skip
"""The bucket boundaries the HTTP semantic conventions advise for request durations."""
_RECHECK = 1.0  # seconds between looks for an installed SDK while there is none


def sdk_installed() -> bool:
    """Whether the application installed a metrics SDK (not the API's proxy or no-op provider)."""
    try:
        from opentelemetry import metrics
    except ImportError:
        return False
    provider = metrics.get_meter_provider()
    return not type(provider).__module__.startswith("opentelemetry.metrics")


class _Instruments:
    """Every instrument, made once from the global (proxy) meter."""

    def __init__(self, meter: Any) -> None:
        counter = meter.create_counter
        self.request_duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests (one per attempt).",
            explicit_bucket_boundaries_advisory=HTTP_DURATION_BUCKETS,
        )
        self.retries = counter(
            "avaturn.client.retries", unit="{retry}", description="Attempts retried."
        )
        self.rate_limited = counter(
            "avaturn.client.rate_limited", unit="{response}", description="429 answers."
        )
        self.deliveries = counter(
            "avaturn.webhook.deliveries", unit="{delivery}", description="Webhook deliveries."
        )
        self.inbox = {
            step: counter(f"avaturn.inbox.{step}", unit="{delivery}", description=text)
            for step, text in _INBOX_STEPS.items()
        }
        self.rows = counter(
            "avaturn.onboard.rows.finished",
            unit="{row}",
            description="Onboarding rows finished by this process, by outcome.",
        )
        from opentelemetry.metrics import Observation

        def observed(read: Callable[[], Iterable[Any]]) -> Callable[[Any], Iterator[Any]]:
            return lambda options: (Observation(value, attributes) for value, attributes in read())

        gauge = meter.create_observable_gauge
        gauge("avaturn.client.concurrency.limit", [observed(_observe_limits)], unit="{request}",
              description="Requests a client lets in flight now (adaptive).")  # fmt: skip
        gauge("avaturn.hub.waiting", [observed(_observe_hubs)], unit="{job}",
              description="Jobs waiting on an event hub.")  # fmt: skip
        gauge("avaturn.inbox.events", [observed(_observe_inbox_events)], unit="{delivery}",
              description="Webhook inbox deliveries by status.")  # fmt: skip
        gauge("avaturn.inbox.oldest_pending.age", [observed(_observe_inbox_age)], unit="s",
              description="Age of the oldest pending inbox delivery (0: none).")  # fmt: skip
        gauge("avaturn.onboard.rows", [observed(_observe_rows)], unit="{row}",
              description="Onboarding journal rows by state.")  # fmt: skip


_INBOX_STEPS = {
    "stored": "Deliveries stored in the inbox (duplicates not counted).",
    "dispatched": "Inbox deliveries dispatched successfully (done).",
    "retried": "Inbox deliveries whose attempt failed and will be retried.",
    "dead_lettered": "Inbox deliveries moved to the dead letters.",
}
_made: _Instruments | None = None
_missing = False  # opentelemetry-api is not installed
_making = threading.Lock()


def _instruments() -> _Instruments | None:
    """The instruments, made on first use; ``None`` without ``opentelemetry-api``."""
    global _made, _missing
    if _made is not None or _missing:
        return _made
    try:
        from opentelemetry import metrics
    except ImportError:  # remembered: a failing import searches sys.path every time
        _missing = True
        return None
    from ._version import __version__

    with _making:
        if _made is None:
            _made = _Instruments(metrics.get_meter("avaturn_async", __version__))
    return _made


@functools.lru_cache(maxsize=256)
def _server(netloc: str, scheme: str) -> tuple[str, int]:
    """``server.address`` and ``server.port`` of a URL's authority."""
    host = netloc.rpartition("@")[2]
    if host.startswith("["):  # an IPv6 literal
        address, _, rest = host[1:].partition("]")
        port_text = rest[1:]
    else:
        address, _, port_text = host.partition(":")
    default = 443 if scheme == "https" else 80
    return address, int(port_text) if port_text.isdigit() else default


class ClientMetrics:
    """One client pool's metrics: its concurrency gauge, and the per-attempt timer."""

    __slots__ = ("__weakref__", "_checked_at", "_limit", "_on", "_server")

    def __init__(self, base_url: str, limit: Callable[[], int]) -> None:
        scheme, _, rest = base_url.partition("://")
        self._server = _server(rest.split("/", 1)[0], scheme)
        self._limit = limit
        self._on = False
        self._checked_at = -math.inf
        _CLIENTS.add(self)

    def enabled_at(self, now: float) -> bool:
        """Whether to record, given the monotonic time (the caller just read it)."""
        if self._on:
            return True
        if now - self._checked_at < _RECHECK:
            return False
        self._checked_at = now
        self._on = sdk_installed()
        return self._on

    async def timed(self, call: Request, url: str, sending: Awaitable[A]) -> A:
        """Await ``sending`` (one attempt) and record its duration, status and 429."""
        started = time.perf_counter()
        try:
            answer = await sending
        except TransportError as exc:
            self._record(call, url, time.perf_counter() - started, None, type(exc).__name__)
            raise
        status = answer.status
        error = str(status) if status >= 400 else None
        self._record(call, url, time.perf_counter() - started, status, error)
        return answer

    def _record(
        self, call: Request, url: str, elapsed: float, status: int | None, error: str | None
    ) -> None:
        made = _instruments()
        if made is None:
            return
        scheme, _, rest = url.partition("://")
        address, port = _server(rest.split("/", 1)[0], scheme)
        attributes: dict[str, str | int] = {
            "http.request.method": call.method,
            "server.address": address,
            "server.port": port,
            "avaturn.route": call.route,
        }
        if status is not None:
            attributes["http.response.status_code"] = status
        if error is not None:
            attributes["error.type"] = error
        made.request_duration.record(elapsed, attributes)
        if status == 429:
            made.rate_limited.add(1, {"server.address": address, "avaturn.route": call.route})


_CLIENTS: weakref.WeakSet[ClientMetrics] = weakref.WeakSet()


def _observe_limits() -> Iterator[tuple[int, Mapping[str, Any]]]:
    totals: dict[tuple[str, int], int] = {}
    for client in list(_CLIENTS):
        totals[client._server] = totals.get(client._server, 0) + client._limit()
    for (address, port), limit in totals.items():
        yield limit, {"server.address": address, "server.port": port}


def count_retry(route: str, reason: str) -> None:
    """One attempt retried; ``reason`` as :class:`RetryInfo` has it (``status 503``, ...)."""
    made = _instruments()
    if made is not None:
        made.retries.add(1, {"avaturn.route": route, "error.type": reason.removeprefix("status ")})


_RESULTS = {"processed": "accepted", "stored": "accepted", "duplicate": "duplicate"}


def count_delivery(outcome: str, status: int) -> None:
    """One webhook delivery answered: its pipeline ``outcome`` and HTTP ``status``.

    ``avaturn.webhook.result`` groups the outcomes: ``accepted``, ``duplicate``,
    ``refused`` (4xx, or contradicted by the API: the sender must not retry) and
    ``failed`` (5xx: the sender retries).
    """
    made = _instruments()
    if made is None:
        return
    result = _RESULTS.get(outcome) or ("failed" if status >= 500 else "refused")
    attributes = {
        "avaturn.webhook.outcome": outcome,
        "avaturn.webhook.result": result,
        "http.response.status_code": status,
    }
    made.deliveries.add(1, attributes)


def count_inbox(step: str, event_type: str) -> None:
    """An inbox delivery ``stored``, ``dispatched``, ``retried`` or ``dead_lettered``."""
    made = _instruments()
    if made is not None:
        made.inbox[step].add(1, {"avaturn.webhook.event": event_type})


def count_row(outcome: str) -> None:
    """An onboarding row finished here: ``ready`` or its failure kind."""
    made = _instruments()
    if made is not None:
        made.rows.add(1, {"avaturn.onboard.outcome": outcome})


_HUBS: weakref.WeakSet[Any] = weakref.WeakSet()


def watch_hub(hub: Any) -> None:
    """Report ``hub.waiting`` (jobs waiting on it) while the hub lives."""
    _HUBS.add(hub)


def _observe_hubs() -> Iterator[tuple[int, None]]:
    hubs = list(_HUBS)
    if hubs:
        yield sum(hub.waiting for hub in hubs), None


def watching(
    kind: str, label: str, read: Callable[[], Awaitable[Any]]
) -> AbstractContextManager[None]:
    """:func:`_readings.watching`, the gauges made before the first collection."""
    _instruments()
    return _readings.watching(kind, label, read)


def _observe_inbox_events() -> Iterator[tuple[int, Mapping[str, Any]]]:
    for label, gauges in _readings.readings("inbox"):
        for status, count in gauges.counts.items():
            yield count, {"avaturn.inbox": label, "avaturn.inbox.status": status}


def _observe_inbox_age() -> Iterator[tuple[float, Mapping[str, Any]]]:
    for label, gauges in _readings.readings("inbox"):
        if gauges.oldest_pending_age is not None:
            yield gauges.oldest_pending_age, {"avaturn.inbox": label}


def _observe_rows() -> Iterator[tuple[int, Mapping[str, Any]]]:
    for label, by_state in _readings.readings("journal"):
        for state, count in by_state.items():
            yield count, {"avaturn.journal": label, "avaturn.onboard.state": state}
