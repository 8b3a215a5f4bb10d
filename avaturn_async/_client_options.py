"""A client's options as one value, ``ClientOptions``, and how ``with_options`` changes it.

The constructor's arguments are read by ``_options`` (defaults from the
environment, deprecated spellings); the network arguments (``session``,
``proxy``, ``trust_env``, ``ssl``) go to the transport, not into the value, as do
the key and the user agent, which stay out of anything that could be printed.
"""

from __future__ import annotations

from ssl import SSLContext
from typing import Any, Generic, Literal, NoReturn, TypeVar, overload

import aiohttp
import attrs

from . import _options as arguments
from ._adaptive import AdaptiveConcurrency
from ._clock import Clock
from ._errors import ConfigurationError
from ._observe import Hook, Tracer
from ._options import DEFAULT_BASE_URL
from ._pacing import RateBudget
from ._retry import RetryPolicy
from ._transport import AiohttpTransport, Timeouts, Transport

__all__ = ["ClientOptions", "Forward", "derive_options", "own_transport"]

T = TypeVar("T")

DEFAULT_RETRY = RetryPolicy()
DEFAULT_TIMEOUTS = Timeouts()
DEFAULT_ADAPTIVE = AdaptiveConcurrency()
DEFAULT_CLOCK = Clock()


def _at_least_one(options: object, field: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{field.name} must be at least 1")


def _is_clock(options: object, field: object, clock: object) -> None:
    if not isinstance(clock, Clock):
        raise ConfigurationError("clock must be an avaturn_async.Clock")


@attrs.frozen(kw_only=True)
class ClientOptions:
    """A client's options as one value: ``client.options``.

    Each field means what the :class:`AvaturnClient` argument of the same name does
    (``adaptive`` is ``None`` when off). :meth:`AvaturnClient.with_options` changes
    ``base_url``, ``retry``, ``timeouts``, the hooks and ``tracing`` (and the API
    key, which is kept apart so that no printable value holds it); the rest go
    with the pool.
    """

    base_url: str = DEFAULT_BASE_URL
    retry: RetryPolicy = DEFAULT_RETRY
    timeouts: Timeouts = DEFAULT_TIMEOUTS
    max_concurrency: int = attrs.field(default=16, validator=_at_least_one)
    adaptive: AdaptiveConcurrency | None = DEFAULT_ADAPTIVE
    on_request: Hook | None = None
    on_response: Hook | None = None
    on_retry: Hook | None = None
    on_error: Hook | None = None
    tracing: bool | Literal["auto"] = "auto"
    clock: Clock = attrs.field(default=DEFAULT_CLOCK, validator=_is_clock)
    allowed_download_hosts: tuple[str, ...] = ()
    rate_limit: float | RateBudget | None = None


def derive_options(
    options: ClientOptions, tracer: Tracer, changes: dict[str, Any]
) -> tuple[ClientOptions, Tracer]:
    """``with_options``: ``options`` with ``changes`` (its arguments as given), and the tracer."""
    if "base_url" in changes:
        changes["base_url"] = arguments.read_base_url(text(changes["base_url"], "base_url"))
    if "max_attempts" in changes:
        given = changes.get("retry", options.retry)
        changes["retry"] = attrs.evolve(given, max_attempts=changes.pop("max_attempts"))
    if "timeout" in changes:
        given = changes.get("timeouts", options.timeouts)
        changes["timeouts"] = attrs.evolve(given, request=changes.pop("timeout"))
    if "tracing" in changes:
        changes["tracing"] = arguments.tracing_mode(changes["tracing"])
        tracer = Tracer(changes["tracing"])
    return attrs.evolve(options, **changes), tracer


def text(value: object, name: str) -> str:
    """``value``, which must be a ``str`` (an option changed by ``with_options``)."""
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a str")
    return value


def own_transport(
    given: Transport | None,
    limit: int,
    session: aiohttp.ClientSession | None,
    proxy: str | None,
    trust_env: bool,
    ssl: SSLContext | None,
) -> Transport:
    """``given``, else an :class:`AiohttpTransport` with the client's network arguments."""
    if given is None:
        return AiohttpTransport(
            session=session, connection_limit=limit, proxy=proxy, trust_env=trust_env, ssl=ssl
        )
    if proxy is not None or ssl is not None:
        raise ConfigurationError(
            "proxy= and ssl= set up the client's own AiohttpTransport: with transport=, "
            "pass them to your transport (AiohttpTransport(proxy=..., ssl=...))"
        )
    return given


class Forward(Generic[T]):
    """A read-only attribute read from the owner's attribute ``via`` under the same name:
    the client's options, the sync facade's async client, a job's result."""

    def __init__(self, via: str) -> None:
        self._via = via

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Forward[T]: ...

    @overload
    def __get__(self, instance: object, owner: type) -> T: ...

    def __get__(self, instance: object, owner: type) -> Any:
        return self if instance is None else getattr(getattr(instance, self._via), self._name)

    def __set__(self, instance: object, value: NoReturn) -> None:  # read-only, as a property
        raise AttributeError(f"property {self._name!r} of {type(instance).__name__} has no setter")
