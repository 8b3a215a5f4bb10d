"""The ``images`` extra: photos people have (PNG, WebP, HEIC, JPEG) arrive as clean JPEGs.

Each test uploads through the client to the emulator and reads back what it received
(``AvaturnEmulator.uploaded_photos``), so what is asserted is what left the machine.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from avaturn_async import AvaturnClient, PhotoError
from avaturn_async import _images as images
from avaturn_async.batch import Manifest, RowError
from avaturn_async.samples import sample_photo_paths
from avaturn_async.testing import AvaturnEmulator
from tests.support import SAMPLE_JPEG

GPS_TAG = 0x8825
ORIENTATION_TAG = 0x0112


def _image(width: int, height: int, fmt: str, **save: object) -> bytes:
    picture = Image.new("RGB", (width, height), (200, 30, 30))
    picture.paste((30, 30, 200), (0, 0, width // 2, height // 4))  # a mark to find "up" by
    out = io.BytesIO()
    picture.save(out, format=fmt, **save)
    return out.getvalue()


def _jpeg_with_exif(width: int, height: int, **tags: int) -> bytes:
    exif = Image.Exif()
    if "orientation" in tags:
        exif[ORIENTATION_TAG] = tags["orientation"]
    if "gps" in tags:
        exif[GPS_TAG] = {1: "N", 2: (48.0, 51.0, 24.0)}
    return _image(width, height, "JPEG", exif=exif.tobytes())


async def _uploaded(photo: bytes | Path) -> bytes:
    """What the emulator received as the frontal photo when ``photo`` was sent."""
    async with AvaturnEmulator(processing_delay=0.01) as emu:
        async with AvaturnClient(emu.api_key, base_url=emu.base_url) as client:
            user = await client.users.create()
            job = await client.avatars.create_from_photos(
                user.id, frontal=photo, side_1=SAMPLE_JPEG, side_2=SAMPLE_JPEG, body_type="male"
            )
        return emu.uploaded_photos(job.avatar_id)["image-frontal"]


def _read(data: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture


async def test_a_png_is_uploaded_as_a_jpeg() -> None:
    sent = _read(await _uploaded(_image(64, 48, "PNG")))
    assert (sent.format, sent.size) == ("JPEG", (64, 48))


async def test_a_webp_is_uploaded_as_a_jpeg() -> None:
    sent = _read(await _uploaded(_image(64, 48, "WEBP")))
    assert (sent.format, sent.size) == ("JPEG", (64, 48))


async def test_a_heic_photo_is_uploaded_as_a_jpeg(tmp_path: Path) -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    photo = tmp_path / "phone.heic"
    photo.write_bytes(_image(64, 48, "HEIF"))
    sent = _read(await _uploaded(photo))
    assert (sent.format, sent.size) == ("JPEG", (64, 48))


async def test_a_portrait_photo_with_exif_orientation_arrives_upright() -> None:
    # Stored landscape, 6 = "rotate 90 degrees clockwise to view": upright it is portrait.
    sent = _read(await _uploaded(_jpeg_with_exif(80, 40, orientation=6)))
    assert sent.size == (40, 80)
    assert ORIENTATION_TAG not in sent.getexif()


async def test_no_gps_position_or_other_metadata_leaves_the_machine() -> None:
    photo = _jpeg_with_exif(64, 48, gps=1)
    assert GPS_TAG in Image.open(io.BytesIO(photo)).getexif()
    sent = _read(await _uploaded(photo))
    assert dict(sent.getexif()) == {}
    assert [marker for marker, _ in sent.applist] == ["APP0"]  # type: ignore[attr-defined]


async def test_the_longest_side_is_capped() -> None:
    sent = _read(await _uploaded(_image(2 * images.MAX_SIDE, images.MAX_SIDE // 2, "PNG")))
    assert sent.size == (images.MAX_SIDE, images.MAX_SIDE // 4)


async def test_a_plain_jpeg_is_sent_byte_for_byte() -> None:
    assert await _uploaded(SAMPLE_JPEG) == SAMPLE_JPEG


async def test_a_photo_over_the_pixel_limit_is_refused_before_decoding() -> None:
    huge = Image.new("1", (10_000, images.MAX_PIXELS // 10_000 + 1))
    out = io.BytesIO()
    huge.save(out, format="PNG")
    async with AvaturnClient("k", base_url="http://127.0.0.1:9") as client:
        with pytest.raises(PhotoError, match="pixels, over the"):
            await client.avatars.upload_photos(
                "http://127.0.0.1:9/u", frontal=out.getvalue(), side_1=SAMPLE_JPEG,
                side_2=SAMPLE_JPEG, body_type="male",
            )


async def test_without_the_extra_a_png_is_refused_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(images, "images_available", lambda: False)
    async with AvaturnClient("k", base_url="http://127.0.0.1:9") as client:
        with pytest.raises(PhotoError, match=r"frontal photo is PNG, not JPEG: .*\[images\]"):
            await client.avatars.upload_photos(
                "http://127.0.0.1:9/u", frontal=_image(8, 8, "PNG"), side_1=SAMPLE_JPEG,
                side_2=SAMPLE_JPEG, body_type="male",
            )


def test_without_the_extra_a_png_row_is_invalid_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images, "images_available", lambda: False)
    (tmp_path / "f.png").write_bytes(_image(8, 8, "PNG"))
    side_1, side_2 = sample_photo_paths()[1:]
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        f"key,frontal,side_1,side_2,body_type\na,f.png,{side_1},{side_2},male\n", encoding="utf-8"
    )
    with Manifest(manifest) as rows:
        [row] = list(rows)
    assert isinstance(row, RowError)
    assert "pip install 'avaturn-async[images]'" in row.reason


def test_with_the_extra_a_png_row_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "f.png").write_bytes(_image(8, 8, "PNG"))
    side_1, side_2 = sample_photo_paths()[1:]
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        f"key,frontal,side_1,side_2,body_type\na,f.png,{side_1},{side_2},male\n", encoding="utf-8"
    )
    with Manifest(manifest) as rows:
        [row] = list(rows)
    assert not isinstance(row, RowError)


async def test_the_emulator_keeps_each_photo_by_form_field() -> None:
    front, left, right = (path.read_bytes() for path in sample_photo_paths())
    async with AvaturnEmulator(processing_delay=0.01) as emu:
        async with AvaturnClient(emu.api_key, base_url=emu.base_url) as client:
            user = await client.users.create()
            job = await client.avatars.create_from_photos(
                user.id, frontal=front, side_1=left, side_2=right, body_type="female"
            )
        kept = dict(emu.uploaded_photos(job.avatar_id))
    assert kept == {"image-frontal": front, "image-side-1": left, "image-side-2": right}
