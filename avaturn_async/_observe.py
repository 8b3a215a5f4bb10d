"""Seeing what the client does: lifecycle hooks, response metadata, optional tracing.

* Hooks: ``on_request``, ``on_response``, ``on_retry`` and ``on_error`` are called
  with small frozen records (sync or async callables). A hook that raises is
  logged and ignored: observing must never break the call it observes.
* :func:`response_of` gives the :class:`ResponseMetadata` (status, headers, request
  id, rate-limit headers) of any model, list or job the client returned, without
  a mirror class per resource; API errors carry the same fields themselves.
* OpenTelemetry: when ``opentelemetry-api`` is importable, each attempt is a client
  span; when it is not, nothing is imported or allocated per request.
* Reporting a call: the ``report_*`` functions log each step of the client's retry
  loop and call its hook; the loop itself stays in ``_client``.

Records never hold the API key; paths are shown without query strings.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal, TypedDict, TypeVar, get_args, get_origin, overload

import anyio
import attrs

from . import _metrics, _models, _redact, _traces
from ._errors import ConfigurationError
from ._requests import Request, Response

__all__ = [
    "ErrorInfo",
    "Hook",
    "RateLimitInfo",
    "RequestInfo",
    "ResponseInfo",
    "ResponseList",
    "ResponseMetadata",
    "RetryInfo",
    "SdkResult",
    "Tracer",
    "log_sending",
    "report_answer",
    "report_failure",
    "report_request",
    "report_retry",
    "response_of",
    "traced",
]

logger = logging.getLogger("avaturn_async")
T = TypeVar("T")


@attrs.frozen(kw_only=True)
class RateLimitInfo:
    """Rate-limit headers, when the server sends them (``x-ratelimit-*`` or ``ratelimit-*``)."""

    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None
    """Seconds until the window resets, as the server says."""


def _header_number(headers: Mapping[str, str], suffix: str) -> float | None:
    for name in (f"x-ratelimit-{suffix}", f"ratelimit-{suffix}"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value.split(",")[0].strip())
        except ValueError:
            continue
    return None


@attrs.frozen(kw_only=True)
class ResponseMetadata:
    """What the HTTP answer said besides its body. ``headers`` has lower-case names."""

    route: str
    status: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    request_id: str | None
    attempts: int
    """Attempts the call took, the successful one included."""

    @property
    def rate_limit(self) -> RateLimitInfo | None:
        limit, remaining, reset = (
            _header_number(self.headers, suffix) for suffix in ("limit", "remaining", "reset")
        )
        if limit is None and remaining is None and reset is None:
            return None
        return RateLimitInfo(
            limit=None if limit is None else int(limit),
            remaining=None if remaining is None else int(remaining),
            reset=reset,
        )


@attrs.frozen(kw_only=True)
class RequestInfo:
    """Passed to ``on_request`` before each attempt."""

    route: str
    method: str
    path: str
    attempt: int


@attrs.frozen(kw_only=True)
class ResponseInfo:
    """Passed to ``on_response`` after each answer, success or not."""

    route: str
    method: str
    path: str
    attempt: int
    status: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    request_id: str | None
    elapsed: float


@attrs.frozen(kw_only=True)
class RetryInfo:
    """Passed to ``on_retry`` before waiting ``delay`` seconds for attempt ``attempt + 1``."""

    route: str
    method: str
    path: str
    attempt: int
    delay: float
    reason: str
    """``"status 503"``, ``"connect"``, ``"timeout"`` or ``"connection_lost"``."""


@attrs.frozen(kw_only=True)
class ErrorInfo:
    """Passed to ``on_error`` when a call fails for good (retries spent or not allowed)."""

    route: str
    method: str
    path: str
    attempts: int
    error: BaseException


Hook = Callable[[Any], Awaitable[None] | None]


async def call_hook(hook: Hook, info: object) -> None:
    """Run one hook; its failures are logged, cancellation propagates."""
    try:
        result = hook(info)
        if inspect.isawaitable(result):
            await result
    except anyio.get_cancelled_exc_class():
        raise
    except Exception:
        logger.exception("avaturn_async hook %r failed; the request goes on", hook)


class _About(TypedDict):
    route: str
    method: str
    path: str


def _about(call: Request) -> _About:
    """The ``route``, ``method`` and ``path`` every hook record starts with (typed, so the
    records' fields are still checked where it is unpacked)."""
    return {"route": call.route, "method": call.method, "path": call.display_path}


async def report_request(hook: Hook, call: Request, attempt: int) -> None:
    """``on_request`` before an attempt (callers skip this when it is unset)."""
    await call_hook(hook, RequestInfo(**_about(call), attempt=attempt))


def log_sending(call: Request, url: str, headers: Mapping[str, str], attempt: int) -> None:
    """The debug line before an attempt: where it goes and its headers, secrets hidden."""
    shown = _redact.redact_url(url) if call.absolute_url is not None else url
    hidden = _redact.redact_headers(headers)
    logger.debug("sending %s %s (attempt %d), headers %s", call.method, shown, attempt, hidden)


async def report_answer(
    hook: Hook | None, call: Request, answer: Response, attempt: int, elapsed: float
) -> None:
    """A debug log line and ``on_response`` after any answer."""
    path = call.display_path
    logger.debug("%s %s -> %d in %.3f s", call.method, path, answer.status, elapsed)
    if hook is not None:
        info = ResponseInfo(
            **_about(call),
            attempt=attempt,
            status=answer.status,
            headers=answer.headers,
            request_id=answer.request_id,
            elapsed=elapsed,
        )
        await call_hook(hook, info)


async def report_retry(
    hook: Hook | None, call: Request, attempt: int, reason: str, delay: float
) -> None:
    """An info log line and ``on_retry`` before waiting for the next attempt."""
    path = call.display_path
    _metrics.count_retry(call.route, reason)
    logger.info(
        "retrying %s %s in %.2f s (attempt %d: %s)", call.method, path, delay, attempt, reason
    )
    if hook is not None:
        info = RetryInfo(**_about(call), attempt=attempt, delay=delay, reason=reason)
        await call_hook(hook, info)


async def report_failure(hook: Hook | None, call: Request, attempts: int, error: Exception) -> None:
    """A warning (when the call was retried) and ``on_error`` when it fails for good."""
    path = call.display_path
    if attempts > 1:
        logger.warning(
            "giving up on %s %s after %d attempts: %s", call.method, path, attempts, error
        )
    if hook is not None:
        await call_hook(hook, ErrorInfo(**_about(call), attempts=attempts, error=error))


# Models an endpoint returns (``Answered``) and lists carry their answer in a slot,
# jobs in their __dict__; the metadata record is built only when someone asks.
_SLOT = "_avaturn_answer"


class ResponseList(list[T]):
    """A ``list`` that carries the metadata of the answer it was read from."""

    __slots__ = ("__weakref__", "_avaturn_answer")

    _avaturn_answer: tuple[str, Response]


def attach_metadata(obj: T, route: str, response: Response) -> T:
    object.__setattr__(obj, _SLOT, (route, response))
    return obj


def copy_metadata(target: T, source: object) -> T:
    """Let ``response_of(target)`` answer what ``response_of(source)`` does."""
    answer: tuple[str, Response] | None = getattr(source, _SLOT, None)
    return target if answer is None else attach_metadata(target, *answer)


SdkResult = (
    _models.NewUserResponse
    | _models.NewSessionResponse
    | _models.NewAvatarResponse
    | _models.ExternalAvatarCustomization
    | _models.PhotoUploadResult
    | _models.RenderResult
    | _models.NewExportResponse
    | ResponseList[Any]
)
"""What an endpoint returns (jobs aside: ``avatars.track()`` makes one without an answer)."""

_SDK_RESULTS = tuple(get_origin(result) or result for result in get_args(SdkResult))


@overload
def response_of(obj: SdkResult) -> ResponseMetadata: ...


@overload
def response_of(obj: object) -> ResponseMetadata | None: ...


def response_of(obj: object) -> ResponseMetadata | None:
    """The HTTP metadata of a model, list or job the client returned.

    Never ``None`` for what an endpoint returns (models and lists), so type
    checkers need no ``assert``: one of those types made some other way (built by
    hand, copied with ``attrs.evolve``) raises ``LookupError`` instead. Jobs and
    anything else without metadata give ``None``.
    """
    answer: tuple[str, Response] | None = getattr(obj, _SLOT, None)
    if answer is None:
        if isinstance(obj, _SDK_RESULTS):
            raise LookupError(
                f"this {type(obj).__name__} was not returned by an AvaturnClient call, "
                "so it has no response metadata"
            )
        return None
    route, response = answer
    return ResponseMetadata(
        route=route,
        status=response.status,
        headers={k.lower(): v for k, v in response.headers.items()},
        request_id=response.request_id,
        attempts=response.attempts,
    )


try:  # pragma: no cover - exercised by whichever environment runs the tests
    from opentelemetry import trace as _otel_trace
except ImportError:  # pragma: no cover
    _otel_trace = None  # type: ignore[assignment]


class Tracer:
    """Client spans when OpenTelemetry is set up; nothing at all otherwise.

    With ``enabled="auto"`` (the default) spans start once the application installs a
    real tracer provider: until then OpenTelemetry would only make no-op spans, at
    about a quarter of the SDK's per-request cost.
    """

    def __init__(self, enabled: bool | Literal["auto"] = "auto") -> None:
        if enabled is True and _otel_trace is None:
            raise ConfigurationError("tracing=True needs the opentelemetry-api package")
        self._auto = enabled == "auto" and _otel_trace is not None
        self._on = enabled is True and _otel_trace is not None
        self._checked_at = -1.0
        self._tracer = _otel_trace.get_tracer("avaturn_async") if self._on or self._auto else None

    def enabled_at(self, now: float) -> bool:
        """Whether to make spans, given the monotonic time (the caller just read it)."""
        if self._auto and not self._on:
            # Looking the provider up costs more than the rest of the check: once a second.
            if now - self._checked_at < 1.0:
                return False
            self._checked_at = now
            provider = _otel_trace.get_tracer_provider()
            if not isinstance(provider, _otel_trace.ProxyTracerProvider):
                self._on = True
                self._tracer = _otel_trace.get_tracer("avaturn_async")
        return self._on

    @property
    def active(self) -> bool:
        """Spans are being made (a tracer provider was found by :meth:`enabled_at`)."""
        return self._on

    @contextmanager
    def span(self, route: str, method: str, path: str, attempt: int) -> Iterator[Any]:
        if self._tracer is None:
            yield None
            return
        with self._tracer.start_as_current_span(
            f"avaturn {route}",
            kind=_otel_trace.SpanKind.CLIENT,
            attributes={
                "http.request.method": method,
                "url.path": path,
                "avaturn.route": route,
                "avaturn.attempt": attempt,
            },
        ) as span:
            yield span


A = TypeVar("A", bound=Response)


async def traced(tracer: Tracer, call: Request, attempt: int, sending: Awaitable[A]) -> A:
    """Await ``sending`` (one attempt, not started yet) inside a client span."""
    with tracer.span(call.route, call.method, call.display_path, attempt) as span:
        answer = await sending
        if span is not None:
            span.set_attribute("http.response.status_code", answer.status)
            if answer.status >= 400:
                span.set_status(_otel_trace.Status(_otel_trace.StatusCode.ERROR))
            else:  # the span a webhook about what this call made links back to
                _traces.note_client_span(span.get_span_context())
    return answer
