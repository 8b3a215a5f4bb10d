"""Photo inputs for avatar creation: checking them, and opening them as streams.

A photo may be a path, ``bytes``, or a binary file object. Paths and file
objects are streamed when sent, never read whole into memory; only their first
bytes are read here, to check that each is a non-empty JPEG before anything is
sent.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Union

import attrs

from ._errors import InvalidRequestError, PhotoError
from ._models import BodyType, BodyTypeName

__all__ = ["JPEG_MAGIC", "PhotoInput", "PhotoSource", "PhotoUpload", "prepare_upload"]

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
        """A fresh stream over the photo, from its first byte.

        Paths are opened anew (the caller closes them); a caller's file object is
        rewound and wrapped so that closing the wrapper leaves it open.
        """
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


def _check_magic(name: str, head: bytes, size: int) -> None:
    if size == 0:
        raise PhotoError(f"{name} photo is empty")
    if not head.startswith(JPEG_MAGIC):
        raise PhotoError(f"{name} photo is not a JPEG (it does not start with FF D8 FF)")


def check_photo(name: str, photo: PhotoInput) -> PhotoSource:
    """Check one photo and describe where its bytes come from. Reads at most 3 bytes."""
    if isinstance(photo, (bytes, bytearray, memoryview)):
        data = bytes(photo)
        _check_magic(name, data[:3], len(data))
        return PhotoSource(name=name, data=data, size=len(data))
    if isinstance(photo, (str, os.PathLike)):
        path = Path(photo)
        try:
            with path.open("rb") as handle:
                head = handle.read(3)
                size = os.fstat(handle.fileno()).st_size
        except FileNotFoundError:
            raise PhotoError(f"{name} photo not found: {path}") from None
        except OSError as exc:
            raise PhotoError(f"{name} photo cannot be read: {path}: {exc.strerror}") from None
        _check_magic(name, head, size)
        return PhotoSource(name=name, path=path, size=size)
    if hasattr(photo, "read"):
        return _check_file_object(name, photo)
    raise PhotoError(
        f"{name} photo must be a path, bytes or a binary file object, not {type(photo).__name__}"
    )


def _check_file_object(name: str, photo: BinaryIO) -> PhotoSource:
    seekable = getattr(photo, "seekable", None)
    if seekable is None or not seekable():
        raise PhotoError(
            f"{name} photo file object must be seekable (it is rewound for retries); "
            "pass a path or bytes instead"
        )
    start = photo.tell()
    head = photo.read(3)
    if not isinstance(head, bytes):
        raise PhotoError(f"{name} photo file object must be opened in binary mode")
    size = photo.seek(0, io.SEEK_END) - start
    photo.seek(start)
    _check_magic(name, head, size)
    return PhotoSource(name=name, file=photo, start=start, size=size)


def check_body_type(body_type: BodyType | BodyTypeName) -> BodyType:
    try:
        return BodyType(body_type)
    except ValueError:
        raise InvalidRequestError(
            f"body_type must be 'male' or 'female', not {body_type!r}"
        ) from None


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
    checked_body = check_body_type(body_type)
    if not isinstance(telephoto, bool):
        raise InvalidRequestError(f"telephoto must be a bool, not {type(telephoto).__name__}")
    return PhotoUpload(
        frontal=check_photo("frontal", frontal),
        side_1=check_photo("side_1", side_1),
        side_2=check_photo("side_2", side_2),
        body_type=checked_body,
        telephoto=telephoto,
    )
