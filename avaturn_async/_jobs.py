"""Jobs: what ``create_from_photos``, ``renders.create`` and ``exports.create`` return.

``await job.wait()`` resolves with the matching ``avatar.ready``,
``render.ready`` or ``export.ready`` event. Two sources race, and the first to
know wins:

* the client's :class:`~avaturn_async.EventHub`, fed by your webhook receiver;
* polling, with growing intervals: List User Avatars (``include_not_ready``) for
  avatars, asking for the export again for exports (harmless by the API's own
  rule). There is no endpoint that reports a render, so a render waits on the
  hub only.

With a hub, polling starts late and slowly, as a safety net for lost webhooks;
without one it is the only source. A ``failed`` outcome raises the job's
``*FailedError`` carrying the event. Bound the wait with ``anyio.fail_after``.
"""

from __future__ import annotations

import abc
import itertools
import logging
import random as _random
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Generic, TypeVar

import anyio

from . import _models as m
from . import _traces
from ._backoff import ExponentialBackoff
from ._client_options import Forward
from ._errors import (
    AvatarFailedError,
    ConfigurationError,
    ExportFailedError,
    JobFailedError,
    RateLimitError,
    RenderFailedError,
    ServerError,
    TransportError,
)
from ._events import AvatarReady, EventStatus, ExportReady, RenderReady

if TYPE_CHECKING:
    from ._client import AvaturnClient

__all__ = ["AvatarJob", "ExportJob", "RenderJob", "poll_delays"]

logger = logging.getLogger("avaturn_async")

T = TypeVar("T")
E = TypeVar("E", AvatarReady, RenderReady, ExportReady)

POLLED = {"source": "poll"}
"""``raw`` of an event made from a polled answer rather than a webhook."""

# Failures that polling rides out: the next poll may well succeed.
_TRANSIENT = (TransportError, ServerError, RateLimitError)


def poll_delays(
    first: float,
    *,
    maximum: float = 30.0,
    factor: float = 1.5,
    jitter: float = 0.1,
    random: Callable[[], float] = _random.random,
) -> Iterator[float]:
    """Waits between polls: ``first``, then growing by ``factor`` up to ``maximum``, ±jitter."""
    backoff = ExponentialBackoff(initial=first, factor=factor, maximum=maximum, jitter=jitter)
    return (backoff.delay(poll, random) for poll in itertools.count(1))


async def _race(*sources: Callable[[], Awaitable[T]]) -> T:
    """What the first of ``sources`` to finish returns, or raises; the others are cancelled."""
    outcomes: list[T | Exception] = []
    async with anyio.create_task_group() as group:

        async def run(source: Callable[[], Awaitable[T]]) -> None:
            try:
                outcomes.append(await source())
            except Exception as exc:  # cancellation is a BaseException: it passes
                outcomes.append(exc)
            group.cancel_scope.cancel()

        for source in sources:
            group.start_soon(run, source)
    if isinstance(outcomes[0], Exception):
        raise outcomes[0]
    return outcomes[0]


class _Job(abc.ABC, Generic[E]):
    _failure: type[JobFailedError] = JobFailedError
    _polls = True  # False: only the hub can tell (no endpoint reports a render)

    def __init__(self, client: AvaturnClient, since: float | None) -> None:
        self._client = client
        self._since = since

    @abc.abstractmethod
    def _key(self) -> tuple[str, str]:
        """The hub's correlation key for this job."""

    async def _poll_once(self) -> E | None:
        return None

    def _immediate(self) -> E | None:
        return None

    async def wait(
        self, *, poll_interval: float | None = None, max_poll_interval: float = 30.0
    ) -> E:
        """Wait for completion and return the event; raise the job's failed error on ``failed``.

        ``poll_interval`` is the first wait between polls: 1 s by default without
        an event hub, 15 s with one that has received webhooks (polling is then a
        fallback for lost ones). A hub that has received none yet (a receiver that
        nothing reaches, a wrong secret, a sender that sends no webhooks) is no
        reason to wait: until its first event, jobs poll as without a hub.
        Bound the wait with ``anyio.fail_after(seconds)``.
        """
        kind, key = self._key()
        with _traces.span("avaturn job.wait", {"avaturn.job.kind": kind, "avaturn.job.id": key}):
            event = self._immediate() or await self._wait_for_event(
                poll_interval, max_poll_interval
            )
            if event.status == EventStatus.FAILED:
                raise self._failure(f"{event.event} reported failure for {key}", event=event)
        return event

    async def _wait_for_event(self, poll_interval: float | None, max_poll_interval: float) -> E:
        hub = self._client.event_hub
        sources: list[Callable[[], Awaitable[E]]] = []
        if hub is not None:
            key = self._key()

            async def from_hub() -> E:
                return await hub.wait(key, since=self._since)  # type: ignore[return-value]

            sources.append(from_hub)
        if self._polls:
            webhooks_flow = hub is not None and hub.published > 0
            first = poll_interval if poll_interval is not None else (15.0 if webhooks_flow else 1.0)
            maximum = max(first, max_poll_interval)
            sources.append(lambda: self._poll(first, maximum))
        if not sources:
            raise ConfigurationError(
                "render completion is announced only by the render.ready webhook: give the "
                "client an EventHub (AvaturnClient(event_hub=...)) fed by your webhook receiver"
            )
        return await _race(*sources)

    async def _poll(self, first: float, maximum: float) -> E:
        for delay in poll_delays(first, maximum=maximum, random=self._client.clock.random):
            await self._client.clock.sleep(delay)
            try:
                found = await self._poll_once()
            except _TRANSIENT as exc:
                logger.info("polling %s failed, will poll again: %s", self._key()[1], exc)
                continue
            if found is not None:
                return found
        raise AssertionError("unreachable: poll_delays is endless")  # pragma: no cover


class AvatarJob(_Job[AvatarReady]):
    """An avatar created from photos; ``await job.wait()`` until ``avatar.ready``."""

    _failure = AvatarFailedError

    def __init__(
        self,
        client: AvaturnClient,
        *,
        user_id: str,
        avatar_id: str,
        upload: m.PhotoUploadResult | None,
    ) -> None:
        super().__init__(client, since=None)
        self.user_id = user_id
        self.avatar_id = avatar_id
        self.upload = upload

    def __repr__(self) -> str:
        return f"AvatarJob(user_id={self.user_id!r}, avatar_id={self.avatar_id!r})"

    def _key(self) -> tuple[str, str]:
        return ("avatar", self.avatar_id)

    async def _poll_once(self) -> AvatarReady | None:
        items = await self._client.avatars.list(self.user_id, include_not_ready=True)
        done = (m.ScanStatus.READY, m.ScanStatus.FAILED)
        for item in items:
            if item.id == self.avatar_id and item.status in done:
                return AvatarReady(
                    avatar_id=self.avatar_id,
                    user_id=self.user_id,
                    status=EventStatus(item.status),
                    raw=POLLED,
                )
        return None


class RenderJob(_Job[RenderReady]):
    """A render task; ``await job.wait()`` until ``render.ready`` (needs an event hub)."""

    _failure = RenderFailedError
    _polls = False

    def __init__(self, client: AvaturnClient, *, avatar_id: str, result: m.RenderResult) -> None:
        super().__init__(client, since=None)
        self.avatar_id = avatar_id
        self.result = result

    id: Forward[str] = Forward("result")
    status: Forward[m.RenderStatus | str] = Forward("result")

    def __repr__(self) -> str:
        return f"RenderJob(id={self.id!r}, avatar_id={self.avatar_id!r}, status={self.status!r})"

    def _key(self) -> tuple[str, str]:
        return ("render", self.result.id)

    def _immediate(self) -> RenderReady | None:
        if self.result.status in (m.RenderStatus.READY, m.RenderStatus.FAILED):
            return RenderReady(
                avatar_id=self.avatar_id,
                user_id=None,
                id=self.result.id,
                status=EventStatus(self.result.status),
                render_url=self.result.render_url,
                raw=POLLED,
            )
        return None


class ExportJob(_Job[ExportReady]):
    """An export; ready at once when this avatar version was exported before.

    Events made from a polled answer carry ``user_id=None`` (the export endpoint
    does not name the user) and ``raw={"source": "poll"}``.
    """

    _failure = ExportFailedError

    def __init__(
        self,
        client: AvaturnClient,
        *,
        avatar_id: str,
        result: m.NewExportResponse,
        since: float | None,
    ) -> None:
        super().__init__(client, since=since)
        self.avatar_id = avatar_id
        self.result = result

    status: Forward[m.ExportStatus | str] = Forward("result")
    url: Forward[str | None] = Forward("result")

    def __repr__(self) -> str:
        return f"ExportJob(avatar_id={self.avatar_id!r}, status={self.status!r})"

    def _key(self) -> tuple[str, str]:
        return ("export", self.avatar_id)

    def _immediate(self, result: m.NewExportResponse | None = None) -> ExportReady | None:
        """The event ``result`` (the first answer unless given) stands for, once it is done."""
        result = self.result if result is None else result
        if result.status not in (m.ExportStatus.READY, m.ExportStatus.FAILED):
            return None
        return ExportReady(
            avatar_id=self.avatar_id,
            user_id=None,
            status=EventStatus(result.status),
            export_url=result.url,
            raw=POLLED,
        )

    async def _poll_once(self) -> ExportReady | None:
        return self._immediate(await self._client.exports.request(self.avatar_id))
