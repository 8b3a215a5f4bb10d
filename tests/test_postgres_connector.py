"""One connection budget per process: ``PostgresConnector`` serves all five backends.

Connections are counted in ``pg_stat_activity`` by the ``application_name`` the
SDK sets, while the backends are kept busy (``tests/pg_budget_worker.py``).
"""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from avaturn_async.postgres import (
    APPLICATION_NAME,
    DEFAULT_POOL_SIZE,
    PostgresConnector,
    PostgresEventHub,
    PostgresGate,
    PostgresInbox,
    migrate,
)
from avaturn_async.webhooks import AvatarReady
from tests.pg_proxy import PgProxy
from tests.pg_server import PostgresServer

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "pg_budget_worker.py"


class Sampler:
    """Counts the connections of each application name, every 20 ms, keeping the peaks."""

    def __init__(self, dsn: str, prefix: str) -> None:
        self.dsn, self.prefix = dsn, prefix
        self.peak: Counter[str] = Counter()
        self.peak_total = 0

    async def run(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while True:
                rows = await conn.fetch(
                    "SELECT application_name AS name, count(*) AS n FROM pg_stat_activity"
                    " WHERE application_name LIKE $1 || '%' GROUP BY application_name",
                    self.prefix,
                )
                for row in rows:
                    self.peak[row["name"]] = max(self.peak[row["name"]], row["n"])
                self.peak_total = max(self.peak_total, sum(row["n"] for row in rows))
                await anyio.sleep(0.02)
        finally:
            await conn.close()


async def start_worker(dsn: str, name: str, seconds: float) -> Process:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = await anyio.open_process(
        [sys.executable, str(WORKER), dsn, name, str(seconds)], env=env
    )
    assert process.stdout is not None
    with anyio.fail_after(60):
        line = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 100)
    assert line == b"ready", line
    return process


async def finish(process: Process) -> bytes:
    with anyio.fail_after(120):
        code = await process.wait()
    assert process.stdout is not None
    assert process.stderr is not None
    out = b"".join([chunk async for chunk in process.stdout])
    err = b"".join([chunk async for chunk in process.stderr])
    await process.aclose()
    assert code == 0, err.decode()
    return out


@pytest.mark.slow
async def test_a_process_using_all_five_backends_holds_at_most_pool_size_plus_one(
    postgres_dsn: str,
) -> None:
    sampler = Sampler(postgres_dsn, "avaturn-one")
    async with anyio.create_task_group() as group:
        group.start_soon(sampler.run)
        worker = await start_worker(postgres_dsn, "avaturn-one", 4)
        out = await finish(worker)
        group.cancel_scope.cancel()
    assert out.startswith(b"done ")
    # Never above the budget, and the load did use the pool to (about) the full.
    assert DEFAULT_POOL_SIZE <= sampler.peak["avaturn-one"] <= DEFAULT_POOL_SIZE + 1


@pytest.fixture
def server_of_100() -> Iterator[PostgresServer]:
    """A server with PostgreSQL's default max_connections."""
    # No server is a failure, not a skip: PostgreSQL is on every machine of ours.
    server = PostgresServer(max_connections=100).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
async def test_ten_processes_with_the_default_pool_fit_in_100_connections_with_room(
    server_of_100: PostgresServer,
) -> None:
    dsn = server_of_100.dsn
    sampler = Sampler(dsn, "avaturn-ten-")
    async with anyio.create_task_group() as group:
        group.start_soon(sampler.run)
        workers = [await start_worker(dsn, f"avaturn-ten-{n}", 6) for n in range(10)]
        outputs = [await finish(worker) for worker in workers]
        group.cancel_scope.cancel()
    assert all(out.startswith(b"done ") for out in outputs)  # no slot refused anyone
    assert max(sampler.peak.values()) <= DEFAULT_POOL_SIZE + 1
    assert sampler.peak_total <= 10 * (DEFAULT_POOL_SIZE + 1) <= 100 - 30


async def test_the_sdk_names_its_connections_in_pg_stat_activity(postgres_dsn: str) -> None:
    async with PostgresConnector(postgres_dsn) as connector:
        name = await connector.run(
            "reading the name", lambda conn: conn.fetchval("SHOW application_name")
        )
    assert name == APPLICATION_NAME == "avaturn_async"


async def test_an_application_name_in_the_dsn_wins(postgres_dsn: str) -> None:
    async with PostgresConnector(f"{postgres_dsn}?application_name=billing") as connector:
        name = await connector.run(
            "reading the name", lambda conn: conn.fetchval("SHOW application_name")
        )
    assert name == "billing"


async def test_one_listen_connection_serves_the_hub_the_gate_and_the_inbox_workers(
    postgres_dsn: str,
) -> None:
    async with (
        PostgresConnector(postgres_dsn, application_name="avaturn-listen") as connector,
        PostgresEventHub(connector) as hub,
        PostgresGate(connector) as gate,
        PostgresInbox(connector) as inbox,
    ):
        await inbox.store.wait_for_work(0.01)
        channels = connector.listen_channels
        admin = await asyncpg.connect(postgres_dsn)
        try:
            listening = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
                " AND query LIKE 'LISTEN%'", "avaturn-listen",
            )
        finally:
            await admin.close()
        assert (hub.postgres.healthy, gate.remaining()) == (True, 0.0)
    assert channels == {"avaturn_hub", "avaturn_gate", "avaturn_webhook_inbox"}
    assert (connector.listen_connects, listening) == (1, 1)


async def test_migrations_run_once_per_component_on_a_shared_connector(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    original = migrate

    async def counting(conn: Any, component: str, steps: Any) -> int:
        calls.append(component)
        return await original(conn, component, steps)

    monkeypatch.setattr("avaturn_async.postgres._connector.migrate", counting)
    async with PostgresConnector(postgres_dsn) as connector:
        for _ in range(3):
            async with PostgresInbox(connector):
                pass
    assert calls == ["inbox"]


async def test_a_backend_given_a_dsn_opens_and_closes_a_connector_of_its_own(
    postgres_dsn: str,
) -> None:
    async with PostgresInbox(postgres_dsn) as inbox:
        connector = inbox.postgres_store.connector
        assert await inbox.counts() == {"pending": 0, "done": 0, "dead": 0}
    with pytest.raises(Exception, match="closed"):
        await connector.run("a query", lambda conn: conn.fetchval("SELECT 1"))


async def test_a_shared_connector_outlives_the_backends_that_use_it(postgres_dsn: str) -> None:
    async with PostgresConnector(postgres_dsn) as connector:
        async with PostgresInbox(connector):
            pass
        answer = await connector.run("a query", lambda conn: conn.fetchval("SELECT 1"))
    assert answer == 1


# -- behind a pooler that cannot carry LISTEN --------------------------------------------


@pytest.fixture
async def deaf_proxy(postgres_dsn: str) -> AsyncIterator[PgProxy]:
    """A proxy that, like PgBouncer in transaction mode, delivers no notification."""
    proxy = await PgProxy(postgres_dsn).start()
    proxy.drop_notifications = True
    yield proxy
    await proxy.aclose()


async def test_a_listener_that_receives_no_notification_says_so_and_polls(
    postgres_dsn: str, deaf_proxy: PgProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="avaturn_async.postgres")
    connector = PostgresConnector(deaf_proxy.dsn())
    connector.probe_timeout = 0.5
    async with (
        connector,
        PostgresEventHub(connector) as behind_pooler,
        PostgresEventHub(postgres_dsn) as sender,
    ):
        with anyio.fail_after(10):
            while connector.notifications is None:  # noqa: ASYNC110
                await anyio.sleep(0.02)
        await sender.publish(AvatarReady(avatar_id="A1", status="ready"))
        with anyio.fail_after(10):
            got = await behind_pooler.wait(("avatar", "A1"))
        healthy = behind_pooler.postgres.healthy
    assert got == AvatarReady(avatar_id="A1", status="ready")
    assert healthy is False
    assert deaf_proxy.dropped_notifications >= 1
    warnings = [r.getMessage() for r in caplog.records if "PgBouncer" in r.getMessage()]
    assert len(warnings) == 1


async def test_the_cli_runs_a_worker_on_one_connector(
    tmp_path: Path, postgres_dsn: str
) -> None:
    from avaturn_async.batch import write_sample_manifest
    from avaturn_async.testing import AvaturnEmulator

    manifest = write_sample_manifest(tmp_path, 12)
    sampler = Sampler(postgres_dsn, APPLICATION_NAME)
    async with AvaturnEmulator(processing_delay=0.05) as emu:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "AVATURN_BASE_URL": emu.base_url,
               "AVATURN_API_KEY": emu.api_key}
        argv = [sys.executable, "-m", "avaturn_async", "onboard", str(manifest), "--journal",
                postgres_dsn, "--poll-interval", "0.02", "--progress", "none"]
        async with anyio.create_task_group() as group:
            group.start_soon(sampler.run)
            done = await anyio.run_process(argv, env=env, check=False)
            group.cancel_scope.cancel()
    assert done.returncode == 0, done.stderr.decode()
    # Before: a pool of 10 for the journal, one of 2 for the gate, and its listener.
    assert 2 <= sampler.peak[APPLICATION_NAME] <= DEFAULT_POOL_SIZE + 1
