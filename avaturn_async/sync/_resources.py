"""The sync client's endpoint groups: the async ones' methods, blocking.

Each method has the async method's arguments (extras included) and returns what
it returns, except that jobs are the blocking jobs of ``sync._jobs``; each runs
the async method in the client's event loop (``_bridge``) and raises its errors.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Generic, TypeVar

from .. import _models as m
from .. import _resources as r
from .._extras import ExtraBody, ExtraHeaders, ExtraQuery
from .._observe import ResponseList
from .._photos import PhotoInput, PhotoUpload
from ._jobs import AvatarJob, ExportJob, RenderJob

if TYPE_CHECKING:
    from ._client import AvaturnClient

__all__ = ["Avatars", "Exports", "Renders", "Sessions", "Users"]

AvatarId = str | uuid.UUID
R = TypeVar("R", r.Users, r.Sessions, r.Avatars, r.Renders, r.Exports)


class _Resource(Generic[R]):
    __slots__ = ("_calls", "_client")

    _calls: R

    def __init__(self, client: AvaturnClient, calls: R) -> None:
        self._client = client
        self._calls = calls  # the async group: its methods run in the client's loop


class Users(_Resource[r.Users]):
    """Anonymous Avaturn users: keep one per user of your app, and store the mapping."""

    def create(
        self, *, extra_headers: ExtraHeaders | None = None, extra_query: ExtraQuery | None = None
    ) -> m.NewUserResponse:
        """Create a user. Not retried after an ambiguous failure (see ``RetryPolicy``)."""
        calls = self._calls
        return self._client._bridge.call(
            lambda: calls.create(extra_headers=extra_headers, extra_query=extra_query)
        )

    def delete(
        self,
        user_id: str,
        *,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
    ) -> None:
        """Delete a user and all its data: photos, avatars, cached exports."""
        calls = self._calls
        self._client._bridge.call(
            lambda: calls.delete(user_id, extra_headers=extra_headers, extra_query=extra_query)
        )


class Sessions(_Resource[r.Sessions]):
    def create(
        self,
        user_id: str,
        *,
        config: m.SessionConfig | None = None,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
        extra_body: ExtraBody | None = None,
    ) -> m.NewSessionResponse:
        """Open Avaturn's web editor for ``user_id``. The URL is short-lived: one per visit."""
        calls = self._calls
        return self._client._bridge.call(
            lambda: calls.create(
                user_id,
                config=config,
                extra_headers=extra_headers,
                extra_query=extra_query,
                extra_body=extra_body,
            )
        )


class Avatars(_Resource[r.Avatars]):
    def create(
        self,
        user_id: str,
        *,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
        extra_body: ExtraBody | None = None,
    ) -> m.NewAvatarResponse:
        """Create an avatar for ``user_id``; upload its photos to the returned ``upload_url``."""
        calls = self._calls
        return self._client._bridge.call(
            lambda: calls.create(
                user_id, extra_headers=extra_headers, extra_query=extra_query, extra_body=extra_body
            )
        )

    def upload_photos(
        self,
        upload_url: str,
        *,
        frontal: PhotoInput,
        side_1: PhotoInput,
        side_2: PhotoInput,
        body_type: m.BodyType | m.BodyTypeName,
        telephoto: bool = False,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
    ) -> m.PhotoUploadResult:
        """Upload the three face photos (JPEG, frontal then the two sides) to ``upload_url``."""
        calls = self._calls
        return self._client._bridge.call(
            lambda: calls.upload_photos(
                upload_url,
                frontal=frontal,
                side_1=side_1,
                side_2=side_2,
                body_type=body_type,
                telephoto=telephoto,
                extra_headers=extra_headers,
                extra_query=extra_query,
            )
        )

    def upload_prepared(
        self,
        upload_url: str,
        upload: PhotoUpload,
        *,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
    ) -> m.PhotoUploadResult:
        """Upload photos checked beforehand with :func:`~avaturn_async.prepare_upload`."""
        calls = self._calls
        return self._client._bridge.call(
            lambda: calls.upload_prepared(
                upload_url, upload, extra_headers=extra_headers, extra_query=extra_query
            )
        )

    def create_from_photos(
        self,
        user_id: str,
        *,
        frontal: PhotoInput,
        side_1: PhotoInput,
        side_2: PhotoInput,
        body_type: m.BodyType | m.BodyTypeName,
        telephoto: bool = False,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
        extra_body: ExtraBody | None = None,
    ) -> AvatarJob:
        """Create an avatar and upload its photos; ``job.wait()`` blocks until it is ready."""
        calls = self._calls
        job = self._client._bridge.call(
            lambda: calls.create_from_photos(
                user_id,
                frontal=frontal,
                side_1=side_1,
                side_2=side_2,
                body_type=body_type,
                telephoto=telephoto,
                extra_headers=extra_headers,
                extra_query=extra_query,
                extra_body=extra_body,
            )
        )
        return AvatarJob(self._client, job)

    def track(self, *, user_id: str, avatar_id: str) -> AvatarJob:
        """A waitable job for an avatar created earlier (by a previous run, say)."""
        return AvatarJob(self._client, self._calls.track(user_id=user_id, avatar_id=avatar_id))

    def list(
        self,
        user_id: str,
        *,
        include_not_ready: bool = False,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
    ) -> ResponseList[m.AvatarListItem]:
        """The user's avatars; only fully processed ones unless ``include_not_ready``."""
        calls = self._calls
        return self._client._bridge.call(
            lambda: calls.list(
                user_id,
                include_not_ready=include_not_ready,
                extra_headers=extra_headers,
                extra_query=extra_query,
            )
        )

    def get_customization(
        self,
        avatar_id: AvatarId,
        *,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
    ) -> m.ExternalAvatarCustomization:
        calls = self._calls
        return self._client._bridge.call(
            lambda: calls.get_customization(
                avatar_id, extra_headers=extra_headers, extra_query=extra_query
            )
        )

    def set_customization(
        self,
        avatar_id: AvatarId,
        customization: m.ExternalAvatarCustomization,
        *,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
        extra_body: ExtraBody | None = None,
    ) -> None:
        """Replace the avatar's customization (answered 202)."""
        calls = self._calls
        self._client._bridge.call(
            lambda: calls.set_customization(
                avatar_id,
                customization,
                extra_headers=extra_headers,
                extra_query=extra_query,
                extra_body=extra_body,
            )
        )

    def delete(
        self,
        user_id: str,
        avatar_id: AvatarId,
        *,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
    ) -> None:
        """Delete one avatar of a user, with its cached exports."""
        calls = self._calls
        self._client._bridge.call(
            lambda: calls.delete(
                user_id, avatar_id, extra_headers=extra_headers, extra_query=extra_query
            )
        )


class Renders(_Resource[r.Renders]):
    def create(
        self,
        avatar_id: AvatarId,
        *,
        scene: str = "common/preview",
        format: m.RenderFormat | m.RenderFormatName = m.RenderFormat.JPG,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
    ) -> RenderJob:
        """Start a render; ``render.ready`` carries the same ``id`` and the image URL."""
        calls = self._calls
        job = self._client._bridge.call(
            lambda: calls.create(
                avatar_id,
                scene=scene,
                format=format,
                extra_headers=extra_headers,
                extra_query=extra_query,
            )
        )
        return RenderJob(self._client, job)


class Exports(_Resource[r.Exports]):
    def create(
        self,
        avatar_id: AvatarId,
        *,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
    ) -> ExportJob:
        """Ask for the avatar's 3D model; ``job.wait()`` blocks until it is ready."""
        calls = self._calls
        job = self._client._bridge.call(
            lambda: calls.create(avatar_id, extra_headers=extra_headers, extra_query=extra_query)
        )
        return ExportJob(self._client, job)

    def request(
        self,
        avatar_id: AvatarId,
        *,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
    ) -> m.NewExportResponse:
        """Ask for the avatar's export once and return the answer as it is, without a job."""
        calls = self._calls
        return self._client._bridge.call(
            lambda: calls.request(avatar_id, extra_headers=extra_headers, extra_query=extra_query)
        )
