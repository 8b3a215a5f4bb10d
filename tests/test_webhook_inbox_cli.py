"""``avaturn inbox``: what is specific to each database kind (missing or foreign databases,
unreachable servers, usage errors). Listing, JSON, replay and purge run against every store
in ``tests/contract/test_inbox_cli_contract.py``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import asyncpg
import pytest

from avaturn_async._cli import main
from tests.pg_server import free_port


def test_cli_missing_database_exits_2_without_creating_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "absent.db"
    code = main(["inbox", "--db", str(db)])
    assert (code, db.exists()) == (2, False)
    assert "no such inbox database" in capsys.readouterr().err


def test_cli_database_without_an_inbox_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as other:
        other.execute("CREATE TABLE unrelated (x)")
    assert main(["inbox", "--db", str(db)]) == 2
    assert "no webhook inbox" in capsys.readouterr().err
    with sqlite3.connect(db) as other:  # left untouched: not switched to WAL
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_cli_replay_dead_and_replay_ids_together_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["inbox", "--db", str(tmp_path / "x.db"), "--replay-dead", "--replay", "1"])
    assert exit_info.value.code == 2


def test_cli_postgres_database_without_an_inbox_exits_2_and_installs_nothing(
    capsys: pytest.CaptureFixture[str], postgres_dsn: str
) -> None:
    assert main(["inbox", "--db", postgres_dsn]) == 2
    assert "holds no webhook inbox" in capsys.readouterr().err

    async def tables() -> list[str]:
        conn = await asyncpg.connect(postgres_dsn)
        try:
            rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        finally:
            await conn.close()
        return [row["tablename"] for row in rows]

    assert anyio.run(tables) == []


def test_cli_unreachable_postgres_exits_2_without_showing_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    dsn = f"postgresql://app:s3cret@127.0.0.1:{free_port()}/inbox"
    assert main(["inbox", "--db", dsn]) == 2
    err = capsys.readouterr().err
    assert "cannot be reached" in err
    assert "s3cret" not in err
