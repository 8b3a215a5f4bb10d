"""Store the point of a batch: your key -> the Avaturn user and avatar, in a table of yours.

Shows: ``read_results`` (one ``ResultRow`` per manifest row, streamed from the journal,
in the reports' vocabulary: ``ready``, ``in_progress``, ``failed``, ``invalid``), the
manifest's own columns kept in ``result.extra`` (here ``customer_id``) to join back
to your data, and ``write_results`` for a CSV a spreadsheet opens. It works the same
for a SQLite journal file and a ``postgresql://`` journal.

Run it against the local emulator (no key, no network)::

    avaturn emulator --port 8080 --processing-delay 0.2 &
    export AVATURN_BASE_URL=http://127.0.0.1:8080 AVATURN_API_KEY=emulator-key
    python examples/onboard_results.py

It onboards a sample of 6 people (``avaturn onboard --write-sample``'s) and loads the
results into the ``avaturn_ids`` table of ``app.db``, an SQLite file standing in for
your database. With a journal of yours: ``python examples/onboard_results.py onboard.db``.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import anyio

from avaturn_async import AvaturnClient
from avaturn_async.batch import (
    Manifest,
    onboard,
    read_results,
    write_results,
    write_sample_manifest,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS avaturn_ids (
    customer_id TEXT PRIMARY KEY,
    avaturn_user_id TEXT NOT NULL,
    avatar_id TEXT NOT NULL,
    onboarded_at TEXT NOT NULL
)
"""


async def load_into_table(journal: str, database: Path) -> tuple[int, int]:
    """Upsert every ready row into ``avaturn_ids``; returns (loaded, not ready)."""
    loaded = not_ready = 0
    with sqlite3.connect(database) as db:
        db.execute(SCHEMA)
        async for result in read_results(journal):  # streamed: any number of rows
            if result.state != "ready" or result.user_id is None or result.avatar_id is None:
                not_ready += 1  # failed, invalid or in progress: error_kind and error say why
                continue
            db.execute(
                "INSERT INTO avaturn_ids VALUES (?, ?, ?, ?) ON CONFLICT (customer_id)"
                " DO UPDATE SET avaturn_user_id = excluded.avaturn_user_id,"
                " avatar_id = excluded.avatar_id, onboarded_at = excluded.onboarded_at",
                (
                    result.extra.get("customer_id", result.key),
                    result.user_id,
                    result.avatar_id,
                    result.updated_at.isoformat() if result.updated_at else "",
                ),
            )
            loaded += 1
    return loaded, not_ready


async def main() -> None:
    journal = sys.argv[1] if len(sys.argv) > 1 else "onboard.db"
    if len(sys.argv) == 1:
        manifest = write_sample_manifest("sample", 6, name="people.csv")
        async with AvaturnClient() as client:
            with Manifest(manifest) as rows:
                await onboard(client, rows, journal=journal)
    loaded, not_ready = await load_into_table(journal, Path("app.db"))
    print(f"avaturn_ids: {loaded} rows loaded, {not_ready} not ready")
    written = await write_results(journal, "results.csv")  # or .jsonl; "-" for stdout
    print(f"results.csv: {written} rows")


if __name__ == "__main__":
    anyio.run(main)
