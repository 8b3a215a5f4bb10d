"""The endpoints, grouped as ``client.users``, ``client.sessions``, ``client.avatars``,
``client.renders`` and ``client.exports``. Each method builds a request with
``_requests``, merges the caller's extras into it (``_extras``: ``extra_headers``,
``extra_query``, and ``extra_body`` where there is a JSON body), sends it through
the client, and reads the answer into a model.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import anyio

from . import _models as m
from . import _requests as p
from ._answers import read_model_list
from ._errors import InvalidRequestError
from ._extras import ExtraBody, ExtraHeaders, ExtraQuery, with_extras
from ._hub import share_origin
from ._jobs import AvatarJob, ExportJob, RenderJob
from ._observe import ResponseList, attach_metadata, copy_metadata
from ._photos import PhotoInput, PhotoUpload, prepare_upload

if TYPE_CHECKING:
    from ._client import AvaturnClient

__all__ = ["Avatars", "Exports", "Renders", "Sessions", "Users"]

AvatarId = str | uuid.UUID


async def _check_photos(
    frontal: PhotoInput,
    side_1: PhotoInput,
    side_2: PhotoInput,
    body_type: m.BodyType | m.BodyTypeName,
    telephoto: bool,
) -> PhotoUpload:
    # Reads a few bytes of each file: off the event loop.
    return await anyio.to_thread.run_sync(
        lambda: prepare_upload(
            frontal=frontal, side_1=side_1, side_2=side_2, body_type=body_type, telephoto=telephoto
        )
    )


class _Resource:
    __slots__ = ("_client",)

    def __init__(self, client: AvaturnClient) -> None:
        self._client = client


class Users(_Resource):
    """Anonymous Avaturn users: keep one per user of your app, and store the mapping."""

    async def create(
        self, *, extra_headers: ExtraHeaders | None = None, extra_query: ExtraQuery | None = None
    ) -> m.NewUserResponse:
        """Create a user. Not retried after an ambiguous failure (see ``RetryPolicy``)."""
        request = p.build_create_user()
        if extra_headers or extra_query:  # a test, not a call: this is the hottest endpoint
            request = with_extras(request, extra_headers, extra_query, None)
        client = self._client
        return client._read(request, await client._send(request), m.NewUserResponse)

    async def delete(
        self,
        user_id: str,
        *,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
    ) -> None:
        """Delete a user and all its data: photos, avatars, cached exports."""
        request = with_extras(p.build_delete_user(user_id), extra_headers, extra_query, None)
        await self._client._send(request)


class Sessions(_Resource):
    async def create(
        self,
        user_id: str,
        *,
        config: m.SessionConfig | None = None,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
        extra_body: ExtraBody | None = None,
    ) -> m.NewSessionResponse:
        """Open Avaturn's web editor for ``user_id``. The URL is short-lived: one per visit.

        ``config`` defaults (server-side) to :class:`CreateOrEditExistingSessionConfig`.
        """
        request = p.build_create_session(user_id, config)
        request = with_extras(request, extra_headers, extra_query, extra_body)
        return self._client._read(request, await self._client._send(request), m.NewSessionResponse)


class Avatars(_Resource):
    async def create(
        self,
        user_id: str,
        *,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
        extra_body: ExtraBody | None = None,
    ) -> m.NewAvatarResponse:
        """Create an avatar for ``user_id``; upload its photos to the returned ``upload_url``."""
        request = p.build_create_avatar(user_id)
        if extra_headers or extra_query or extra_body:  # a test, not a call: a hot endpoint
            request = with_extras(request, extra_headers, extra_query, extra_body)
        client = self._client
        created = client._read(request, await client._send(request), m.NewAvatarResponse)
        if client._tracer.active:  # the span handling its avatar.ready links to this call
            await share_origin(client.event_hub, created.avatar_id)
        return created

    async def upload_photos(
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
        """Upload the three face photos (JPEG, frontal then the two sides) to ``upload_url``.

        Every photo is checked before anything is sent (``PhotoError``). Paths and
        file objects are streamed from disk, never read whole into memory.
        """
        upload = await _check_photos(frontal, side_1, side_2, body_type, telephoto)
        return await self.upload_prepared(
            upload_url, upload, extra_headers=extra_headers, extra_query=extra_query
        )

    async def upload_prepared(
        self,
        upload_url: str,
        upload: PhotoUpload,
        *,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
    ) -> m.PhotoUploadResult:
        """Upload photos checked beforehand with :func:`prepare_upload`.

        For callers that check (and read) the photos in their own worker thread:
        ``upload_photos`` does both steps. Not retried after an ambiguous failure:
        the upload URL is a creating POST (see ``RetryPolicy``). The URL's own query
        parameters win over ``extra_query``.
        """
        if not isinstance(upload, PhotoUpload):
            raise InvalidRequestError("upload must be a PhotoUpload from prepare_upload()")
        request = with_extras(p.build_upload(upload_url, upload), extra_headers, extra_query, None)
        return self._client._read(request, await self._client._send(request), m.PhotoUploadResult)

    async def create_from_photos(
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
        """Create an avatar and upload its photos; photos are checked before either step.

        ``await job.wait()`` resolves when the avatar is ready (``avatar.ready``).
        If the upload fails, the avatar exists without photos: the error is raised and
        ``avatars.list(user_id, include_not_ready=True)`` shows it. ``extra_headers``
        go with both requests; ``extra_query`` and ``extra_body`` with the creation
        only (the upload URL is pre-signed).
        """
        upload = await _check_photos(frontal, side_1, side_2, body_type, telephoto)
        created = await self.create(
            user_id, extra_headers=extra_headers, extra_query=extra_query, extra_body=extra_body
        )
        result = await self.upload_prepared(created.upload_url, upload, extra_headers=extra_headers)
        job = AvatarJob(
            self._client,
            user_id=user_id,
            avatar_id=created.avatar_id,
            upload=result,
        )
        return copy_metadata(job, result)

    def track(self, *, user_id: str, avatar_id: str) -> AvatarJob:
        """A waitable job for an avatar created earlier (by a previous run, say)."""
        return AvatarJob(self._client, user_id=user_id, avatar_id=avatar_id, upload=None)

    async def list(
        self,
        user_id: str,
        *,
        include_not_ready: bool = False,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
    ) -> ResponseList[m.AvatarListItem]:
        """The user's avatars; only fully processed ones unless ``include_not_ready``.

        A ``list`` that also carries the answer's metadata (``response_of``).
        """
        request = p.build_list_avatars(user_id, include_not_ready)
        if extra_headers or extra_query:  # a test, not a call: a hot endpoint
            request = with_extras(request, extra_headers, extra_query, None)
        answer = await self._client._send(request)
        items: ResponseList[m.AvatarListItem]
        items = read_model_list(answer, m.AvatarListItem, ResponseList)  # type: ignore[assignment]
        return attach_metadata(items, request.route, answer)

    async def get_customization(
        self,
        avatar_id: AvatarId,
        *,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
    ) -> m.ExternalAvatarCustomization:
        request = p.build_get_customization(avatar_id)
        request = with_extras(request, extra_headers, extra_query, None)
        client = self._client
        return client._read(request, await client._send(request), m.ExternalAvatarCustomization)

    async def set_customization(
        self,
        avatar_id: AvatarId,
        customization: m.ExternalAvatarCustomization,
        *,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
        extra_body: ExtraBody | None = None,
    ) -> None:
        """Replace the avatar's customization (answered 202).

        Raises ``ConflictError`` (409) for an asset in the wrong slot and
        ``GoneError`` (410) for assets no longer available.
        """
        request = p.build_set_customization(avatar_id, customization)
        await self._client._send(with_extras(request, extra_headers, extra_query, extra_body))

    async def delete(
        self,
        user_id: str,
        avatar_id: AvatarId,
        *,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
    ) -> None:
        """Delete one avatar of a user, with its cached exports."""
        request = p.build_delete_avatar(user_id, avatar_id)
        await self._client._send(with_extras(request, extra_headers, extra_query, None))


class Renders(_Resource):
    async def create(
        self,
        avatar_id: AvatarId,
        *,
        scene: str = "common/preview",
        format: m.RenderFormat | m.RenderFormatName = m.RenderFormat.JPG,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
    ) -> RenderJob:
        """Start a render; ``render.ready`` carries the same ``id`` and the image URL.

        ``await job.wait()`` needs the client's event hub: no endpoint reports renders.
        """
        request = p.build_create_render(avatar_id, scene, format)
        request = with_extras(request, extra_headers, extra_query, None)
        client = self._client
        result = client._read(request, await client._send(request), m.RenderResult)
        job = RenderJob(client, avatar_id=request.params["avatar_id"], result=result)
        return copy_metadata(job, result)


class Exports(_Resource):
    async def create(
        self,
        avatar_id: AvatarId,
        *,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
    ) -> ExportJob:
        """Ask for the avatar's 3D model.

        The answer is ``ready`` with a temporary URL when this version was exported
        before, else ``pending`` until ``export.ready`` arrives. Asking again is
        harmless. The job's polls ask again without the extras.
        """
        client = self._client
        hub = client.event_hub
        since = hub.now() if hub is not None else None
        request = with_extras(p.build_create_export(avatar_id), extra_headers, extra_query, None)
        result = client._read(request, await client._send(request), m.NewExportResponse)
        job = ExportJob(client, avatar_id=request.params["avatar_id"], result=result, since=since)
        return copy_metadata(job, result)

    async def request(
        self,
        avatar_id: AvatarId,
        *,
        extra_headers: ExtraHeaders | None = None,
        extra_query: ExtraQuery | None = None,
    ) -> m.NewExportResponse:
        """Ask for the avatar's export once and return the answer as it is, without a job.

        What :meth:`create` sends; an ``ExportJob`` polls with it. Asking again is harmless.
        """
        request = with_extras(p.build_create_export(avatar_id), extra_headers, extra_query, None)
        return self._client._read(request, await self._client._send(request), m.NewExportResponse)
