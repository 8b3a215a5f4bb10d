"""One row's way from a key and three photos to a ready (and exported) avatar.

Every remote side effect is bracketed by journal writes: the intent before it,
the result after it. The API makes two cases ambiguous (a create or an upload
sent, and no answer: the server may or may not have acted), and they are
reconciled with these rules:

* **Create User, no answer** (a timeout, a dropped connection, a 5xx other than
  503; or a run killed while the call was out): there is no endpoint that lists
  users, so the user it may have made cannot be found. The row is counted as a
  *possible orphan* (journal ``possible_orphans``, reported in the summary and by
  ``--status``) and a new user is created.
* **New Avatar, no answer**: each row has its own Avaturn user, so every avatar
  on that user is this row's. List User Avatars (``include_not_ready=true``):
  an avatar whose photos landed (``processing`` / ``ready``) is adopted; one
  still ``pending`` cannot be finished, because its upload URL was in the lost
  answer (and is never journaled: it is pre-signed), so it is deleted and a new
  avatar is created. Either way the row ends with exactly one avatar.
* **Photo upload, no answer**: List User Avatars says which: ``pending`` means
  the photos did not land and the upload is sent again (same URL, within a
  run; after a restart the URL is gone and the avatar is replaced as above);
  ``processing`` / ``ready`` / ``failed`` means it landed.

A request that provably did not act (connection refused, 4xx, 429 or 503
after the client's own retries) is simply a failure of the row, retried by the
next run from the same state. For Create User that state is ``new``, never
``user_requested``: a Create User that was answered that way (a refused key
included) cannot have made a user, so it never counts as a possible orphan.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import anyio
import attrs

from .. import _metrics, _traces
from .. import _models as m
from .._errors import (
    AuthenticationError,
    AvatarFailedError,
    AvaturnError,
    ClientClosedError,
    ConflictError,
    NotFoundError,
)
from .._limiter import RequestLimiter
from ._journal import RowRecord, RowState
from ._manifest import OnboardRow
from ._rules import (
    CREATE_ATTEMPTS,
    LANDED,
    LANDED_STATUSES,
    PROCESSING_FAILED,
    OnboardingAbortedError,
    OnboardSettings,
    RowFailed,
    UserCapReached,
    best_avatar,
    export_filename,
    failure_kind,
    prepare_row_upload,
    server_may_have_acted,
)
from ._store import JournalStore
from ._summary import OnboardingSummary

if TYPE_CHECKING:
    from .._client import AvaturnClient

__all__ = ["RowRunner"]

T = TypeVar("T")


@attrs.define
class _Row:
    """The working copy of one row; ``upload_url`` lives in memory only."""

    row: OnboardRow
    state: RowState
    user_id: str | None
    avatar_id: str | None
    resumed: bool
    upload_url: str | None = None
    ambiguous_create: bool = False
    """A New Avatar of this run got no answer: sweep late avatars once ready."""

    @property
    def key(self) -> str:
        return self.row.key


class RowRunner:
    """Runs rows; the limiters bound how many rows are in each stage at once."""

    def __init__(
        self,
        client: AvaturnClient,
        journal: JournalStore,
        summary: OnboardingSummary,
        settings: OnboardSettings,
        *,
        submit: RequestLimiter,
        export: RequestLimiter,
        changed: Callable[[], None],
    ) -> None:
        self._client = client
        self._journal = journal
        self._summary = summary
        self._settings = settings
        self._submit = submit
        self._export = export
        self._changed = changed
        self._network_streak = 0
        self._last_network_error = ""
        self._key_refused = False
        # Users this run may still create (None: no cap); taken before each Create User.
        self._users_left = settings.max_new_users

    @property
    def cap_reached(self) -> bool:
        """A row was not started because ``max_new_users`` users were created."""
        return self._summary.cap_reached

    async def run(self, row: OnboardRow, record: RowRecord) -> None:
        """Take ``row`` as far as it goes. Failures are journaled and counted, not
        raised, except those that doom every row (a rejected API key, a closed client)."""
        work = _Row(
            row=row,
            state=record.state,
            user_id=record.user_id,
            avatar_id=record.avatar_id,
            resumed=record.state is not RowState.NEW,
        )
        attributes: dict[str, str | int] = {
            "avaturn.onboard.key": row.key,
            "avaturn.onboard.line": row.line,
        }
        try:
            with _traces.span("avaturn onboard row", attributes):
                await self._steps(work)
        except UserCapReached:
            self._summary.cap_reached = True
            self._summary.not_started += 1
            self._changed()
            return
        except RowFailed as failed:
            await self._record_failure(work, failed.kind, failed.reason, failed.state)
        except (AuthenticationError, ClientClosedError) as exc:
            await self._record_failure(work, failure_kind(exc), str(exc), None)
            raise
        except Exception as exc:
            reason = str(exc) if isinstance(exc, AvaturnError) else f"{type(exc).__name__}: {exc}"
            await self._record_failure(work, failure_kind(exc), reason, None)
        else:
            self._summary.ready += 1
            self._network_streak = 0
            _metrics.count_row("ready")
        self._changed()
        if self._network_streak >= self._settings.unreachable_after:
            raise OnboardingAbortedError(
                f"stopped after {self._network_streak} rows in a row could not reach "
                f"the API; the last said: {self._last_network_error}"
            )

    async def _record_failure(
        self, work: _Row, kind: str, reason: str, state: RowState | None
    ) -> None:
        await self._journal.fail(work.key, kind, reason, state=state)
        self._summary.add_failure(kind)
        _metrics.count_row(kind)
        # Failing every row in seconds helps no one when the API is down.
        if kind == "network":
            self._network_streak += 1
            self._last_network_error = reason
        else:
            self._network_streak = 0

    async def _steps(self, work: _Row) -> None:
        async with self._submit:
            await self._ensure_user(work)
            await self._ensure_avatar(work)
        await self._ensure_ready(work)
        folder = self._settings.export_folder
        if folder is not None:
            async with self._export:
                await self._ensure_export(work, folder)

    async def _advance(self, work: _Row, state: RowState, **columns: str | None) -> None:
        await self._journal.advance(work.key, state, **columns)
        work.state = state

    async def _possible_orphan(self, work: _Row, detail: str) -> None:
        await self._journal.note(work.key, "possible_orphan_user", detail, orphan=True)
        self._summary.possible_orphans += 1

    def _take_user_slot(self) -> None:
        if self._users_left is None:
            return
        if self._users_left <= 0:
            raise UserCapReached
        self._users_left -= 1

    def _give_back_user_slot(self) -> None:
        """A Create User that provably made no user does not use up the cap."""
        if self._users_left is not None:
            self._users_left += 1

    async def _ensure_user(self, work: _Row) -> None:
        if work.user_id is not None:
            return
        if self._users_left is not None and self._users_left <= 0:
            raise UserCapReached  # before anything is written: the row stays as it is
        if work.state is RowState.USER_REQUESTED:
            await self._possible_orphan(work, "an earlier run sent Create User and died")
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            self._take_user_slot()  # an ambiguous create may have made one: it counts
            try:
                await self._advance(work, RowState.USER_REQUESTED)
                user = await self._client.users.create()
            except AuthenticationError:
                # An answer: no user was made. Left in user_requested, the next
                # run would count this row as a possible orphan.
                self._give_back_user_slot()
                self._key_refused = True
                await self._advance(work, RowState.NEW)
                raise
            except anyio.get_cancelled_exc_class():
                if self._key_refused:  # the run stops because the key was refused:
                    with anyio.CancelScope(shield=True):  # so was this request's
                        await self._advance(work, RowState.NEW)
                raise
            except AvaturnError as exc:
                if not server_may_have_acted(exc):
                    self._give_back_user_slot()
                    raise RowFailed(failure_kind(exc), str(exc), RowState.NEW) from None
                await self._possible_orphan(work, f"Create User got no answer: {exc}")
                # Back to new: the orphan is counted once, not again by the rerun.
                await self._advance(work, RowState.NEW)
                if attempt == CREATE_ATTEMPTS:
                    raise RowFailed(failure_kind(exc), str(exc)) from None
                continue
            # Not written yet: the user id is committed together with the avatar's
            # intent, which comes next with no await in between (one commit, not two).
            work.user_id, work.state = user.id, RowState.USER_CREATED
            self._summary.users_created += 1
            return

    async def _ensure_avatar(self, work: _Row) -> None:
        if work.state in LANDED:
            return
        # A killed run's New Avatar may still be executing on the server: sweep later.
        work.ambiguous_create = work.state is RowState.AVATAR_REQUESTED
        unsure = (RowState.AVATAR_REQUESTED, RowState.UPLOADING, RowState.AVATAR_FAILED)
        if work.state in unsure and await self._reconcile(work):
            return
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            await self._advance(work, RowState.AVATAR_REQUESTED, user_id=work.user_id)
            try:
                created = await self._client.avatars.create(self._user(work))
            except AuthenticationError:
                raise
            except AvaturnError as exc:
                if not server_may_have_acted(exc):
                    raise RowFailed(failure_kind(exc), str(exc), RowState.USER_CREATED) from None
                work.ambiguous_create = True
                if await self._reconcile(work):
                    return
                if attempt == CREATE_ATTEMPTS:
                    raise RowFailed(failure_kind(exc), str(exc)) from None
                continue
            work.avatar_id, work.upload_url = created.avatar_id, created.upload_url
            # Recorded before the upload: this write is also the upload's intent.
            await self._advance(work, RowState.UPLOADING, avatar_id=created.avatar_id)
            await self._upload(work)
            await self._advance(work, RowState.PROCESSING)
            return

    def _user(self, work: _Row) -> str:
        assert work.user_id is not None
        return work.user_id

    async def _upload(self, work: _Row) -> None:
        """Send the photos until they landed (the avatar left ``pending``)."""
        assert work.upload_url is not None
        row = work.row
        # The loop's executor, not anyio.to_thread: 30 µs of CPU per hop instead of 46.
        loop = asyncio.get_running_loop()
        upload = await loop.run_in_executor(None, prepare_row_upload, row)
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                # What avatars.upload_photos() does, minus its own thread hop to check
                # the photos: prepare_row_upload checked them in the hop that read them.
                await self._client.avatars.upload_prepared(work.upload_url, upload)
                return
            except ConflictError:
                return  # 409: the photos of an earlier attempt are already there
            except AvaturnError as exc:
                if not server_may_have_acted(exc) or attempt == CREATE_ATTEMPTS:
                    raise
                status = await self._status(work)
                if status is None:
                    vanished = f"avatar {work.avatar_id} vanished during upload"
                    raise RowFailed("api", vanished) from None
                if status != m.ScanStatus.PENDING:
                    return  # it landed; the answer was lost

    async def _status(self, work: _Row) -> m.ScanStatus | str | None:
        items = await self._client.avatars.list(self._user(work), include_not_ready=True)
        return next((item.status for item in items if item.id == work.avatar_id), None)

    async def _reconcile(self, work: _Row) -> bool:
        """Settle an avatar create or upload of unknown outcome (module docstring): whether an
        avatar whose photos landed is now the row's (if not, the user has none left)."""
        items = await self._client.avatars.list(self._user(work), include_not_ready=True)
        landed = [item for item in items if item.status in LANDED_STATUSES]
        failed = [item for item in items if item.status == m.ScanStatus.FAILED]
        keep: m.AvatarListItem | None = None
        if landed:
            keep = best_avatar(landed, work.avatar_id)
        elif failed and not self._settings.retry_failed:
            keep = best_avatar(failed, work.avatar_id)
        for item in items:
            if keep is None or item.id != keep.id:
                await self._delete_avatar(work, item)
        if keep is None:
            await self._advance(work, RowState.USER_CREATED, avatar_id=None)
            work.avatar_id = None
            return False
        if keep.id != work.avatar_id:
            self._summary.avatars_adopted += 1
        work.avatar_id = keep.id
        if keep.status == m.ScanStatus.FAILED:
            await self._advance(work, RowState.AVATAR_FAILED, avatar_id=keep.id)
            raise RowFailed("avatar_failed", PROCESSING_FAILED, RowState.AVATAR_FAILED)
        state = RowState.READY if keep.is_ready else RowState.PROCESSING
        await self._advance(work, state, avatar_id=keep.id, detail=f"reconciled: {keep.status}")
        return True

    async def _delete_avatar(self, work: _Row, item: m.AvatarListItem) -> None:
        reason = (
            "photos never landed and the upload URL is lost"
            if item.status == m.ScanStatus.PENDING
            else f"replaced ({item.status})"
        )
        await self._journal.note(work.key, "delete_avatar", f"{item.id}: {reason}")
        with contextlib.suppress(NotFoundError):
            await self._client.avatars.delete(self._user(work), item.id)
        self._summary.avatars_replaced += 1

    async def _ensure_ready(self, work: _Row) -> None:
        if work.state in (RowState.READY, RowState.EXPORTING, RowState.EXPORTED):
            return
        assert work.avatar_id is not None
        job = self._client.avatars.track(user_id=self._user(work), avatar_id=work.avatar_id)
        if work.resumed and await self._settled_while_away(work):
            return
        try:
            await self._waited(job.wait, "avatar")
        except AvatarFailedError:
            raise RowFailed("avatar_failed", PROCESSING_FAILED, RowState.AVATAR_FAILED) from None
        await self._advance(work, RowState.READY)
        if work.ambiguous_create:
            await self._sweep_late_avatars(work)

    async def _waited(self, wait: Callable[..., Awaitable[T]], what: str) -> T:
        """``wait()`` for at most ``ready_timeout``; longer fails the row (a rerun waits again)."""
        timeout = self._settings.ready_timeout
        with anyio.move_on_after(timeout):
            return await wait(poll_interval=self._settings.poll_interval)
        raise RowFailed("timeout", f"{what} not ready after {timeout:g} s (rerun to wait again)")

    async def _settled_while_away(self, work: _Row) -> bool:
        """For a resumed row: its webhook may have come while no one listened, so ask
        once right away instead of waiting for the first poll."""
        status = await self._status(work)
        if status == m.ScanStatus.READY:
            await self._advance(work, RowState.READY)
            return True
        if status == m.ScanStatus.FAILED:
            raise RowFailed("avatar_failed", PROCESSING_FAILED, RowState.AVATAR_FAILED)
        if status is None:
            # Deleted behind our back: the next run makes a new one.
            await self._advance(work, RowState.USER_CREATED, avatar_id=None)
            raise RowFailed("api", f"avatar {work.avatar_id} no longer exists")
        return False

    async def _sweep_late_avatars(self, work: _Row) -> None:
        """After an ambiguous New Avatar, the server may have acted only after our
        List call: delete any still-pending avatar of the row's user but ours."""
        items = await self._client.avatars.list(self._user(work), include_not_ready=True)
        for item in items:
            if item.id != work.avatar_id and item.status == m.ScanStatus.PENDING:
                await self._delete_avatar(work, item)

    async def _ensure_export(self, work: _Row, folder: Path) -> None:
        if work.state is RowState.EXPORTED:
            return
        assert work.avatar_id is not None
        await self._advance(work, RowState.EXPORTING)
        if self._settings.customization is not None:
            # Exports of photo-made avatars are undefined until a customization is set.
            await self._client.avatars.set_customization(
                work.avatar_id, self._settings.customization
            )
        job = await self._client.exports.create(work.avatar_id)
        event = await self._waited(job.wait, "export")
        if not event.export_url:
            raise RowFailed("export_failed", "export.ready carried no URL")
        path = folder / export_filename(work.key)
        await self._client.download(event.export_url, path)
        await self._advance(work, RowState.EXPORTED, export_path=str(path))
