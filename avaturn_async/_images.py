"""Photos people have: PNG, WebP, HEIC/HEIF and JPEG, uploaded as clean JPEGs.

With the optional ``images`` extra (Pillow and pillow-heif) every photo is read
with Pillow and, unless it is already a plain JPEG, re-encoded before upload:

* the EXIF orientation is applied, so a phone's portrait photo arrives upright;
* all metadata is removed (EXIF with its GPS position, XMP, ICC profiles,
  comments, embedded thumbnails): a new JPEG is written without any of it;
* the longest side is capped at :data:`MAX_SIDE` pixels (kept proportions).

A *plain* JPEG (only a JFIF header, no metadata, upright, within the cap) is
sent byte for byte, streamed from disk as before. Decoding is bounded: a photo
over :data:`MAX_PIXELS` is refused before its pixels are decoded (a
decompression bomb), and a large JPEG is decoded at a reduced scale
(``Image.draft``) when the cap allows. The functions here are blocking: callers
run them in a worker thread, off the event loop.

Without the extra nothing changes: JPEGs are sent as they are, and any other
format is refused with a reason naming the extra.
"""

from __future__ import annotations

import functools
import importlib.util
import io
from typing import TYPE_CHECKING, BinaryIO, cast

from ._errors import PhotoError

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "EXTRA_HINT",
    "INSTALL_HINT",
    "JPEG_QUALITY",
    "MAX_PHOTO_BYTES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "decode_problem",
    "format_of",
    "header_problem",
    "images_available",
    "normalize",
]

MAX_SIDE = 2048
"""Pixels on the longest side of an uploaded photo (larger ones are scaled down)."""
MAX_PIXELS = 50_000_000
"""The largest photo decoded (width x height): a 48-megapixel phone photo passes."""
MAX_PHOTO_BYTES = 64 * 1024 * 1024
"""The largest photo file accepted, in any format."""
JPEG_QUALITY = 90
INSTALL_HINT = "pip install 'avaturn-async[images]'"
EXTRA_HINT = f"other formats than JPEG need the images extra ({INSTALL_HINT})"

_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif")


def format_of(head: bytes) -> str | None:
    """The format a file's first 12 bytes announce: ``jpeg``, ``png``, ``webp``, ``heif``, None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "heif"
    return None


@functools.lru_cache(maxsize=1)
def images_available() -> bool:
    """Whether the ``images`` extra (Pillow, pillow-heif) is installed."""
    found = importlib.util.find_spec("PIL") is not None
    return found and importlib.util.find_spec("pillow_heif") is not None


@functools.lru_cache(maxsize=1)
def _pillow() -> None:
    """Import Pillow once, with HEIC/HEIF support registered."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def _open(name: str, source: BinaryIO | io.RawIOBase) -> Image.Image:
    from PIL import Image, UnidentifiedImageError

    _pillow()
    try:
        image = Image.open(cast("BinaryIO", source))  # a raw stream reads as well
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        raise PhotoError(f"{name} photo is not a JPEG, PNG, WebP or HEIC image") from None
    if image.format not in ("JPEG", "PNG", "WEBP", "HEIF", "AVIF", "MPO"):
        image.close()
        raise PhotoError(f"{name} photo is not a JPEG, PNG, WebP or HEIC image ({image.format})")
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise PhotoError(
            f"{name} photo has {width}x{height} pixels, over the {MAX_PIXELS:,} this SDK decodes"
        )
    return image


def _is_plain_jpeg(image: Image.Image) -> bool:
    """A JPEG with nothing to remove or turn: only its JFIF header, within the cap."""
    if image.format != "JPEG" or max(image.size) > MAX_SIDE or image.mode not in ("RGB", "L"):
        return False
    markers = getattr(image, "applist", [])
    return all(marker == "APP0" and data.startswith(b"JFIF\x00") for marker, data in markers)


def normalize(name: str, source: BinaryIO | io.RawIOBase) -> bytes | None:
    """The JPEG to upload for ``source``, or ``None`` for a plain JPEG sent as it is. Blocking.
    :class:`PhotoError`: Pillow cannot read it, not an accepted format, over :data:`MAX_PIXELS`."""
    from PIL import Image, ImageOps

    with _open(name, source) as image:
        if _is_plain_jpeg(image):
            return None
        # A large JPEG is decoded at 1/2, 1/4 or 1/8 scale when that still covers the cap.
        image.draft("RGB", (MAX_SIDE, MAX_SIDE))
        try:
            upright = ImageOps.exif_transpose(image)
            upright.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
            rgb = upright.convert("RGB")
        except (OSError, ValueError, SyntaxError) as exc:
            raise PhotoError(f"{name} photo cannot be decoded: {exc}") from None
    out = io.BytesIO()
    # No exif=, icc_profile= or comment=: the new file carries no metadata at all.
    rgb.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


def header_problem(name: str, source: BinaryIO) -> str | None:
    """Why Pillow would not take the photo, reading its header only (cheap); ``None``
    if it would. Blocking."""
    try:
        with _open(name, source):
            return None
    except PhotoError as exc:
        return str(exc)


def decode_problem(name: str, source: BinaryIO) -> str | None:
    """Why the photo would not upload, decoding it (small) to be sure; ``None`` if fine.
    For a check before a batch (``avaturn onboard --dry-run``). Blocking."""
    try:
        with _open(name, source) as image:
            image.draft("RGB", (256, 256))
            image.load()
    except PhotoError as exc:
        return str(exc)
    except (OSError, ValueError, SyntaxError) as exc:
        return f"{name} photo cannot be decoded: {exc}"
    return None
