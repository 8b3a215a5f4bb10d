"""A sample manifest: generated rows, each with the three bundled sample photos."""

from __future__ import annotations

import csv
from pathlib import Path

from ..samples import sample_photo_paths

__all__ = ["write_sample_manifest"]


def write_sample_manifest(folder: str | Path, rows: int) -> Path:
    """Write ``folder/manifest.csv``: ``rows`` people, each with the three sample photos."""
    frontal, side_1, side_2 = (str(path) for path in sample_photo_paths())
    path = Path(folder) / "manifest.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "frontal", "side_1", "side_2", "body_type", "telephoto"])
        for number in range(1, rows + 1):
            body = "female" if number % 2 else "male"
            writer.writerow([f"sample-{number:05d}", frontal, side_1, side_2, body, "false"])
    return path
