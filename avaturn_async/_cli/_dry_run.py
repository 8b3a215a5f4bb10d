"""``avaturn onboard MANIFEST --dry-run``: check a batch before it spends anything.

Every row is read and checked offline, as a run would before sending: the fields
(key, ``body_type``, ``telephoto``), the photos (there, readable, within the size
limit, of an accepted format; with the ``images`` extra each is also decoded, at
a small size), and the keys (unique: a later line with a key already seen is
invalid, as in a run). No request is sent, no API key is read, no journal is
needed; with ``--journal`` the rows it already finished are counted as **already
done**. The report is a run's: counts in the same words, one line per invalid row.
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path
from typing import Any, TextIO

import anyio
import anyio.to_thread
import attrs

from .. import _images as images
from .._errors import ConfigurationError, StorageError
from ..batch import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    JournalError,
    Manifest,
    ManifestError,
    OnboardRow,
    RowError,
    read_results,
)

__all__ = ["listed", "run_dry_run"]

PHOTO_COLUMNS = ("frontal", "side_1", "side_2")


@attrs.define
class DryRunReport:
    """What a dry run found: counts in a run's words, and each invalid row."""

    manifest: str
    rows: int = 0
    would_send: int = 0
    already_done: int = 0
    invalid_rows: list[dict[str, Any]] = attrs.field(factory=list)

    def as_dict(self) -> dict[str, Any]:
        counts = attrs.asdict(self, recurse=False)  # in field order: manifest, rows, ...
        invalid = counts.pop("invalid_rows")
        return {"dry_run": True, **counts, "invalid": len(invalid), "invalid_rows": invalid}

    def format(self) -> str:
        lines = [
            f"Dry run of {self.manifest}: {self.rows} rows read: {self.would_send} would be "
            f"sent, {self.already_done} already done, {len(self.invalid_rows)} invalid; "
            "nothing was sent"
        ]
        return "\n".join(lines + listed("invalid rows", self.invalid_rows))


def listed(title: str, rows: list[dict[str, Any]]) -> list[str]:
    """The report's lines of failed or invalid ``rows``, under ``title`` (none if empty);
    a row's ``error_kind`` is shown when it says more than its ``state`` (default invalid)."""
    if not rows:
        return []
    return [f"  {title}:"] + [
        f"    line {r['line']} key {r['key'] or '-'}: "
        + ("" if r["error_kind"] == r.get("state", "invalid") else f"[{r['error_kind']}] ")
        + str(r["error"])
        for r in rows
    ]


@functools.lru_cache(maxsize=1024)
def _decoded_problem(name: str, path: Path) -> str | None:
    """Decode one photo (small); photos shared by many rows are decoded once."""
    with path.open("rb") as handle:
        return images.decode_problem(name, handle)


def _photo_problem(row: OnboardRow) -> str | None:
    if not images.images_available():
        return None  # the manifest checked each photo's JPEG signature and size
    for name, path in zip(PHOTO_COLUMNS, row.photos(), strict=True):
        try:
            problem = _decoded_problem(name, path.resolve())
        except OSError as exc:
            problem = f"{name} photo cannot be read: {exc.strerror}"
        if problem is not None:
            return f"{problem}: {path}"
    return None


def _check(manifest: Manifest, done: frozenset[str]) -> DryRunReport:
    """Read and check every row (blocking: runs in a worker thread)."""
    report = DryRunReport(manifest=str(manifest.path))
    first_line: dict[str, int] = {}
    for item in manifest:
        report.rows += 1
        key, reason = item.key, item.reason if isinstance(item, RowError) else None
        if key is not None and key in first_line:
            reason = f"duplicate key {key!r} (first seen on line {first_line[key]})"
        elif key is not None:
            first_line[key] = item.line
            if key in done:
                report.already_done += 1  # finished earlier: its photos are not needed
                continue
        if reason is None and isinstance(item, OnboardRow):
            reason = _photo_problem(item)
        if reason is None:
            report.would_send += 1
        else:
            kind = "duplicate_key" if reason.startswith("duplicate key") else "invalid"
            row = {"line": item.line, "key": key, "error_kind": kind, "error": reason}
            report.invalid_rows.append(row)
    return report


async def _done_keys(journal: str, export: bool) -> frozenset[str]:
    """Keys the journal finished (exported too, when exporting); none if no file yet."""
    if "://" not in journal and not await anyio.to_thread.run_sync(Path(journal).is_file):
        return frozenset()
    done: set[str] = set()
    async for result in read_results(journal):
        finished = result.state == "ready" and (not export or result.export_path is not None)
        if finished and result.key is not None:
            done.add(result.key)
    return frozenset(done)


async def run_dry_run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Check ``args.manifest`` offline; 0 when every row would be sent (or is done)."""
    try:
        done = frozenset[str]()
        if args.journal:
            done = await _done_keys(args.journal, args.export_dir is not None)
        with Manifest(args.manifest) as manifest:
            report = await anyio.to_thread.run_sync(_check, manifest, done)
    except (ManifestError, JournalError, ConfigurationError, StorageError, OSError) as exc:
        print(f"avaturn onboard: error: {exc}", file=err)
        return EXIT_USAGE
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.format(), file=out)
    return EXIT_FAILED if report.invalid_rows else EXIT_OK
