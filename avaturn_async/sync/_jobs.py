"""Blocking jobs: what the sync client's ``create_from_photos``, ``renders.create`` and
``exports.create`` return. ``job.wait(timeout=...)`` blocks the calling thread until
the job's event arrives, as the async job's ``await job.wait()`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar

import anyio

from .. import _jobs
from .. import _models as m
from .._client_options import Forward
from .._errors import JobTimeoutError
from .._events import AvatarReady, ExportReady, RenderReady
from .._observe import copy_metadata

if TYPE_CHECKING:
    from ._client import AvaturnClient

__all__ = ["AvatarJob", "ExportJob", "RenderJob"]

J = TypeVar("J", _jobs.AvatarJob, _jobs.RenderJob, _jobs.ExportJob)
E = TypeVar("E", AvatarReady, RenderReady, ExportReady)


class _Job(Generic[J, E]):
    _job: J

    def __init__(self, client: AvaturnClient, job: J) -> None:
        self._client = client
        self._job = job
        copy_metadata(self, job)  # response_of(job) answers as for the async job

    @property
    def job(self) -> J:
        """The async job this one blocks on."""
        return self._job

    def wait(
        self,
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
        max_poll_interval: float = 30.0,
    ) -> E:
        """Block until the job's event arrives and return it; raise its failed error on ``failed``.

        ``timeout`` bounds the wait in seconds (:class:`~avaturn_async.JobTimeoutError`;
        the work may still finish, and waiting again picks it up); ``None`` waits as
        long as it takes. The polling arguments are the async ``wait()``'s.
        """
        job = self._job

        async def within() -> E:
            with anyio.move_on_after(timeout):
                waiting = job.wait(poll_interval=poll_interval, max_poll_interval=max_poll_interval)
                return await waiting  # type: ignore[return-value]
            raise JobTimeoutError(f"{job!r} not finished within {timeout:g} s; it may still finish")

        return self._client._bridge.call(within)

    def __repr__(self) -> str:
        return f"sync.{self._job!r}"


class AvatarJob(_Job[_jobs.AvatarJob, AvatarReady]):
    """An avatar created from photos; ``job.wait()`` blocks until ``avatar.ready``."""

    user_id: Forward[str] = Forward("job")
    avatar_id: Forward[str] = Forward("job")
    upload: Forward[m.PhotoUploadResult | None] = Forward("job")


class RenderJob(_Job[_jobs.RenderJob, RenderReady]):
    """A render task; ``job.wait()`` blocks until ``render.ready`` (needs an event hub)."""

    id: Forward[str] = Forward("job")
    avatar_id: Forward[str] = Forward("job")
    status: Forward[m.RenderStatus | str] = Forward("job")
    result: Forward[m.RenderResult] = Forward("job")


class ExportJob(_Job[_jobs.ExportJob, ExportReady]):
    """An export; ready at once when this avatar version was exported before."""

    avatar_id: Forward[str] = Forward("job")
    status: Forward[m.ExportStatus | str] = Forward("job")
    url: Forward[str | None] = Forward("job")
    result: Forward[m.NewExportResponse] = Forward("job")
