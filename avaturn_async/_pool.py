"""What a client and the clients derived from it share, and its life: open, in one loop, closed.

* **One event loop.** aiohttp's connections belong to the event loop they were
  made in. A client is bound to the loop it is opened in (``async with``, or its
  first call); a call from any other loop (a second ``asyncio.run()``, a Celery
  task that starts its own loop) raises :class:`EventLoopError` at once, instead
  of aiohttp's ``RuntimeError`` deep in a connection or a call that never ends.
* **Closed once.** Closing the client that owns the pool closes it for every
  client derived from it.
* **Not dropped open.** A client garbage-collected while its pool is open warns
  (``ResourceWarning``, shown under ``python -X dev`` or ``-W default``), naming
  where it was created, as asyncio does, when ``-X dev`` or ``PYTHONTRACEMALLOC``
  is on: the stack is recorded then, at a cost only those modes pay.
"""

from __future__ import annotations

import asyncio
import enum
import sys
import traceback
import tracemalloc
import types
import warnings
from pathlib import Path
from typing import Any

import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from ._adaptive import AdaptiveLimiter
from ._client_options import ClientOptions
from ._errors import EventLoopError
from ._limiter import RequestLimiter
from ._metrics import ClientMetrics
from ._options import read_api_key
from ._pacing import Pacing, build_pacing
from ._transport import Transport

__all__ = [
    "CLOSED",
    "OPEN",
    "SharedPool",
    "State",
    "creation_site",
    "frozen_headers",
    "key_headers",
    "open_pool",
    "warn_unclosed",
]

_PACKAGE = str(Path(__file__).resolve().parent)


class State(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


# Read as module names on the hot path: an enum's attribute lookup costs ~80 ns.
OPEN, CLOSED = State.OPEN, State.CLOSED


# Stands in for a loop whose thread cannot be read: every call checks it fully.
_NEVER_IN_THREAD = types.SimpleNamespace(_thread_id=None)


def creation_site() -> traceback.StackSummary | None:
    """The stack outside this package that is creating a client: under ``-X dev`` or tracemalloc.

    Recorded rather than left to tracemalloc's own lookup, which finds no
    allocation for instances with a managed ``__dict__`` (Python 3.11 and later).
    """
    if not (sys.flags.dev_mode or tracemalloc.is_tracing()):
        return None
    frames = traceback.extract_stack()
    while frames and frames[-1].filename.startswith(_PACKAGE):
        frames.pop()  # the SDK's own frames (a sync facade building its async client)
    return traceback.StackSummary.from_list(frames[-8:])


@attrs.define
class SharedPool:
    """What a client and the clients ``with_options`` derives from it share."""

    transport: Transport
    limiter: RequestLimiter
    backoff: AdaptiveLimiter | None
    download_headers: CIMultiDictProxy[str]
    """The user agent alone: no key goes to a file server."""
    metrics: ClientMetrics
    """Request durations, 429s and the concurrency gauge (``_metrics``)."""
    pacing: Pacing | None = attrs.field(default=None, kw_only=True)
    """The pace of API requests (``rate_limit``, or learned from 429s); ``None``: none."""
    state: State = attrs.field(default=OPEN, kw_only=True)
    """``CLOSED`` once the pool's owner was closed: then every derived client is too."""
    loop: asyncio.AbstractEventLoop | None = attrs.field(default=None, kw_only=True)
    """The event loop the pool was opened in; ``None`` until then."""
    watched: Any = attrs.field(default=_NEVER_IN_THREAD, kw_only=True)
    """What the hot path reads ``_thread_id`` of: asyncio's bound loop has the id of the
    thread it runs in (so, in that thread, it is the running loop), else ``None``. A
    loop without it (and ``None``, before binding) sends every call to :meth:`enter_loop`.
    Cheaper than ``asyncio.get_running_loop()``, about 250 ns a call on Python 3.11."""
    created_at: traceback.StackSummary | None = attrs.field(factory=creation_site, kw_only=True)

    def enter_loop(self, client: object) -> None:
        """Bind the pool to the running loop, or raise unless it is the one bound."""
        running = asyncio.get_running_loop()
        if self.loop is None:
            self.loop = running
            self.watched = running if hasattr(running, "_thread_id") else _NEVER_IN_THREAD
        elif running is not self.loop:
            raise EventLoopError(
                f"{client!r} was opened in another event loop, which owns its connections. "
                "Create the client inside the loop that uses it: one per asyncio.run() (a "
                "Celery task, a script's main), or one for the process's lifetime in a "
                "long-running loop; from synchronous code use avaturn_async.sync.AvaturnClient"
            )

    def adapt(self, status: int, retry_after: float | None, sent_at: float) -> None:
        """Feed the shared backoff an answer's status, and resize the limiter if its limit moved."""
        adaptive = self.backoff
        assert adaptive is not None  # callers check
        if status == 429 or (status == 503 and retry_after is not None):
            adaptive.on_rate_limited(retry_after=retry_after, sent_at=sent_at)
        elif not (200 <= status < 300 and adaptive.on_success()):
            return
        limit, limiter = adaptive.limit, self.limiter
        if limit != limiter.total_tokens:
            limiter.total_tokens = limit

    def warn_unclosed(self, client: object) -> None:
        """The ``ResourceWarning`` of a client dropped while its pool is open."""
        how = "'async with AvaturnClient(...)' or 'await client.aclose()'"
        warn_unclosed(client, self.created_at, how)

def warn_unclosed(client: object, created_at: traceback.StackSummary | None, how: str) -> None:
    """Warn that ``client`` was dropped open, naming where it was created when recorded."""
    message = f"unclosed {client!r}: use {how} (its connections stay open until then)"
    if created_at is not None:
        site = "".join(created_at.format()).rstrip()
        message = f"{message}\nCreated at (most recent call last):\n{site}"
    warnings.warn(message, ResourceWarning, source=client, stacklevel=3)


def open_pool(transport: Transport, options: ClientOptions, user_agent: str) -> SharedPool:
    """A new pool for a client with ``options``: its limit, backoff, pace and metrics."""
    limit, adaptive, now = options.max_concurrency, options.adaptive, options.clock.now
    limiter = RequestLimiter(limit)
    backoff = None if adaptive is None else AdaptiveLimiter(adaptive, limit, now=now)
    return SharedPool(
        transport,
        limiter,
        backoff,
        frozen_headers({"User-Agent": user_agent}),
        ClientMetrics(options.base_url, lambda: limiter.total_tokens),
        pacing=build_pacing(options.rate_limit, backoff, options.clock),
    )

def frozen_headers(headers: dict[str, str]) -> CIMultiDictProxy[str]:
    """As immutable as aiohttp would make a dict of them on each request, but built once."""
    return CIMultiDictProxy(CIMultiDict(headers))


def key_headers(plain: CIMultiDictProxy[str], api_key: str | None) -> CIMultiDictProxy[str]:
    """``plain`` and the bearer key (``$AVATURN_API_KEY`` when ``None``)."""
    return frozen_headers({**plain, "Authorization": f"Bearer {read_api_key(api_key)}"})
