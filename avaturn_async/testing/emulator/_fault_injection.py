"""Carrying out a :class:`~._fault_plan.FaultPlan`, and ``fail_next`` injections, on the
emulator's aiohttp server.

:class:`FaultInjector` numbers the requests of each route and the webhook events,
asks the pure ``_fault_plan.decide*`` functions what happens to each, and counts the
faults it applies; :func:`answer_with_fault` turns a decided failure into what the
client sees: an error status, a connection closed without an answer, or an answer
cut off mid-body, with the request handled first (the server acted) or not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..._errors import ConfigurationError
from ._fault_plan import (
    FaultDecision,
    FaultKind,
    FaultPlan,
    WebhookDecision,
    decide,
    decide_webhook,
)
from ._http import CREATED, UPLOAD_PACE, Handler, drain
from ._stats import EmulatorStats
from ._validation import EmulatorHTTPError

__all__ = ["FaultInjector", "answer_with_fault"]

_CUT_OFF_BODY = b'{"detail": "this answer was cut off by an injected fault"}'


class FaultInjector:
    """The installed plan, how many requests of each route (and events) it has seen,
    and the answers ``fail_next`` queued (``injections``)."""

    def __init__(self, plan: FaultPlan | None, routes: Iterable[str]) -> None:
        self._routes = frozenset(routes)
        self.injections: dict[str, list[_Injection]] = {}
        self._plan: FaultPlan | None = None
        self._requests: dict[str, int] = {}
        self._events = 0
        self.plan = plan

    @property
    def plan(self) -> FaultPlan | None:
        return self._plan

    @plan.setter
    def plan(self, plan: FaultPlan | None) -> None:
        """Install ``plan`` (``None``: no faults); counting starts again from 0."""
        if plan is not None:
            if not isinstance(plan, FaultPlan):
                raise TypeError(f"faults must be a FaultPlan or None, got {type(plan).__name__}")
            unknown = sorted(set(plan.routes) - self._routes)
            if unknown:
                raise ConfigurationError(
                    f"unknown route(s) {unknown} in the fault plan; expected {sorted(self._routes)}"
                )
        self._plan = plan
        self._requests = {}
        self._events = 0

    def inject(
        self, route: str, status: int, *, times: int, headers: Mapping[str, str], body: Any
    ) -> None:
        """Queue ``fail_next``'s answer for the next ``times`` requests of ``route``."""
        if route not in self._routes:
            expected = sorted(self._routes)
            raise ConfigurationError(f"unknown route {route!r}; expected one of {expected}")
        if times < 1 or not 100 <= status <= 599:
            raise ConfigurationError("times must be >= 1 and status a valid HTTP status")
        self.injections.setdefault(route, []).append(_Injection(status, headers, body, times))

    async def answer(
        self,
        request: web.Request,
        route: str,
        decision: FaultDecision | None,
        handler: Handler,
        stats: EmulatorStats,
    ) -> web.StreamResponse:
        """An injected answer, ``handler``'s answer or the decided failure; a slow
        upload is read at its pace."""
        injected = self._take(route)
        if injected is not None:
            await drain(request)
            return injected
        if decision is None:
            return await handler(request)
        pace = decision.upload_bytes_per_second
        if pace is not None and route == "upload" and (decision.kind is None or decision.acted):
            stats.count_fault("upload:slow_upload")
            request[UPLOAD_PACE] = pace
        if decision.kind is None:
            return await handler(request)
        return await answer_with_fault(request, route, decision, handler, stats)

    def _take(self, route: str) -> web.Response | None:
        queue = self.injections.get(route)
        if not queue:
            return None
        injection = queue[0]
        injection.remaining -= 1
        if injection.remaining == 0:
            queue.pop(0)
        return injection.response()

    def next_request(self, route: str) -> FaultDecision | None:
        """The decision for the next request of ``route``; ``None`` without a plan."""
        if self._plan is None:
            return None
        index = self._requests.get(route, 0)
        self._requests[route] = index + 1
        return decide(self._plan, route, index)

    def next_event(self, stats: EmulatorStats) -> WebhookDecision | None:
        """The decision for the next webhook event, counted in ``stats``; ``None``
        without a plan."""
        if self._plan is None:
            return None
        index = self._events
        self._events += 1
        decision = decide_webhook(self._plan, index)
        if decision.drop:
            stats.count_fault("webhook:drop")
        elif decision.copies > 1:
            stats.count_fault("webhook:duplicate")
        if not decision.drop and decision.delay > 0:
            stats.count_fault("webhook:delay")
        return decision


async def answer_with_fault(
    request: web.Request,
    route: str,
    decision: FaultDecision,
    handler: Handler,
    stats: EmulatorStats,
) -> web.StreamResponse:
    """Answer ``request`` with the decided failure, handling it first if ``acted``; a
    request the handler rejects (an :class:`EmulatorHTTPError`) changed nothing, so the
    failure is then counted as ``before``."""
    kind = decision.kind
    assert kind is not None
    acted = decision.acted
    answer: web.StreamResponse | None = None
    if acted:
        try:
            answer = await handler(request)
        except EmulatorHTTPError:
            acted = False
        else:
            created = request.get(CREATED)
            if created is not None:
                stats.ambiguous_creates.setdefault(route, []).append(created)
    stats.count_fault(f"{route}:{kind.value}:{'after' if acted else 'before'}")
    if kind is FaultKind.RESET:
        _close(request)
        # Never sent: the transport is closed.
        return web.Response(status=500)
    if kind is FaultKind.CUTOFF:
        return await _cut_off(request, answer)
    if not acted:
        await drain(request)
    headers = {"Retry-After": f"{decision.retry_after:g}"} if kind is FaultKind.RATE_LIMITED else {}
    status = kind.status
    assert status is not None
    detail = {"detail": f"injected failure ({kind.value})"}
    return web.json_response(detail, status=status, headers=headers)


def _close(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.close()


async def _cut_off(request: web.Request, answer: web.StreamResponse | None) -> web.StreamResponse:
    """Headers promising the whole body, half of it, then a closed connection."""
    body = _CUT_OFF_BODY
    if isinstance(answer, web.Response) and isinstance(answer.body, bytes) and answer.body:
        body = answer.body
    else:
        await drain(request)
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = len(body) + 1
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    _close(request)
    return response


@dataclass
class _Injection:
    status: int
    headers: Mapping[str, str]
    body: Any
    remaining: int

    def response(self) -> web.Response:
        if isinstance(self.body, str | bytes):
            return web.Response(
                status=self.status, body=self.body, headers=self.headers, content_type="text/plain"
            )
        body = {"detail": f"injected failure ({self.status})"} if self.body is None else self.body
        return web.json_response(body, status=self.status, headers=self.headers)
