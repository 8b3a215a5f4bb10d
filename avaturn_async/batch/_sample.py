"""A sample manifest: generated rows, each with the three bundled sample photos."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from ..samples import sample_photo_paths
from ._manifest import USED_COLUMNS

__all__ = ["write_sample_manifest"]


def write_sample_manifest(folder: str | Path, rows: int, *, name: str = "manifest.csv") -> Path:
    """Write ``folder/<name>``: ``rows`` people, each with the three sample photos.

    The photos are copied into ``folder/photos/`` and named relative to the
    manifest, so the folder still works when moved or copied elsewhere. Each row
    also has a ``customer_id`` column, a column of your own that the SDK keeps
    for the results. The folder is made if missing.
    """
    folder = Path(folder)
    photos = folder / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    names = []
    for sample in sample_photo_paths():
        shutil.copyfile(sample, photos / sample.name)
        names.append(f"photos/{sample.name}")
    path = folder / name
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*USED_COLUMNS, "customer_id"])
        for number in range(1, rows + 1):
            body = "female" if number % 2 else "male"
            writer.writerow([f"sample-{number:05d}", *names, body, "false", f"C{number:06d}"])
    return path
