"""Onboard a CSV of people from Python: one user and one ready avatar each, with progress.

Shows: ``Manifest`` (a lazy CSV / JSON Lines reader; bad rows become per-row
failures), ``onboard()`` with a journal (rerun the same command after a crash or
Ctrl-C and it resumes, sending nothing twice) and a ``progress`` callback.

The CSV header is ``key,frontal,side_1,side_2,body_type[,telephoto]``; photo paths
are relative to the CSV's folder. Without an argument the script writes a sample
CSV of 12 people (the SDK's sample drawings) into ``onboarding/`` and uses it.

Run it against the local emulator (no key, no network)::

    avaturn emulator --port 8080 --processing-delay 0.2 &
    export AVATURN_BASE_URL=http://127.0.0.1:8080 AVATURN_API_KEY=emulator-key
    python examples/onboard_csv.py

or against Avaturn with your key and your CSV (``AVATURN_API_KEY=...``)::

    python examples/onboard_csv.py people.csv

The same from the command line: ``avaturn onboard people.csv --journal onboard.db``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

from avaturn_async import AvaturnClient
from avaturn_async.batch import (
    Manifest,
    OnboardingSummary,
    OnboardSettings,
    count_rows,
    onboard,
    write_sample_manifest,
)


class Progress:
    """Called with the running summary as the run goes; keep it quick (it runs on the loop)."""

    def __init__(self) -> None:
        self.shown = -1

    def __call__(self, summary: OnboardingSummary) -> None:
        if summary.done != self.shown:  # print only when a row has finished
            self.shown = summary.done
            print(f"progress: {summary.done}/{summary.total} rows handled", flush=True)


async def main(csv_path: Path) -> int:
    async with AvaturnClient() as client:  # AVATURN_API_KEY, AVATURN_BASE_URL
        with Manifest(csv_path) as rows:
            summary = await onboard(
                client,
                rows,
                journal=csv_path.with_suffix(".journal.db"),
                settings=OnboardSettings(concurrency=4),
                progress=Progress(),
                summary=OnboardingSummary(total=count_rows(csv_path)),  # known total for progress
            )
    print(summary.format())
    return 0 if summary.failed == 0 and summary.invalid == 0 else 1


def sample_csv() -> Path:
    """A sample CSV of 12 people (the SDK's sample drawings) in ``onboarding/``."""
    folder = Path("onboarding")
    folder.mkdir(exist_ok=True)
    return write_sample_manifest(folder, rows=12)


if __name__ == "__main__":
    sys.exit(anyio.run(main, Path(sys.argv[1]) if len(sys.argv) > 1 else sample_csv()))
