"""``--metrics-port`` of the commands, as real subprocesses scraped over real HTTP:
``avaturn inbox`` as a standing exporter (SQLite, and PostgreSQL stopped and restarted
under it) and ``avaturn onboard`` while its run lasts."""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import anyio
import pytest
from anyio.abc import Process

from avaturn_async.batch import write_sample_manifest as write_manifest
from avaturn_async.postgres import PostgresInbox
from avaturn_async.testing import AvaturnEmulator
from avaturn_async.webhooks import WebhookInbox
from tests.inbox_support import deliver
from tests.pg_server import PostgresServer

ROOT = Path(__file__).resolve().parents[1]
BASE_URL = re.compile(rb"(http://127\.0\.0\.1:\d+)/metrics")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "avaturn_async", *args]


def env_for(emu: AvaturnEmulator | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if emu is not None:
        env.update(AVATURN_BASE_URL=emu.base_url, AVATURN_API_KEY=emu.api_key)
    return env


async def base_url_of(process: Process) -> str:
    """Read the process's output until it names its metrics URL."""
    assert process.stdout is not None
    seen = b""
    with anyio.fail_after(30):
        while (found := BASE_URL.search(seen)) is None:
            seen += await process.stdout.receive()
    return found.group(1).decode()


@asynccontextmanager
async def running(*args: str, env: dict[str, str]) -> AsyncIterator[tuple[Process, str]]:
    process = await anyio.open_process(cli(*args), env=env)
    async with process:
        try:
            yield process, await base_url_of(process)
        finally:
            if process.returncode is None:
                process.kill()


async def get(url: str) -> tuple[int, str]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as answer:
        return answer.status, await answer.text()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the Prometheus sample ``name`` whose labels include ``labels``."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} in:\n{text}")


async def wait_for_status(url: str, status: int, *, deadline: float) -> None:
    with anyio.fail_after(deadline):
        while (await get(url))[0] != status:  # noqa: ASYNC110 (another process's state)
            await anyio.sleep(0.2)


# ---------------------------------------------------------------- avaturn inbox


async def test_the_inbox_exporter_serves_gauges_and_probes_until_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "inbox.db"
    with WebhookInbox(db) as inbox:
        await deliver(inbox, msg_id="one")
        await deliver(inbox, msg_id="two")
    args = ("inbox", "--db", str(db), "--metrics-port", "0", "--metrics-host", "127.0.0.1")
    async with running(*args, env=env_for()) as (process, base):
        status, text = await get(f"{base}/metrics")
        assert status == 200
        assert sample(text, "avaturn_inbox_events", avaturn_inbox_status="pending") == 2
        assert sample(text, "avaturn_inbox_events", avaturn_inbox_status="dead") == 0
        assert sample(text, "avaturn_inbox_oldest_pending_age_seconds") >= 0
        assert (await get(f"{base}/healthz"))[0] == 200
        assert (await get(f"{base}/readyz"))[0] == 200
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(20):
            assert await process.wait() == 0


async def test_the_exporter_refuses_a_file_that_is_not_an_inbox(tmp_path: Path) -> None:
    args = ("inbox", "--db", str(tmp_path / "missing.db"), "--metrics-port", "0")
    done = await anyio.run_process(cli(*args), env=env_for(), check=False)
    assert done.returncode == 2


@pytest.mark.slow
async def test_readyz_follows_postgres_going_away_and_coming_back(
    postgres_server: PostgresServer,
) -> None:
    async with PostgresInbox(postgres_server.dsn) as inbox:
        await deliver(inbox, msg_id="pg")
    args = ("inbox", "--db", postgres_server.dsn, "--metrics-port", "0",
            "--metrics-host", "127.0.0.1")  # fmt: skip
    async with running(*args, env=env_for()) as (process, base):
        await wait_for_status(f"{base}/readyz", 200, deadline=10)
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: anyio.to_thread.run_sync(
                lambda: postgres_server.restart(down_for=8)))  # fmt: skip
            await wait_for_status(f"{base}/readyz", 503, deadline=6)
            assert (await get(f"{base}/healthz"))[0] == 200  # liveness never asks the database
        await wait_for_status(f"{base}/readyz", 200, deadline=10)
        _, text = await get(f"{base}/metrics")
        assert sample(text, "avaturn_inbox_events", avaturn_inbox_status="pending") == 1
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(20):
            assert await process.wait() == 0


# ---------------------------------------------------------------- avaturn onboard


@pytest.mark.slow
async def test_onboard_serves_its_metrics_while_the_run_lasts(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, 8)
    async with AvaturnEmulator(processing_delay=1.0, response_delay=0.05) as emu:
        args = ("onboard", str(manifest), "--journal", str(tmp_path / "j.db"),
                "--poll-interval", "0.2", "--concurrency", "2", "--progress", "none",
                "--metrics-port", "0", "--metrics-host", "127.0.0.1")  # fmt: skip
        async with running(*args, env=env_for(emu)) as (process, base):
            await wait_for_status(f"{base}/readyz", 200, deadline=10)
            text = await scrape_once_rows_are_registered(f"{base}/metrics")
            assert (await get(f"{base}/healthz"))[0] == 200
            with anyio.fail_after(60):
                assert await process.wait() == 0
    assert sample(text, "http_client_request_duration_seconds_count",
                  avaturn_route="users.create", http_response_status_code="200") >= 1  # fmt: skip
    assert rows_of(text) == 8  # every row of the journal, each in one state


def rows_of(text: str) -> float:
    lines = text.splitlines()
    return sum(float(x.rsplit(" ", 1)[1]) for x in lines if x.startswith("avaturn_onboard_rows{"))


async def scrape_once_rows_are_registered(url: str) -> str:
    """Scrape until the run has registered its rows and sent its first requests."""
    with anyio.fail_after(30):
        while True:
            status, text = await get(url)
            assert status == 200
            if rows_of(text) == 8 and "http_client_request_duration_seconds_count" in text:
                return text
            await anyio.sleep(0.1)
