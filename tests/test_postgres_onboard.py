"""``avaturn onboard --journal postgresql://``: many workers share one batch.

The workers are real subprocesses (``python -m avaturn_async onboard``) talking
over loopback to an emulator in the test's event loop and to a real PostgreSQL.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import asyncpg
import pytest

from avaturn_async._cli import main
from avaturn_async.batch import RowState, write_sample_manifest
from avaturn_async.postgres import PostgresJournal
from avaturn_async.testing import AvaturnEmulator
from tests.pg_server import free_port

ROOT = Path(__file__).resolve().parents[1]
ROWS = 30


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "avaturn_async", *args]


def env_for(emu: AvaturnEmulator) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "AVATURN_BASE_URL": emu.base_url,
        "AVATURN_API_KEY": emu.api_key,
    }


@pytest.fixture
async def slow_emulator() -> AsyncIterator[AvaturnEmulator]:
    """Slow enough that every worker holds rows in every state when one is killed."""
    async with AvaturnEmulator(processing_delay=0.3, response_delay=0.05) as emu:
        yield emu


async def worker_holding_rows_mid_way(dsn: str, at_least: int) -> int | None:
    """The pid of a worker holding ``at_least`` rows between two remote steps."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(  # type: ignore[no-any-return]
            "SELECT x.pid FROM avaturn_journal_rows r"
            " JOIN avaturn_journal_runs x ON x.id = r.owner"
            " WHERE r.state IN ('user_requested', 'avatar_requested', 'uploading',"
            " 'processing') GROUP BY x.pid HAVING count(*) >= $1 LIMIT 1",
            at_least,
        )
    except asyncpg.UndefinedTableError:  # no worker has created the tables yet
        return None
    finally:
        await conn.close()


async def test_three_workers_one_killed_give_every_row_one_user_and_one_avatar(
    tmp_path: Path, postgres_dsn: str, slow_emulator: AvaturnEmulator
) -> None:
    emu = slow_emulator
    manifest = write_sample_manifest(tmp_path, ROWS)
    args = cli("onboard", str(manifest), "--journal", postgres_dsn, "--lease", "3",
               "--poll-interval", "0.05", "--concurrency", "3", "--progress", "none")
    workers = [await anyio.open_process(args, env=env_for(emu)) for _ in range(3)]
    with anyio.fail_after(30):
        while (pid := await worker_holding_rows_mid_way(postgres_dsn, 2)) is None:  # noqa: ASYNC110
            await anyio.sleep(0.02)
    [victim] = [worker for worker in workers if worker.pid == pid]
    survivors = [worker for worker in workers if worker is not victim]
    victim.kill()  # SIGKILL: its rows stay held until their lease runs out
    await victim.wait()
    outputs = []
    with anyio.fail_after(90):
        for worker in survivors:
            code = await worker.wait()
            assert worker.stdout is not None
            outputs.append((code, (await worker.stdout.receive()).decode()))
    for worker in workers:
        await worker.aclose()
    assert [code for code, _ in outputs] == [0, 0], outputs
    await assert_one_user_and_avatar_per_row_besides_reported_orphans(emu, postgres_dsn)
    assert await rows_taken_over(postgres_dsn) >= 2


async def rows_taken_over(dsn: str) -> int:
    """Rows claimed more than once: the victim's, resumed by a survivor."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(
            "SELECT count(*) FROM avaturn_journal_rows WHERE attempts > 1"
        ))
    finally:
        await conn.close()


async def assert_one_user_and_avatar_per_row_besides_reported_orphans(
    emu: AvaturnEmulator, dsn: str
) -> None:
    with anyio.fail_after(5):
        while emu.stats.in_flight:  # noqa: ASYNC110 - the dead worker's calls finish
            await anyio.sleep(0.01)
    journal = await PostgresJournal.open(dsn)
    try:
        keys = [f"sample-{n:05d}" for n in range(1, ROWS + 1)]
        records = [await journal.record(key) for key in keys]
        orphans = (await journal.status()).possible_orphans
    finally:
        await journal.aclose()
    assert all(r is not None and r.state is RowState.READY for r in records)
    avatars: dict[str, list[str]] = {}
    for avatar in emu.avatars.values():
        avatars.setdefault(avatar.user_id, []).append(avatar.id)
    assert avatars == {r.user_id: [r.avatar_id] for r in records if r is not None}
    assert {a.status for a in emu.avatars.values()} == {"ready"}
    assert 0 <= len(emu.users) - ROWS <= orphans


async def test_status_reports_a_shared_journal(
    tmp_path: Path, postgres_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_sample_manifest(tmp_path, 3)
    async with AvaturnEmulator(processing_delay=0.01) as emu:
        args = cli("onboard", str(manifest), "--journal", postgres_dsn,
                   "--poll-interval", "0.02", "--progress", "none")
        run = await anyio.run_process(args, env=env_for(emu), check=False)
    report = ["onboard", "--status", "--journal", postgres_dsn]
    status = await anyio.to_thread.run_sync(main, report)
    out = capsys.readouterr().out
    assert (run.returncode, status) == (0, 0), run.stderr.decode() + out
    assert "3 rows, 1 run(s)" in out


def test_an_unreachable_journal_server_exits_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_sample_manifest(tmp_path, 1)
    dsn = f"postgresql://app:s3cret@127.0.0.1:{free_port()}/batch"
    code = main(["onboard", str(manifest), "--journal", dsn, "--emulator"])
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot be reached" in err
    assert "s3cret" not in err
    assert "Traceback" not in err


def test_a_malformed_journal_dsn_exits_2_on_status(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["onboard", "--status", "--journal", "postgresql://u@localhost:port/db"])
    assert code == 2
    assert "bad port" in capsys.readouterr().err
