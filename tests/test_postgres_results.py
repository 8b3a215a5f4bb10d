"""Results out of a shared PostgreSQL journal, as out of a SQLite file."""

from __future__ import annotations

import csv
from pathlib import Path

import asyncpg

from avaturn_async import AvaturnClient
from avaturn_async.batch import (
    Manifest,
    onboard,
    read_results,
    write_results,
    write_sample_manifest,
)
from avaturn_async.postgres import PostgresJournal, migrate, schema_version
from avaturn_async.postgres._journal_sql import MIGRATIONS
from avaturn_async.testing import AvaturnEmulator


async def test_results_of_a_postgres_journal_keep_the_manifests_own_columns(
    tmp_path: Path, postgres_dsn: str
) -> None:
    manifest = write_sample_manifest(tmp_path, 3)
    with manifest.open("a", encoding="utf-8") as handle:
        handle.write("sample-00001,photos/frontal.jpg,photos/side_1.jpg,photos/side_2.jpg,"
                     "male,false,C9\n")
    async with AvaturnEmulator(processing_delay=0.01) as emu:
        async with AvaturnClient(emu.api_key, base_url=emu.base_url) as client:
            with Manifest(manifest) as rows:
                await onboard(client, rows, journal=postgres_dsn)
    results = [result async for result in read_results(postgres_dsn)]
    assert [(r.key, r.state, r.extra.get("customer_id")) for r in results] == [
        ("sample-00001", "ready", "C000001"),
        ("sample-00002", "ready", "C000002"),
        ("sample-00003", "ready", "C000003"),
        ("sample-00001", "invalid", "C9"),
    ]
    assert set(emu.users) == {r.user_id for r in results[:3]}
    assert await write_results(postgres_dsn, tmp_path / "out.csv") == 4
    with (tmp_path / "out.csv").open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle))
    assert header[-1] == "customer_id"


async def test_a_version_1_postgres_journal_is_migrated_and_keeps_its_rows(
    postgres_dsn: str,
) -> None:
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await migrate(conn, "journal", MIGRATIONS[:1])
        await conn.execute(
            "INSERT INTO avaturn_journal_rows (key, line, run_id, state, user_id, avatar_id)"
            " VALUES ('old', 2, 1, 'ready', 'U1', 'A1')"
        )
    finally:
        await conn.close()
    store = await PostgresJournal.open(postgres_dsn)
    await store.aclose()
    results = [result async for result in read_results(postgres_dsn)]
    assert [(r.key, r.state, r.user_id, r.extra) for r in results] == [("old", "ready", "U1", {})]
    conn = await asyncpg.connect(postgres_dsn)
    try:
        assert await schema_version(conn, "journal") == len(MIGRATIONS) == 2
    finally:
        await conn.close()
