"""The PostgreSQL building blocks: DSNs, connecting with clear errors, migrations, restarts."""

from __future__ import annotations

import subprocess
import sys
import threading

import anyio
import asyncpg
import pytest

from avaturn_async import ConfigurationError
from avaturn_async.postgres import (
    SchemaVersionError,
    StorageUnavailableError,
    check_dsn,
    connect,
    create_pool,
    is_postgres_dsn,
    is_transient,
    migrate,
    redact_dsn,
    retry_transient,
    schema_version,
)
from tests.pg_server import PostgresServer, free_port

STEPS = [
    "CREATE TABLE demo_items (id bigserial PRIMARY KEY, name text NOT NULL)",
    "ALTER TABLE demo_items ADD COLUMN added_at timestamptz NOT NULL DEFAULT now()",
]


def test_postgres_dsn_is_told_from_a_path() -> None:
    assert is_postgres_dsn("postgresql://u@h/db")
    assert is_postgres_dsn("postgres://u@h/db")
    assert not is_postgres_dsn("journal.db")


def test_redact_dsn_hides_the_password() -> None:
    shown = redact_dsn("postgresql://app:s3cret@db:5432/x?password=other")
    assert "s3cret" not in shown
    assert "other" not in shown
    assert shown.startswith("postgresql://app:***@db:5432/x")


def test_check_dsn_refuses_a_path_with_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="not a PostgreSQL DSN"):
        check_dsn("/var/lib/inbox.db")


def test_check_dsn_refuses_a_bad_port() -> None:
    with pytest.raises(ConfigurationError, match="bad port"):
        check_dsn("postgresql://u:pw@localhost:notaport/db")


async def test_unreachable_server_is_storage_unavailable_without_the_password() -> None:
    dsn = f"postgresql://app:s3cret@127.0.0.1:{free_port()}/db"
    with pytest.raises(StorageUnavailableError) as caught:
        await create_pool(dsn, connect_timeout=2)
    assert "s3cret" not in str(caught.value)


async def test_unknown_database_is_a_configuration_error(postgres_server_dsn: str) -> None:
    base = postgres_server_dsn.rsplit("/", 1)[0]
    with pytest.raises(ConfigurationError, match="does not exist"):
        await connect(f"{base}/no_such_database_here")


async def test_migrate_installs_every_step_once(postgres_dsn: str) -> None:
    conn = await connect(postgres_dsn)
    try:
        assert await migrate(conn, "demo", STEPS) == 2
        assert await migrate(conn, "demo", STEPS) == 2
        assert await schema_version(conn, "demo") == 2
        await conn.execute("INSERT INTO demo_items (name) VALUES ('a')")
    finally:
        await conn.close()


async def test_migrate_upgrades_from_an_older_version(postgres_dsn: str) -> None:
    conn = await connect(postgres_dsn)
    try:
        await migrate(conn, "demo", STEPS[:1])
        await migrate(conn, "demo", STEPS)
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name='demo_items'"
        )
        assert {r["column_name"] for r in columns} == {"id", "name", "added_at"}
    finally:
        await conn.close()


async def test_concurrent_migrations_do_not_clash(postgres_dsn: str) -> None:
    pool = await create_pool(postgres_dsn, min_size=5, max_size=5)
    versions: list[int] = []

    async def one() -> None:
        async with pool.acquire() as conn:
            versions.append(await migrate(conn, "demo", STEPS))

    try:
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(one)
    finally:
        await pool.close()
    assert versions == [2] * 5


async def test_a_newer_schema_is_refused(postgres_dsn: str) -> None:
    conn = await connect(postgres_dsn)
    try:
        await migrate(conn, "demo", STEPS)
        with pytest.raises(SchemaVersionError, match="upgrade avaturn_async"):
            await migrate(conn, "demo", STEPS[:1])
    finally:
        await conn.close()


def test_lost_connection_errors_are_transient() -> None:
    wrapped = asyncpg.InterfaceError("the underlying connection is closed")
    assert is_transient(wrapped)
    assert is_transient(ConnectionRefusedError())
    assert is_transient(asyncpg.InternalClientError("cannot switch to state 15"))
    assert not is_transient(asyncpg.UniqueViolationError("dup"))


async def test_retry_transient_rides_out_a_server_restart(
    postgres_server: PostgresServer,
) -> None:
    pool = await create_pool(postgres_server.dsn, min_size=1, max_size=2)
    answers: list[int] = []

    async def query() -> int:
        async with pool.acquire() as conn:
            return int(await conn.fetchval("SELECT 1"))

    try:
        restart = threading.Thread(target=postgres_server.restart)
        restart.start()
        for _ in range(20):
            answers.append(await retry_transient(query, deadline=30))
            await anyio.sleep(0.05)
        await anyio.to_thread.run_sync(restart.join)
        answers.append(await retry_transient(query, deadline=30))
    finally:
        await pool.close()
    assert answers == [1] * 21


def test_importing_the_postgres_package_does_not_import_asyncpg() -> None:
    code = "import sys, avaturn_async.postgres; print('asyncpg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert out.stdout.decode().strip() == "False"
