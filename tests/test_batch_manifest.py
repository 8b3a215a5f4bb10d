"""Manifest reading: CSV and JSON Lines, one RowError per bad line, lazily."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from avaturn_async import BodyType
from avaturn_async.batch import Manifest, ManifestError, OnboardRow, RowError, count_rows
from avaturn_async.samples import sample_photo_paths

HEADER = "key,frontal,side_1,side_2,body_type,telephoto\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with the three sample photos, as photos/f.jpg, s1.jpg, s2.jpg."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, source in zip(("f", "s1", "s2"), sample_photo_paths(), strict=True):
        shutil.copy(source, photos / f"{name}.jpg")
    return tmp_path


def read_csv(folder: Path, *lines: str) -> list[OnboardRow | RowError]:
    path = folder / "manifest.csv"
    path.write_text(HEADER + "".join(line + "\n" for line in lines))
    with Manifest(path) as manifest:
        return list(manifest)


GOOD = "photos/f.jpg,photos/s1.jpg,photos/s2.jpg"


def test_a_good_csv_row_becomes_an_onboard_row_with_paths_from_the_manifest_folder(
    folder: Path,
) -> None:
    [row] = read_csv(folder, f"alice,{GOOD},female,true")
    assert row == OnboardRow(
        key="alice",
        frontal=folder / "photos/f.jpg",
        side_1=folder / "photos/s1.jpg",
        side_2=folder / "photos/s2.jpg",
        body_type=BodyType.FEMALE,
        telephoto=True,
        line=2,
    )


def test_a_missing_photo_is_reported_with_its_line(folder: Path) -> None:
    [row] = read_csv(folder, "alice,photos/f.jpg,photos/nope.jpg,photos/s2.jpg,female,")
    reason = f"side_1 photo not found: {folder}/photos/nope.jpg"
    assert row == RowError(line=2, key="alice", reason=reason)


def test_a_photo_that_is_not_a_jpeg_is_reported(folder: Path) -> None:
    (folder / "photos/f.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    [row] = read_csv(folder, "alice,photos/f.png,photos/s1.jpg,photos/s2.jpg,male,")
    assert isinstance(row, RowError)
    assert row.reason.startswith("frontal photo is not a JPEG")


def test_an_empty_photo_is_reported(folder: Path) -> None:
    (folder / "photos/empty.jpg").write_bytes(b"")
    [row] = read_csv(folder, "alice,photos/f.jpg,photos/s1.jpg,photos/empty.jpg,male,")
    assert isinstance(row, RowError)
    assert row.reason.startswith("side_2 photo is empty")


def test_a_bad_body_type_is_reported(folder: Path) -> None:
    [row] = read_csv(folder, f"alice,{GOOD},robot,")
    assert row == RowError(
        line=2, key="alice", reason="body_type must be 'male' or 'female', not 'robot'"
    )


def test_a_bad_telephoto_value_is_reported(folder: Path) -> None:
    [row] = read_csv(folder, f"alice,{GOOD},male,maybe")
    reason = "telephoto must be true or false, not 'maybe'"
    assert row == RowError(line=2, key="alice", reason=reason)


def test_a_row_without_key_is_reported_without_key(folder: Path) -> None:
    [row] = read_csv(folder, f",{GOOD},male,")
    assert row == RowError(line=2, key=None, reason="missing key")


def test_a_short_row_names_the_missing_column(folder: Path) -> None:
    [row] = read_csv(folder, "alice,photos/f.jpg,photos/s1.jpg")
    assert row == RowError(line=2, key="alice", reason="missing side_2")


def test_line_numbers_count_blank_lines(folder: Path) -> None:
    rows = read_csv(folder, f"alice,{GOOD},male,", "", f"bob,{GOOD},robot,")
    assert [row.line for row in rows] == [2, 4]


def test_a_bad_row_does_not_stop_the_rows_after_it(folder: Path) -> None:
    rows = read_csv(folder, f"alice,{GOOD},robot,", f"bob,{GOOD},male,")
    assert [type(row).__name__ for row in rows] == ["RowError", "OnboardRow"]


def test_duplicate_keys_are_left_to_the_journal(folder: Path) -> None:
    # The reader keeps nothing per row (memory stays flat); the journal knows
    # every key of the run and rejects the second one (see test_batch_journal).
    rows = read_csv(folder, f"alice,{GOOD},male,", f"alice,{GOOD},male,")
    assert [row.key for row in rows] == ["alice", "alice"]


def test_a_header_without_the_required_columns_is_a_manifest_error(tmp_path: Path) -> None:
    path = tmp_path / "manifest.csv"
    path.write_text("id,photo\n1,a.jpg\n")
    with pytest.raises(ManifestError, match="missing: key, frontal, side_1, side_2, body_type"):
        Manifest(path)


def test_a_missing_manifest_is_a_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read manifest"):
        Manifest(tmp_path / "absent.csv")


def test_jsonl_rows_are_read_with_json_booleans(folder: Path) -> None:
    path = folder / "manifest.jsonl"
    fields = {"frontal": "photos/f.jpg", "side_1": "photos/s1.jpg", "side_2": "photos/s2.jpg"}
    path.write_text(json.dumps({"key": "a", **fields, "body_type": "male", "telephoto": True}))
    with Manifest(path) as manifest:
        [row] = list(manifest)
    assert isinstance(row, OnboardRow)
    assert row.telephoto is True


def test_jsonl_lines_that_are_not_objects_are_reported(folder: Path) -> None:
    path = folder / "manifest.jsonl"
    path.write_text('{"key": \n[1, 2]\n')
    with Manifest(path) as manifest:
        rows = list(manifest)
    assert [(row.line, row.reason.split(":")[0]) for row in rows if isinstance(row, RowError)] == [
        (1, "not valid JSON"),
        (2, "expected a JSON object"),
    ]


def test_rows_are_read_lazily(folder: Path) -> None:
    path = folder / "manifest.csv"
    path.write_text(HEADER + f"a,{GOOD},male,\n" + "b,photos/gone.jpg,x,y,male,\n")
    with Manifest(path) as manifest:
        first = next(iter(manifest))
        (folder / "photos/gone.jpg").write_bytes((folder / "photos/f.jpg").read_bytes())
        assert isinstance(first, OnboardRow)
        assert next(iter(manifest)).reason == f"side_1 photo not found: {folder}/x"  # type: ignore[union-attr]


def test_count_rows_ignores_the_header_and_blank_lines(folder: Path) -> None:
    path = folder / "manifest.csv"
    path.write_text(HEADER + f"a,{GOOD},male,\n\n" + f"b,{GOOD},male,\n")
    assert count_rows(path) == 2


def test_a_nul_character_in_a_photo_path_is_reported(folder: Path) -> None:
    [row] = read_csv(folder, "alice,photos/f\x00.jpg,photos/s1.jpg,photos/s2.jpg,male,")
    assert isinstance(row, RowError)
    assert row.reason.startswith("frontal photo path is not valid")


def test_a_jsonl_line_that_is_not_utf8_is_reported_and_reading_goes_on(folder: Path) -> None:
    path = folder / "manifest.jsonl"
    fields = {"frontal": "photos/f.jpg", "side_1": "photos/s1.jpg", "side_2": "photos/s2.jpg"}
    good = json.dumps({"key": "a", **fields, "body_type": "male"}).encode()
    path.write_bytes(b'{"key": "\xff"}\n' + good + b"\n")
    with Manifest(path) as manifest:
        rows = list(manifest)
    assert rows[0] == RowError(line=1, key=None, reason="the line is not valid UTF-8")
    assert isinstance(rows[1], OnboardRow)


def test_a_csv_row_that_is_not_utf8_is_reported_and_reading_goes_on(folder: Path) -> None:
    path = folder / "manifest.csv"
    path.write_bytes(HEADER.encode() + b"\xe9t\xe9," + GOOD.encode() + b",male,\n"
                     + f"b,{GOOD},male,\n".encode())
    with Manifest(path) as manifest:
        rows = list(manifest)
    assert rows[0] == RowError(line=2, key=None, reason="the line is not valid UTF-8")
    assert isinstance(rows[1], OnboardRow)
