"""The bundled sample onboarding: generated rows, the embedded emulator, webhooks.

``avaturn demo`` calls :func:`run_sample_onboarding`; nothing leaves the machine.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import TextIO

from ..batch import EXIT_FAILED, Manifest, OnboardSettings, onboard, write_sample_manifest
from ._environment import emulated_client

__all__ = ["run_sample_onboarding"]


async def run_sample_onboarding(
    *, rows: int = 24, out: TextIO | None = None, concurrency: int = 8, export: bool = True
) -> int:
    """Onboard ``rows`` sample people against the embedded emulator, then run again: the
    second run must find every row done and send nothing (the journal's resume guarantee,
    shown). The exit code is 0 when every row is ready and exported."""
    out = out if out is not None else sys.stdout
    with tempfile.TemporaryDirectory(prefix="avaturn-onboard-") as tmp:
        folder = Path(tmp)
        manifest = write_sample_manifest(folder, rows)
        journal = folder / "onboard.db"
        models = folder / "models"
        settings = OnboardSettings(concurrency=concurrency, export=export, export_dir=models)
        async with emulated_client() as (client, emulator, webhook_url):
            print(
                f"Sample onboarding of {rows} people against the embedded emulator; "
                f"webhooks to {webhook_url}",
                file=out,
            )
            with Manifest(manifest) as source:
                first = await onboard(client, source, journal=journal, settings=settings)
            print(first.format(), file=out)
            with Manifest(manifest) as source:
                again = await onboard(client, source, journal=journal, settings=settings)
            print(
                f"Rerun with the same journal: {again.already_done} already done, "
                f"{again.ready} redone; the emulator holds {len(emulator.users)} users and "
                f"{len(emulator.avatars)} avatars for {rows} rows",
                file=out,
            )
        consistent = len(emulator.users) == rows and len(emulator.avatars) == rows
        if not consistent or again.ready:
            return EXIT_FAILED
        return first.exit_code
