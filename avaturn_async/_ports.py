"""What resources and jobs need from the client, as protocols.

``AvaturnClient`` builds its resources (``client.users``, ...) and they build
jobs; both hold the client to send requests and to reach the event hub. Typing
that back-reference as ``AvaturnClient`` would make ``_client``, ``_resources``
and ``_jobs`` import each other. These protocols name only what is used, so the
imports go one way: ``_client`` -> ``_resources`` -> ``_jobs`` -> ``_ports``.
``AvaturnClient`` satisfies both structurally (mypy checks it where the client
hands itself over).
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from . import _models as m
from ._clock import Clock
from ._hub import EventHub
from ._requests import Request, Response

__all__ = ["JobClient", "ResourceClient"]

T = TypeVar("T")


class _AvatarLister(Protocol):
    async def list(
        self, user_id: str, *, include_not_ready: bool = ...
    ) -> list[m.AvatarListItem]: ...


class _ExportRequester(Protocol):
    async def request(self, avatar_id: str) -> m.NewExportResponse: ...


class JobClient(Protocol):
    """The client as a job sees it: the hub, the clock it sleeps on, and the polling calls."""

    @property
    def event_hub(self) -> EventHub | None: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def avatars(self) -> _AvatarLister: ...
    @property
    def exports(self) -> _ExportRequester: ...


class ResourceClient(JobClient, Protocol):
    """The client as a resource sees it: a job's view plus sending requests."""

    async def _send(self, request: Request) -> Response: ...
    def _read(self, request: Request, response: Response, model: type[T]) -> T: ...
