"""PostgreSQL configuration faults and odd input, as an operator meets them: a DSN of
another scheme, a role that may not create tables, a search_path naming no schema,
``--status`` on a database without a journal, a NUL in a manifest key, and what a
worker prints while the database restarts."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.to_thread
import asyncpg
import pytest

from avaturn_async import AvaturnClient, ConfigurationError
from avaturn_async._cli import main
from avaturn_async.batch import (
    JournalError,
    Manifest,
    OnboardSettings,
    onboard,
    write_sample_manifest,
)
from avaturn_async.postgres import PostgresJournal, check_dsn, redact_dsn
from avaturn_async.testing import AvaturnEmulator
from avaturn_async.webhooks import WebhookInbox
from tests.pg_server import PostgresServer

ROOT = Path(__file__).resolve().parents[1]


# -- a DSN with another scheme ----------------------------------------------------------


@pytest.mark.parametrize(
    "dsn",
    ["mysql://app:s3cret@db/x", "postgresql+asyncpg://app:s3cret@db/x", "postgresq://a:s3cret@db"],
)
def test_a_url_of_another_scheme_is_a_configuration_error_without_the_password(dsn: str) -> None:
    with pytest.raises(ConfigurationError, match="unsupported URL scheme") as caught:
        check_dsn(dsn)
    assert "s3cret" not in str(caught.value)


def test_a_driver_qualified_scheme_is_told_to_write_postgresql() -> None:
    with pytest.raises(ConfigurationError, match="write postgresql://"):
        check_dsn("postgresql+asyncpg://app@db/x")


def test_any_url_is_printed_without_its_password() -> None:
    assert redact_dsn("mysql://app:s3cret@db/x") == "mysql://app:***@db/x"
    assert redact_dsn("/var/lib/journal.db") == "/var/lib/journal.db"


@pytest.mark.parametrize(
    "argv",
    [
        ["onboard", "MANIFEST", "--journal", "mysql://app:s3cret@db/x"],
        ["onboard", "--status", "--journal", "postgresql+asyncpg://app:s3cret@db/x"],
        ["inbox", "--db", "mysql://app:s3cret@db/x"],
    ],
)
def test_the_cli_refuses_a_url_of_another_scheme_with_one_line_and_exit_2(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = str(write_sample_manifest(tmp_path, 1))
    code = main([manifest if arg == "MANIFEST" else arg for arg in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert "unsupported URL scheme" in err
    assert "s3cret" not in err
    assert len(err.strip().splitlines()) == 1
    # No file of that name: only the sample manifest and its photos are there.
    assert {path.name for path in tmp_path.iterdir()} <= {"manifest.csv", "photos"}


def test_a_url_given_as_an_inbox_file_is_refused_without_its_password() -> None:
    with pytest.raises(ConfigurationError, match="not a SQLite file") as caught:
        WebhookInbox("postgresql://app:s3cret@db/x")
    assert "s3cret" not in str(caught.value)


# -- schema errors ----------------------------------------------------------------------


@pytest.fixture
async def limited_role(postgres_dsn: str) -> AsyncIterator[str]:
    """A role that may connect to ``postgres_dsn``'s database but create nothing in it
    (PostgreSQL 15 no longer lets every role create in ``public``); its name."""
    role = f"r_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_dsn)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN")
        await admin.execute(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC, {role}")
        yield role
        await admin.execute(f"DROP OWNED BY {role}")
        await admin.execute(f"DROP ROLE {role}")
    finally:
        await admin.close()


def as_role(dsn: str, role: str) -> str:
    scheme, rest = dsn.split("://", 1)
    return f"{scheme}://{role}@{rest.split('@', 1)[1]}"


async def test_a_role_that_may_not_create_tables_is_told_what_to_grant(
    postgres_dsn: str, limited_role: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await PostgresJournal.open(as_role(postgres_dsn, limited_role))
    assert f"GRANT CREATE ON SCHEMA public TO {limited_role}" in str(caught.value)


async def test_a_search_path_naming_no_schema_is_told_what_to_create(postgres_dsn: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await PostgresJournal.open(f"{postgres_dsn}?search_path=batch_7")
    assert "CREATE SCHEMA batch_7" in str(caught.value)


async def test_a_role_that_may_not_create_tables_uses_tables_an_owner_installed(
    postgres_dsn: str, limited_role: str
) -> None:
    owner = await PostgresJournal.open(postgres_dsn)
    await owner.aclose()
    admin = await asyncpg.connect(postgres_dsn)
    try:
        await admin.execute(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "
            f"{limited_role}; GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "
            f"{limited_role}"
        )
    finally:
        await admin.close()
    journal = await PostgresJournal.open(as_role(postgres_dsn, limited_role))
    try:
        run_id = await journal.begin_run("people.csv")
    finally:
        await journal.aclose()
    assert run_id >= 1


async def test_the_cli_reports_a_schema_error_in_one_line_with_exit_2(
    tmp_path: Path, postgres_dsn: str, limited_role: str
) -> None:
    manifest = str(write_sample_manifest(tmp_path, 1))
    argv = [sys.executable, "-m", "avaturn_async", "onboard", manifest, "--journal",
            as_role(postgres_dsn, limited_role)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AVATURN_API_KEY": "unused"}
    done = await anyio.run_process(argv, env=env, check=False)
    err = done.stderr.decode()
    assert done.returncode == 2
    assert err.startswith("avaturn onboard: error:")
    assert "GRANT CREATE" in err
    assert len(err.strip().splitlines()) == 1


# -- --status never writes --------------------------------------------------------------


async def avaturn_tables(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE tablename LIKE 'avaturn%'")
    finally:
        await conn.close()
    return [row["tablename"] for row in rows]


async def test_status_of_a_database_without_a_journal_exits_2_and_writes_nothing(
    postgres_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await anyio.to_thread.run_sync(main, ["onboard", "--status", "--journal", postgres_dsn])
    err = capsys.readouterr().err
    assert code == 2
    assert "no journal at" in err
    assert await avaturn_tables(postgres_dsn) == []


async def test_a_journal_opened_to_read_refuses_a_database_without_one(postgres_dsn: str) -> None:
    with pytest.raises(JournalError, match="no journal"):
        await PostgresJournal.open(postgres_dsn, create=False)
    assert await avaturn_tables(postgres_dsn) == []


# -- a NUL character in a manifest key --------------------------------------------------


async def test_a_nul_in_a_manifest_key_fails_that_row_alone_on_a_postgres_journal(
    tmp_path: Path, postgres_dsn: str, client: AvaturnClient
) -> None:
    manifest = write_sample_manifest(tmp_path, 3)
    manifest.write_text(manifest.read_text().replace("sample-00002", "sample-\x0000002"))
    with Manifest(manifest) as rows:
        summary = await onboard(
            client, rows, journal=postgres_dsn, settings=OnboardSettings(poll_interval=0.01)
        )
    journal = await PostgresJournal.open(postgres_dsn, create=False)
    try:
        failures = await journal.failures()
    finally:
        await journal.aclose()
    assert (summary.ready, summary.invalid) == (2, 1)
    assert [(f.line, f.kind) for f in failures] == [(3, "rejected")]
    assert "NUL character" in failures[0].reason


# -- an outage, as a worker prints it ---------------------------------------------------


@pytest.mark.slow
async def test_a_worker_prints_one_warning_line_for_a_database_restart(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    dsn = postgres_server.dsn
    manifest = write_sample_manifest(tmp_path, 30)
    async with AvaturnEmulator(processing_delay=0.4, response_delay=0.02) as emu:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "AVATURN_BASE_URL": emu.base_url,
               "AVATURN_API_KEY": emu.api_key}
        argv = [sys.executable, "-m", "avaturn_async", "onboard", str(manifest), "--journal",
                dsn, "--poll-interval", "0.05", "--concurrency", "2", "--progress", "none"]
        async with await anyio.open_process(argv, env=env) as worker:
            with anyio.fail_after(30):
                while len(emu.avatars) < 4:  # noqa: ASYNC110 - the emulator has no event for it
                    await anyio.sleep(0.02)
            await anyio.to_thread.run_sync(lambda: postgres_server.restart(down_for=2.0))
            with anyio.fail_after(90):
                code = await worker.wait()
            assert worker.stderr is not None
            err = b"".join([chunk async for chunk in worker.stderr]).decode()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 0, err
    assert len(lines) == 1, err  # no traceback, no line per connection
    assert lines[0].startswith(f"PostgreSQL at {dsn} is unavailable")
