"""Property tests: the manifest reader under arbitrary CSV and JSON Lines input.

Whatever a line holds, reading yields :class:`OnboardRow` or :class:`RowError`
items (the documented per-line outcome); only an unusable header raises, and then
only :class:`ManifestError`.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avaturn_async.batch import Manifest, ManifestError, OnboardRow, RowError
from avaturn_async.samples import sample_photo_paths

SETTINGS = settings(max_examples=100, deadline=None)
COLUMNS = ("key", "frontal", "side_1", "side_2", "body_type", "telephoto")
HEADER = ",".join(COLUMNS) + "\n"

# Any text a UTF-8 file can hold (NUL included); raw bytes are tested separately.
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=24)
field_values = (
    texts
    | st.sampled_from(["f.jpg", "s1.jpg", "s2.jpg", "missing.jpg", "not.jpg", ".", "/"])
    | st.sampled_from(["male", "female", "MALE", " female ", "robot", ""])
    | st.sampled_from(["true", "false", "1", "0", "yes", "no", "maybe"])
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | field_values,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with three good photos (f.jpg, s1.jpg, s2.jpg) and a bad one (not.jpg)."""
    path = tmp_path_factory.mktemp("manifest")
    for name, source in zip(("f", "s1", "s2"), sample_photo_paths(), strict=True):
        shutil.copy(source, path / f"{name}.jpg")
    (path / "not.jpg").write_bytes(b"GIF89a" + bytes(16))
    return path


def read(path: Path) -> list[object]:
    with Manifest(path) as manifest:
        return list(manifest)


def assert_rows_or_row_errors(items: list[object]) -> None:
    for item in items:
        assert isinstance(item, (OnboardRow, RowError)), item
        if isinstance(item, RowError):
            assert item.line >= 1
            assert item.reason
        else:
            assert item.key
            assert item.key == item.key.strip()


def csv_text(records: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL).writerows(records)
    return out.getvalue()


@SETTINGS
@given(st.lists(st.lists(field_values, max_size=8), max_size=8))
def test_quoted_csv_records_become_rows_or_row_errors(
    folder: Path, records: list[list[str]]
) -> None:
    path = folder / "records.csv"
    path.write_text(HEADER + csv_text(records), encoding="utf-8")
    items = read(path)
    assert_rows_or_row_errors(items)
    non_blank = [r for r in records if any(value.strip() for value in r)]
    assert len(items) <= len(non_blank)


@SETTINGS
@given(st.lists(texts, max_size=10))
def test_arbitrary_csv_lines_become_rows_or_row_errors(folder: Path, lines: list[str]) -> None:
    path = folder / "lines.csv"
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    assert_rows_or_row_errors(read(path))


@SETTINGS
@given(texts)
def test_an_arbitrary_csv_header_is_read_or_refused_with_a_manifest_error(
    folder: Path, header: str
) -> None:
    path = folder / "header.csv"
    path.write_text(header + "\nk,f.jpg,s1.jpg,s2.jpg,male\n", encoding="utf-8")
    try:
        items = read(path)
    except ManifestError:
        return
    assert_rows_or_row_errors(items)


@SETTINGS
@given(
    st.lists(
        st.dictionaries(st.sampled_from(COLUMNS) | texts, json_values, max_size=7)
        .map(json.dumps)
        | json_values.map(json.dumps)
        | texts.filter(lambda text: "\n" not in text and "\r" not in text),
        max_size=10,
    )
)
def test_arbitrary_json_lines_become_one_row_or_row_error_each(
    folder: Path, lines: list[str]
) -> None:
    path = folder / "lines.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    items = read(path)
    assert_rows_or_row_errors(items)
    # One item per non-blank line (str.splitlines agrees with file iteration here
    # only for \n, so count the way the file is read).
    with path.open(encoding="utf-8-sig", newline="") as handle:
        expected = sum(1 for text in handle if text.strip())
    assert len(items) == expected


def good_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "key": "k",
        "frontal": "f.jpg",
        "side_1": "s1.jpg",
        "side_2": "s2.jpg",
        "body_type": "male",
    }
    return {**row, **changes}


@SETTINGS
@given(st.sampled_from(COLUMNS), json_values)
def test_any_value_in_any_json_column_gives_a_row_or_a_row_error(
    folder: Path, column: str, value: Any
) -> None:
    path = folder / "column.jsonl"
    path.write_text(json.dumps(good_row(**{column: value})) + "\n", encoding="utf-8")
    [item] = read(path)
    assert_rows_or_row_errors([item])


@SETTINGS
@given(st.lists(st.binary(max_size=40), max_size=8), st.sampled_from(["csv", "jsonl"]))
def test_arbitrary_bytes_after_a_good_start_become_rows_or_row_errors(
    folder: Path, lines: list[bytes], suffix: str
) -> None:
    path = folder / f"bytes.{suffix}"
    start = HEADER.encode() if suffix == "csv" else json.dumps(good_row()).encode() + b"\n"
    path.write_bytes(start + b"\n".join(lines) + b"\n")
    assert_rows_or_row_errors(read(path))


def lines_of(path: Path) -> Iterator[object]:
    with Manifest(path) as manifest:
        yield from manifest


def test_a_nul_character_in_a_photo_path_is_a_row_error(folder: Path) -> None:
    path = folder / "nul.jsonl"
    path.write_text(json.dumps(good_row(frontal="f\x00.jpg")) + "\n", encoding="utf-8")
    assert_rows_or_row_errors(list(lines_of(path)))


def test_a_line_that_is_not_utf8_is_a_row_error(folder: Path) -> None:
    path = folder / "latin1.jsonl"
    path.write_bytes(json.dumps(good_row()).encode() + b"\n\xff\xfe not utf-8\n")
    assert_rows_or_row_errors(list(lines_of(path)))
