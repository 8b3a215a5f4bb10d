"""Photo inputs for avatar creation: checking them, and opening them as streams.

A photo may be a path, ``bytes``, or a binary file object. Paths and file
objects are streamed when sent, never read whole into memory; only their first
bytes are read here, to check that each is a non-empty JPEG before anything is
sent. With the ``images`` extra, PNG, WebP and HEIC photos are accepted too, and
every photo that is not a plain JPEG is converted to one (``_images``): the
converted bytes are what is sent.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Union

import attrs

from . import _images as images
from ._errors import InvalidRequestError, PhotoError
from ._models import BodyType, BodyTypeName

__all__ = [
    "JPEG_MAGIC",
    "PhotoInput",
    "PhotoSource",
    "PhotoUpload",
    "photo_head_problem",
    "prepare_upload",
]

PhotoInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO]
"""A path, the bytes of a JPEG, or a binary file object positioned at its start."""

JPEG_MAGIC = b"\xff\xd8\xff"

# The wire names of the multipart fields, in the order the API lists them.
PHOTO_FIELDS = (
    ("frontal", "image-frontal"),
    ("side_1", "image-side-1"),
    ("side_2", "image-side-2"),
)


@attrs.frozen(kw_only=True)
class PhotoSource:
    """A checked photo: where its bytes come from, and how many there are."""

    name: str
    path: Path | None = None
    data: bytes | None = None
    file: BinaryIO | None = attrs.field(default=None, repr=False)
    start: int = 0
    size: int

    def open(self) -> BinaryIO | io.RawIOBase:
        """A fresh stream over the photo from its first byte: a path opened anew (the caller
        closes it), or the caller's file object rewound and wrapped (it stays open)."""
        if self.path is not None:
            try:
                return self.path.open("rb")
            except OSError as exc:
                raise PhotoError(f"{self.name} photo cannot be read: {exc.strerror}") from None
        if self.file is not None:
            self.file.seek(self.start)
            return _BorrowedReader(self.file)
        assert self.data is not None
        return io.BytesIO(self.data)


class _BorrowedReader(io.RawIOBase):
    """Reads a caller's file object without closing it (aiohttp closes what it sends)."""

    def __init__(self, inner: BinaryIO) -> None:
        super().__init__()
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._inner.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


class _FromOffset(_BorrowedReader):
    """A caller's file object seen from ``start`` on (Pillow seeks to 0 to read it)."""

    def __init__(self, inner: BinaryIO, start: int) -> None:
        super().__init__(inner)
        self._start = start
        inner.seek(start)

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            offset += self._start
        return self._inner.seek(offset, whence) - self._start

    def tell(self) -> int:
        return self._inner.tell() - self._start


@attrs.frozen(kw_only=True)
class PhotoUpload:
    """Everything the upload URL needs, checked."""

    frontal: PhotoSource
    side_1: PhotoSource
    side_2: PhotoSource
    body_type: BodyType
    telephoto: bool = False

    def photos(self) -> Iterator[tuple[str, PhotoSource]]:
        """(multipart field name, source) in the API's order."""
        for attr, field in PHOTO_FIELDS:
            yield field, getattr(self, attr)

    @property
    def total_bytes(self) -> int:
        return self.frontal.size + self.side_1.size + self.side_2.size


_HEAD = 12  # bytes read to tell the formats apart


def photo_head_problem(name: str, head: bytes, size: int) -> str | None:
    """Why a photo with these first bytes and this size cannot be sent, or ``None``."""
    if size == 0:
        return f"{name} photo is empty"
    if size > images.MAX_PHOTO_BYTES:
        return f"{name} photo is {size:,} bytes, over the {images.MAX_PHOTO_BYTES:,} accepted"
    found = images.format_of(head)
    if found == "jpeg" or images.images_available():
        return None  # a JPEG; or Pillow reads it, or says why not
    if found is not None:
        return f"{name} photo is {found.upper()}, not JPEG: {images.EXTRA_HINT}"
    return f"{name} photo is not a JPEG (it does not start with FF D8 FF)"


def _check_head(name: str, head: bytes, size: int) -> None:
    problem = photo_head_problem(name, head, size)
    if problem is not None:
        raise PhotoError(problem)


def _converted(name: str, source: BinaryIO | io.RawIOBase) -> PhotoSource | None:
    """With the ``images`` extra: the JPEG to send instead (``None``: send it as is)."""
    data = images.normalize(name, source) if images.images_available() else None
    return None if data is None else PhotoSource(name=name, data=data, size=len(data))


def check_photo(name: str, photo: PhotoInput) -> PhotoSource:
    """Check one photo and say where its bytes come from. Blocking (with the ``images``
    extra, Pillow opens it and converts all but a plain JPEG): call it off the event loop."""
    if isinstance(photo, (bytes, bytearray, memoryview)):
        data = bytes(photo)
        _check_head(name, data[:_HEAD], len(data))
        as_is = PhotoSource(name=name, data=data, size=len(data))
        return _converted(name, io.BytesIO(data)) or as_is
    if isinstance(photo, (str, os.PathLike)):
        return _check_path(name, Path(photo))
    if hasattr(photo, "read"):
        return _check_file_object(name, photo)
    raise PhotoError(
        f"{name} photo must be a path, bytes or a binary file object, not {type(photo).__name__}"
    )


def _check_path(name: str, path: Path) -> PhotoSource:
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD)
            size = os.fstat(handle.fileno()).st_size
            _check_head(name, head, size)
            handle.seek(0)
            converted = _converted(name, handle)
    except FileNotFoundError:
        raise PhotoError(f"{name} photo not found: {path}") from None
    except OSError as exc:
        raise PhotoError(f"{name} photo cannot be read: {path}: {exc.strerror}") from None
    return converted or PhotoSource(name=name, path=path, size=size)


def _check_file_object(name: str, photo: BinaryIO) -> PhotoSource:
    seekable = getattr(photo, "seekable", None)
    if seekable is None or not seekable():
        raise PhotoError(
            f"{name} photo file object must be seekable (it is rewound for retries); "
            "pass a path or bytes instead"
        )
    start = photo.tell()
    head = photo.read(_HEAD)
    if not isinstance(head, bytes):
        raise PhotoError(f"{name} photo file object must be opened in binary mode")
    size = photo.seek(0, io.SEEK_END) - start
    photo.seek(start)
    _check_head(name, head, size)
    converted = _converted(name, _FromOffset(photo, start) if start else photo)
    photo.seek(start)
    return converted or PhotoSource(name=name, file=photo, start=start, size=size)


def prepare_upload(
    *,
    frontal: PhotoInput,
    side_1: PhotoInput,
    side_2: PhotoInput,
    body_type: BodyType | BodyTypeName,
    telephoto: bool = False,
) -> PhotoUpload:
    """Check the three photos and the body type; sends nothing.

    Raises :class:`PhotoError` for a photo, :class:`InvalidRequestError` for the body type.
    """
    try:
        checked_body = BodyType(body_type)
    except ValueError:
        raise InvalidRequestError(
            f"body_type must be 'male' or 'female', not {body_type!r}"
        ) from None
    if not isinstance(telephoto, bool):
        raise InvalidRequestError(f"telephoto must be a bool, not {type(telephoto).__name__}")
    return PhotoUpload(
        frontal=check_photo("frontal", frontal),
        side_1=check_photo("side_1", side_1),
        side_2=check_photo("side_2", side_2),
        body_type=checked_body,
        telephoto=telephoto,
    )
