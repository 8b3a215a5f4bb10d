"""Three small JPEG drawings of a face (frontal, then the two sides) for demos and tests.

They are not photos of a person: the emulator accepts them, the real service would not
produce a meaningful avatar from them.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SAMPLES_DIR", "sample_photo_paths"]

SAMPLES_DIR: Path = Path(__file__).resolve().parent


def sample_photo_paths() -> tuple[Path, Path, Path]:
    """The frontal, first-side and second-side sample photos, in upload order."""
    return (
        SAMPLES_DIR / "frontal.jpg",
        SAMPLES_DIR / "side_1.jpg",
        SAMPLES_DIR / "side_2.jpg",
    )
