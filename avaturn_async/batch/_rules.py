"""The rules a row follows: which failures are ambiguous, how failures are named,
where exported models go, and how photos are prepared for the upload."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import attrs

from .. import _models as m
from .._errors import (
    APIError,
    AvatarFailedError,
    AvaturnError,
    ConfigurationError,
    ConnectError,
    ExportFailedError,
    InvalidRequestError,
    ResponseDecodeError,
    ServerError,
    TransportError,
)
from .._photos import PhotoInput, PhotoUpload, prepare_upload
from ._journal import RowState
from ._manifest import OnboardRow

__all__ = [
    "CREATE_ATTEMPTS",
    "DEFAULT_CUSTOMIZATION",
    "LANDED",
    "LANDED_STATUSES",
    "PROCESSING_FAILED",
    "SMALL_PHOTO",
    "OnboardSettings",
    "OnboardingAbortedError",
    "RowFailed",
    "UserCapReached",
    "best_avatar",
    "export_filename",
    "failure_kind",
    "prepare_row_upload",
    "server_may_have_acted",
]

# States in which the photos are known to have landed: only waiting remains.
LANDED = (RowState.PROCESSING, RowState.READY, RowState.EXPORTING, RowState.EXPORTED)
LANDED_STATUSES = (m.ScanStatus.PROCESSING, m.ScanStatus.READY)
PROCESSING_FAILED = "Avaturn reported that processing the photos failed"
SMALL_PHOTO = 256 * 1024
"""Photos of at most this many bytes are uploaded from memory, larger ones streamed."""
CREATE_ATTEMPTS = 3
"""Creates (user, avatar) and uploads sent per row, ambiguous failures included."""
DEFAULT_CUSTOMIZATION = m.ExternalAvatarCustomization()
"""Set before exporting: exports of photo-made avatars are undefined until one is set."""


def server_may_have_acted(exc: AvaturnError) -> bool:
    """Whether a failed create or upload may still have happened on the server."""
    if isinstance(exc, ConnectError):
        return False
    if isinstance(exc, (TransportError, ResponseDecodeError)):
        return True
    return isinstance(exc, ServerError) and exc.status != 503


def export_filename(key: str) -> str:
    """A safe file name for ``key``'s model; a hash keeps mangled keys apart."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", key)[:100].lstrip(".") or "row"
    if safe != key:
        safe += "-" + hashlib.sha256(key.encode()).hexdigest()[:10]
    return safe + ".glb"


@attrs.frozen(kw_only=True)
class OnboardSettings:
    """How :func:`~avaturn_async.batch.onboard` runs, as one value.

    Attributes:
        concurrency: rows creating users/avatars and uploading at once; also exports.
        max_in_flight: rows in progress at once, waiting included (``None``: 8 x
            ``concurrency``).
        export: also export each model and download it to ``export_dir``.
        export_dir: the folder for exported models (made if missing); needed by ``export``.
        customization: set before exporting (``None``: leave the avatar's own).
        retry_failed: give rows whose avatar failed processing a new avatar.
        poll_interval: first wait between status polls (``None``: the job's default).
        ready_timeout: seconds to wait for an avatar (and export); the row then
            fails with kind ``timeout`` and a rerun waits again.
        source: a label for the journal's ``runs`` table (the manifest path).
        max_new_users: create at most this many Avaturn users in this run (a paid
            plan's quota), then start no more rows: those left are not started and
            stay as they are for a later run; ``None``: no cap.

    Raises:
        ConfigurationError: a value is out of range, or ``export`` lacks ``export_dir``.
    """

    concurrency: int = 8
    max_in_flight: int | None = None
    export: bool = False
    export_dir: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    customization: m.ExternalAvatarCustomization | None = DEFAULT_CUSTOMIZATION
    retry_failed: bool = False
    poll_interval: float | None = None
    ready_timeout: float = 1800.0
    source: str | None = None
    max_new_users: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.max_new_users is not None and self.max_new_users < 0:
            raise ConfigurationError("max_new_users must not be negative")
        if self.concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        if self.in_flight < self.concurrency:
            raise ConfigurationError("max_in_flight must be at least concurrency")
        if self.ready_timeout <= 0:
            raise ConfigurationError("ready_timeout must be positive")
        if self.export and self.export_dir is None:
            raise ConfigurationError("export=True needs export_dir")

    @property
    def in_flight(self) -> int:
        """Rows in progress at once: ``max_in_flight``, or 8 x ``concurrency``."""
        return self.max_in_flight if self.max_in_flight is not None else 8 * self.concurrency

    @property
    def export_folder(self) -> Path | None:
        """Where models go, ``None`` when not exporting."""
        return self.export_dir if self.export else None

    @property
    def unreachable_after(self) -> int:
        """Consecutive rows failing on the network that stop the run."""
        return max(20, 2 * self.concurrency)


class OnboardingAbortedError(AvaturnError):
    """The run stopped early: so many rows in a row failed to reach the API that
    the rest would too. The journal holds every failure; rerun when it is back."""


class UserCapReached(Exception):
    """The run's ``max_new_users`` are all used: the row is left as it is, not started."""


class RowFailed(Exception):
    """A row failure already described: kind, reason, and the state to leave it in."""

    def __init__(self, kind: str, reason: str, state: RowState | None = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.state = state


_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (InvalidRequestError, "input"),
    (AvatarFailedError, "avatar_failed"),
    (ExportFailedError, "export_failed"),
    (APIError, "api"),
    (TransportError, "network"),
    (AvaturnError, "sdk"),
)


def failure_kind(exc: BaseException) -> str:
    """The journal's ``error_kind`` for an exception (the first class of ``_KINDS`` it is)."""
    return next((kind for cls, kind in _KINDS if isinstance(exc, cls)), "error")


def _small_or_path(path: Path) -> PhotoInput:
    """The photo's bytes when it is small, else its path (to be streamed)."""
    try:
        with path.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size <= SMALL_PHOTO:
                return handle.read()
    except (OSError, ValueError):
        pass  # prepare_upload reports it, naming the photo
    return path


def prepare_row_upload(row: OnboardRow) -> PhotoUpload:
    """Check the row's photos and read the small ones (in a worker thread).

    A small file is cheaper to read at once than to stream chunk by chunk from
    a thread; only rows in the upload stage hold them (``concurrency`` x 3 x
    ``SMALL_PHOTO`` at most).
    """
    frontal, side_1, side_2 = (_small_or_path(path) for path in row.photos())
    return prepare_upload(
        frontal=frontal,
        side_1=side_1,
        side_2=side_2,
        body_type=row.body_type,
        telephoto=row.telephoto,
    )


def best_avatar(items: list[m.AvatarListItem], known: str | None) -> m.AvatarListItem:
    """The avatar to keep: the one the journal knows, else a ready one, else the first."""
    return min(items, key=lambda item: (item.id != known, not item.is_ready))
