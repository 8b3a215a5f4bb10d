"""Photo checks run before anything is sent."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from avaturn_async import BodyType, InvalidRequestError, PhotoError
from avaturn_async._photos import check_photo, prepare_upload
from tests.support import SAMPLE_JPEG

JPEG = SAMPLE_JPEG


def test_bytes_photo_is_accepted() -> None:
    assert check_photo("frontal", JPEG).size == len(JPEG)


def test_path_photo_is_checked_and_not_read_whole(tmp_path: Path) -> None:
    photo = tmp_path / "f.jpg"
    photo.write_bytes(JPEG)
    source = check_photo("frontal", photo)
    assert (source.path, source.size, source.data) == (photo, len(JPEG), None)


def test_missing_path_is_a_photo_error(tmp_path: Path) -> None:
    with pytest.raises(PhotoError, match="frontal photo not found"):
        check_photo("frontal", tmp_path / "nope.jpg")


def test_empty_photo_is_rejected() -> None:
    with pytest.raises(PhotoError, match="side_1 photo is empty"):
        check_photo("side_1", b"")


def test_non_jpeg_photo_is_rejected() -> None:
    with pytest.raises(PhotoError, match="not a JPEG"):
        check_photo("side_2", b"\x89PNG\r\n\x1a\n")


def test_file_object_is_rewound_after_the_check() -> None:
    handle = io.BytesIO(b"xx" + JPEG)
    handle.seek(2)
    source = check_photo("frontal", handle)
    assert (handle.tell(), source.size) == (2, len(JPEG))


def test_file_object_is_not_closed_by_reading_its_stream() -> None:
    handle = io.BytesIO(JPEG)
    stream = check_photo("frontal", handle).open()
    assert stream.read() == JPEG
    stream.close()
    assert not handle.closed


def test_text_mode_file_is_rejected(tmp_path: Path) -> None:
    photo = tmp_path / "f.jpg"
    photo.write_bytes(JPEG)
    with photo.open("r", encoding="latin-1") as handle, pytest.raises(PhotoError, match="binary"):
        check_photo("frontal", handle)  # type: ignore[arg-type]


def test_unsupported_type_is_rejected() -> None:
    with pytest.raises(PhotoError, match="must be a path, bytes or a binary file object"):
        check_photo("frontal", 42)  # type: ignore[arg-type]


def test_body_type_must_be_male_or_female() -> None:
    with pytest.raises(InvalidRequestError, match="body_type"):
        prepare_upload(frontal=JPEG, side_1=JPEG, side_2=JPEG, body_type="other")  # type: ignore[arg-type]


def test_bad_body_type_is_not_a_photo_error() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        prepare_upload(frontal=JPEG, side_1=JPEG, side_2=JPEG, body_type="other")  # type: ignore[arg-type]
    assert not isinstance(caught.value, PhotoError)


def test_prepare_upload_normalises_body_type() -> None:
    upload = prepare_upload(frontal=JPEG, side_1=JPEG, side_2=JPEG, body_type="female")
    assert upload.body_type is BodyType.FEMALE


def test_photo_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        check_photo("frontal", b"")
