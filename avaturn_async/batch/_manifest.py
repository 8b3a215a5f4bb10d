"""Onboarding rows, and the manifest files (CSV or JSON Lines) they are read from.

A manifest lists one person per row::

    key,frontal,side_1,side_2,body_type,telephoto
    crm-0001,photos/0001_front.jpg,photos/0001_left.jpg,photos/0001_right.jpg,female,false

* ``key``: the partner's own id of the person (unique in the manifest);
* ``frontal``, ``side_1``, ``side_2``: JPEG photo paths, relative to the
  manifest's folder (absolute paths work too);
* ``body_type``: ``male`` or ``female``; ``telephoto`` (optional): ``true`` or
  ``false`` (also ``1``/``0``, ``yes``/``no``; empty means false).

JSON Lines manifests (``.jsonl`` / ``.ndjson``) hold one object per line with
the same names; ``telephoto`` may be a JSON boolean. Blank lines are skipped.

Files are read lazily, one row at a time. A row that cannot be used becomes a
:class:`RowError` naming its line and the reason; only a file that cannot be
read at all (missing, no header, required columns absent) raises
:class:`ManifestError`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal

import attrs

from .._errors import AvaturnError
from .._images import header_problem
from .._models import BodyType
from .._photos import photo_head_problem

__all__ = [
    "REQUIRED_COLUMNS",
    "Manifest",
    "ManifestError",
    "OnboardRow",
    "RowError",
    "check_photos",
    "count_rows",
]

REQUIRED_COLUMNS = ("key", "frontal", "side_1", "side_2", "body_type")
USED_COLUMNS = (*REQUIRED_COLUMNS, "telephoto")
"""The columns the SDK reads; every other column of a row is kept as its ``extra``."""
PHOTO_COLUMNS = ("frontal", "side_1", "side_2")
MAX_KEY_LENGTH = 256
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no", ""})


class ManifestError(AvaturnError, ValueError):
    """The manifest cannot be read at all (per-row problems are :class:`RowError`)."""


@attrs.frozen(kw_only=True)
class OnboardRow:
    """One person to onboard: the partner's key, three photo paths and the body type."""

    key: str
    frontal: Path = attrs.field(converter=Path)
    side_1: Path = attrs.field(converter=Path)
    side_2: Path = attrs.field(converter=Path)
    body_type: BodyType = attrs.field(converter=BodyType)
    telephoto: bool = False
    line: int = 0
    """Where the row came from (manifest line, or position in the iterable), for reports."""
    extra: dict[str, Any] = attrs.field(factory=dict, hash=False)
    """The row's other columns (a customer id, an email): kept in the journal and
    written to the results, so they join back to your own tables."""

    def photos(self) -> tuple[Path, Path, Path]:
        return (self.frontal, self.side_1, self.side_2)


@attrs.frozen(kw_only=True)
class RowError:
    """A row that cannot be onboarded as given."""

    line: int
    key: str | None
    reason: str
    extra: dict[str, Any] = attrs.field(factory=dict, hash=False)
    """The row's columns the SDK does not use, as for :attr:`OnboardRow.extra`."""

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def check_photos(row: OnboardRow) -> str | None:
    """Why the row's photos cannot be uploaded, or ``None``. Reads 12 bytes of each
    (their format: JPEG, or with the ``images`` extra also PNG, WebP, HEIC)."""
    for name, path in zip(PHOTO_COLUMNS, row.photos(), strict=True):
        try:
            with path.open("rb") as handle:
                head = handle.read(12)
                size = os.fstat(handle.fileno()).st_size
                problem = photo_head_problem(name, head, size)
                if problem is None and not head.startswith(b"\xff\xd8\xff"):
                    # Another format (the images extra is installed): Pillow reads its header.
                    handle.seek(0)
                    problem = header_problem(name, handle)
        except FileNotFoundError:
            return f"{name} photo not found: {path}"
        except IsADirectoryError:
            return f"{name} photo is a directory: {path}"
        except OSError as exc:
            return f"{name} photo cannot be read: {path}: {exc.strerror}"
        except ValueError:  # a NUL character in the path
            return f"{name} photo path is not valid: {str(path)!r}"
        if problem is not None:
            return f"{problem}: {path}"
    return None


def _text(fields: Mapping[str, object], name: str) -> str:
    value = fields.get(name)
    if value is not None and not isinstance(value, str):
        raise _Bad(f"{name} must be a string")
    if value is None or not value.strip():
        raise _Bad(f"missing {name}")
    return value.strip()


def _telephoto(value: object) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Bad(f"telephoto must be true or false, not {value!r}")


class _Bad(Exception):
    """A reason a row is unusable (internal: becomes a RowError)."""


def build_row(fields: Mapping[str, Any], *, line: int, base: Path) -> OnboardRow | RowError:
    """Check one row's fields (and its photos); relative paths are taken from ``base``.

    Column names are matched without case or surrounding spaces; the other
    columns are kept, under their own names, as the row's ``extra``.
    """
    extra = {name: value for name, value in fields.items() if name not in USED_COLUMNS}
    try:
        row = _checked_row(fields, line=line, base=base, extra=extra)
    except _Bad as exc:
        key = fields.get("key")
        key = key.strip() or None if isinstance(key, str) else None
        return RowError(line=line, key=key, reason=str(exc), extra=extra)
    problem = check_photos(row)
    return row if problem is None else RowError(line=line, key=row.key, reason=problem, extra=extra)


def _checked_row(
    fields: Mapping[str, Any], *, line: int, base: Path, extra: dict[str, Any]
) -> OnboardRow:
    key = _text(fields, "key")
    if len(key) > MAX_KEY_LENGTH:
        raise _Bad(f"key is longer than {MAX_KEY_LENGTH} characters")
    paths = [base / _text(fields, name) for name in PHOTO_COLUMNS]
    body = _text(fields, "body_type").lower()
    if body not in ("male", "female"):
        raise _Bad(f"body_type must be 'male' or 'female', not {fields.get('body_type')!r}")
    return OnboardRow(
        key=key,
        frontal=paths[0],
        side_1=paths[1],
        side_2=paths[2],
        body_type=BodyType(body),
        telephoto=_telephoto(fields.get("telephoto")),
        line=line,
        extra=extra,
    )


_NOT_UTF8 = "the line is not valid UTF-8"


def _is_utf8(text: str) -> bool:
    """False when ``text`` holds bytes that were not UTF-8 (surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _column_name(name: str) -> str:
    lowered = name.strip().lower()
    return lowered if lowered in USED_COLUMNS else name.strip()


def _format_of(path: Path) -> Literal["csv", "jsonl"]:
    return "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "csv"


class Manifest(contextlib.AbstractContextManager["Manifest"]):
    """An open manifest: iterate it for :class:`OnboardRow` and :class:`RowError` items.

    Opening checks that the file is readable and, for CSV, that the header
    names the required columns; rows are then read one at a time.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path: Path = Path(path)
        self.base: Path = self.path.resolve().parent
        self.format = _format_of(self.path)
        try:
            # Bytes that are not UTF-8 become lone surrogates, so that a bad line is
            # reported as one RowError instead of ending the whole read.
            self._file: IO[str] = self.path.open(
                encoding="utf-8-sig", errors="surrogateescape", newline=""
            )
        except OSError as exc:
            raise ManifestError(f"cannot read manifest {self.path}: {exc.strerror}") from None
        self._header: list[str] = []
        self._reader: Iterator[list[str]] | None = None
        if self.format == "csv":
            self._open_csv()

    def _open_csv(self) -> None:
        reader = csv.reader(self._file)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            self.close()
            raise ManifestError(f"{self.path}: unreadable CSV header: {exc}") from None
        # The SDK's columns are matched without case; the others keep their spelling.
        names = [_column_name(name) for name in header or []]
        missing = [name for name in REQUIRED_COLUMNS if name not in names]
        if missing:
            self.close()
            raise ManifestError(
                f"{self.path}: the CSV header must name the columns "
                f"{','.join(REQUIRED_COLUMNS)}[,telephoto]; missing: {', '.join(missing)}"
            )
        self._header = names
        self._reader = reader

    @property
    def extra_columns(self) -> list[str] | None:
        """A CSV manifest's columns the SDK does not use, in header order (kept as
        each row's ``extra``); ``None`` for JSON Lines, whose rows may differ."""
        if self.format != "csv":
            return None
        return [name for name in self._header if name not in USED_COLUMNS]

    def close(self) -> None:
        self._file.close()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[OnboardRow | RowError]:
        return self._csv_rows() if self.format == "csv" else self._jsonl_rows()

    def _csv_rows(self) -> Iterator[OnboardRow | RowError]:
        assert self._reader is not None
        reader = self._reader
        line = 1  # the header
        while True:
            start = line + 1
            try:
                values = next(reader, None)
            except (csv.Error, UnicodeDecodeError) as exc:
                yield RowError(line=start, key=None, reason=f"unreadable CSV: {exc}")
                return
            if values is None:
                return
            line = reader.line_num  # type: ignore[attr-defined]
            if not any(value.strip() for value in values):
                continue
            if not _is_utf8("".join(values)):
                yield RowError(line=start, key=None, reason=_NOT_UTF8)
                continue
            if len(values) > len(self._header):
                reason = f"{len(values)} fields but the header names {len(self._header)}"
                yield RowError(line=start, key=None, reason=reason)
                continue
            fields = dict(zip(self._header, values, strict=False))
            yield build_row(fields, line=start, base=self.base)

    def _jsonl_rows(self) -> Iterator[OnboardRow | RowError]:
        for number, text in enumerate(self._file, start=1):
            if not text.strip():
                continue
            if not _is_utf8(text):
                yield RowError(line=number, key=None, reason=_NOT_UTF8)
                continue
            try:
                fields = json.loads(text)
            except ValueError as exc:
                yield RowError(line=number, key=None, reason=f"not valid JSON: {exc}")
                continue
            if not isinstance(fields, dict):
                yield RowError(line=number, key=None, reason="expected a JSON object")
                continue
            yield build_row(fields, line=number, base=self.base)


def count_rows(path: str | os.PathLike[str]) -> int | None:
    """How many non-blank rows a manifest holds (for a progress bar), or ``None``.

    A quick pass that keeps nothing in memory; it does not check the rows.
    """
    try:
        with Path(path).open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
            if _format_of(Path(path)) == "jsonl":
                return sum(1 for text in handle if text.strip())
            rows = sum(1 for values in csv.reader(handle) if any(v.strip() for v in values))
            return max(0, rows - 1)
    except (OSError, csv.Error, UnicodeDecodeError):
        return None
