"""``avaturn_async.sync.AvaturnClient``: an async client made with the same arguments,
each call run in an event loop of its own (``_bridge``); its jobs are ``sync._jobs``."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from ssl import SSLContext
from typing import Any, Literal

from .._adaptive import AdaptiveConcurrency, AdaptiveLimiter
from .._client import DEFAULT_MAX_DOWNLOAD_BYTES
from .._client import AvaturnClient as AsyncClient
from .._client_options import (
    DEFAULT_CLOCK,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    ClientOptions,
    Forward,
)
from .._clock import Clock
from .._errors import ConfigurationError
from .._events import Event
from .._hub import EventHub
from .._models import DownloadedFile
from .._observe import Hook
from .._pacing import RateBudget
from .._pool import creation_site, warn_unclosed
from .._retry import RetryPolicy
from .._transport import Timeouts, Transport
from ._bridge import Bridge
from ._resources import Avatars, Exports, Renders, Sessions, Users

__all__ = ["AvaturnClient"]

_UNSET: Any = object()


class AvaturnClient:
    """A blocking client for every Avaturn endpoint, for Django views, Celery tasks and scripts.

    The async client's constructor, endpoint groups, methods, errors and options,
    without ``await``::

        with AvaturnClient() as client:
            user = client.users.create()
            job = client.avatars.create_from_photos(user.id, frontal=..., side_1=...,
                                                    side_2=..., body_type="female")
            ready = job.wait(timeout=300)

    Each call runs in the client's own event loop, in a thread started on the first
    call (anyio's blocking portal), so the connection pool, request limit and
    shared backoff serve every thread: share one client across threads, and close
    it (``with``, or :meth:`close`) when the process no longer needs it. Calling it
    from inside a running event loop raises :class:`~avaturn_async.EventLoopError`:
    there, use :class:`avaturn_async.AvaturnClient`.

    The arguments are :class:`avaturn_async.AvaturnClient`'s, except ``session``:
    an ``aiohttp.ClientSession`` belongs to the loop that made it, and this
    client's loop is its own. An ``event_hub`` is fed with :meth:`publish`.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        max_concurrency: int = 16,
        transport: Transport | None = None,
        user_agent: str | None = None,
        event_hub: EventHub | None = None,
        adaptive: AdaptiveConcurrency | bool = True,
        on_request: Hook | None = None,
        on_response: Hook | None = None,
        on_retry: Hook | None = None,
        on_error: Hook | None = None,
        tracing: bool | Literal["auto"] = "auto",
        clock: Clock = DEFAULT_CLOCK,
        allowed_download_hosts: Iterable[str] = (),
        rate_limit: float | RateBudget | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
        ssl: SSLContext | None = None,
    ) -> None:
        # The same arguments, all by name (the tests hold the two signatures equal).
        calls = AsyncClient(**{k: v for k, v in locals().items() if k != "self"})
        self._bind(calls, Bridge(), owner=True)
        self._created_at = creation_site()

    def _bind(self, calls: AsyncClient, bridge: Bridge, *, owner: bool) -> None:
        self._async = calls
        self._bridge = bridge
        self._owner = owner
        self._closed = False

    # The endpoint groups, made on first use: ``with_options`` stays cheap.
    users: functools.cached_property[Users] = functools.cached_property(Users)
    sessions: functools.cached_property[Sessions] = functools.cached_property(Sessions)
    avatars: functools.cached_property[Avatars] = functools.cached_property(Avatars)
    renders: functools.cached_property[Renders] = functools.cached_property(Renders)
    exports: functools.cached_property[Exports] = functools.cached_property(Exports)

    @property
    def async_client(self) -> AsyncClient:
        """The async client behind this one (use it only inside this client's loop)."""
        return self._async

    options: Forward[ClientOptions] = Forward("async_client")
    base_url: Forward[str] = Forward("async_client")
    retry: Forward[RetryPolicy] = Forward("async_client")
    timeouts: Forward[Timeouts] = Forward("async_client")
    adaptive: Forward[AdaptiveConcurrency | None] = Forward("async_client")
    clock: Forward[Clock] = Forward("async_client")
    event_hub: Forward[EventHub | None] = Forward("async_client")

    @property
    def backoff(self) -> AdaptiveLimiter | None:
        """The live shared backoff (gate and concurrency limit); ``None`` when off."""
        return self._async.backoff

    @property
    def closed(self) -> bool:
        return self._closed or self._bridge.closed

    def with_options(
        self,
        *,
        api_key: str = _UNSET,
        base_url: str = _UNSET,
        retry: RetryPolicy = _UNSET,
        max_attempts: int = _UNSET,
        timeouts: Timeouts = _UNSET,
        timeout: float = _UNSET,
        on_request: Hook | None = _UNSET,
        on_response: Hook | None = _UNSET,
        on_retry: Hook | None = _UNSET,
        on_error: Hook | None = _UNSET,
        tracing: bool | Literal["auto"] = _UNSET,
    ) -> AvaturnClient:
        """A client with some options changed, sharing this one's loop, pool and limits.

        What :meth:`avaturn_async.AvaturnClient.with_options` does, cheap enough per call::

            client.with_options(api_key=KEY_B).users.create()  # another Avaturn project
        """
        changes = {k: v for k, v in locals().items() if v is not _UNSET and k != "self"}
        derived = object.__new__(AvaturnClient)
        derived._bind(self._async.with_options(**changes), self._bridge, owner=False)
        return derived

    def publish(self, event: Event) -> None:
        """Hand a webhook event to the client's ``event_hub``, for the jobs waiting on it.

        For a synchronous webhook receiver (a Django view): verify and parse the
        delivery, then ``client.publish(event)``.
        """
        hub = self._async.event_hub
        if hub is None:
            raise ConfigurationError("this client has no event_hub: AvaturnClient(event_hub=...)")
        self._bridge.call(lambda: hub.publish(event))

    def download(
        self,
        url: str,
        destination: str | os.PathLike[str],
        *,
        max_bytes: int | None = DEFAULT_MAX_DOWNLOAD_BYTES,
    ) -> DownloadedFile:
        """Stream a render or export URL to ``destination``: the async ``download()``, blocking."""
        calls = self._async
        return self._bridge.call(lambda: calls.download(url, destination, max_bytes=max_bytes))

    def close(self) -> None:
        """Close the connections and stop the client's loop. Calling it twice is harmless.

        A client made by :meth:`with_options` closes only itself, as in the async client.
        """
        if self._closed:
            return
        self._closed = True
        if self._owner:
            self._bridge.close(self._async.aclose)

    def __enter__(self) -> AvaturnClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"avaturn_async.sync.AvaturnClient(base_url={self.base_url!r}, api_key='***')"

    def __del__(self) -> None:
        # Only the owner of a started loop warns; the loop then closes the pool itself.
        bridge: Bridge | None = getattr(self, "_bridge", None)
        if bridge and bridge.started and not bridge.closed and self._owner and not self._closed:
            warn_unclosed(self, self._created_at, "'with AvaturnClient(...)' or client.close()")
            bridge.close_soon(self._async.aclose)
