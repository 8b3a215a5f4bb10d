"""Every script in ``examples/`` runs as its docstring says, against the emulator.

Each example is started as a subprocess with ``AVATURN_BASE_URL`` and
``AVATURN_API_KEY`` pointing at an emulator served by the test, in a temporary
working folder, and must finish within a deadline.
"""

from __future__ import annotations

import ast
import os
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import anyio
import pytest

from avaturn_async.testing import DEFAULT_WEBHOOK_SECRET, AvaturnEmulator

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEADLINE = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def webhook_port() -> int:
    return free_port()


@pytest.fixture
async def emu(webhook_port: int) -> AsyncIterator[AvaturnEmulator]:
    """An emulator posting signed webhooks to where the webhook examples listen."""
    async with AvaturnEmulator(
        processing_delay=0.05,
        render_delay=0.05,
        export_delay=0.05,
        webhook_url=f"http://127.0.0.1:{webhook_port}/webhooks/avaturn",
        webhook_retry_delay=0.2,
        webhook_max_attempts=6,
    ) as emulator:
        yield emulator


async def run_example(
    name: str,
    emu: AvaturnEmulator,
    cwd: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run ``examples/<name>`` and return its stdout; fail with its output if it fails."""
    environment = {
        **os.environ,
        "AVATURN_BASE_URL": emu.base_url,
        "AVATURN_API_KEY": emu.api_key,
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    with anyio.fail_after(DEADLINE):
        done = await anyio.run_process(
            [sys.executable, str(EXAMPLES / name), *args], env=environment, cwd=cwd, check=False
        )
    output = done.stdout.decode()
    assert done.returncode == 0, output + done.stderr.decode()
    return output


def test_there_are_at_least_six_examples_each_saying_what_it_shows_and_how_to_run_it() -> None:
    scripts = sorted(EXAMPLES.glob("*.py"))
    assert len(scripts) >= 6
    for script in scripts:
        docstring = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
        assert docstring is not None, script
        assert "Shows:" in docstring, script
        assert "Run" in docstring, script


async def test_create_avatar_example_waits_for_a_ready_avatar(
    emu: AvaturnEmulator, tmp_path: Path
) -> None:
    output = await run_example("create_avatar.py", emu, tmp_path)
    [avatar] = emu.avatars.values()
    assert f"avatar {avatar.id} is ready" in output


async def test_customize_render_export_example_downloads_the_render_and_the_model(
    emu: AvaturnEmulator, tmp_path: Path, webhook_port: int
) -> None:
    env = {"AVATURN_WEBHOOK_SECRET": DEFAULT_WEBHOOK_SECRET, "WEBHOOK_PORT": str(webhook_port)}
    await run_example("customize_render_export.py", emu, tmp_path, "files", env=env)
    assert (tmp_path / "files" / "preview.png").stat().st_size > 0
    assert (tmp_path / "files" / "avatar.glb").stat().st_size == emu.export_size


@pytest.mark.parametrize("script", ["fastapi_webhooks.py", "aiohttp_webhooks.py"])
async def test_webhook_service_example_resolves_the_job_through_the_inbox(
    script: str, emu: AvaturnEmulator, tmp_path: Path, webhook_port: int
) -> None:
    env = {"AVATURN_WEBHOOK_SECRET": DEFAULT_WEBHOOK_SECRET, "WEBHOOK_PORT": str(webhook_port)}
    output = await run_example(script, emu, tmp_path, env=env)
    [avatar] = emu.avatars.values()
    assert f"job resolved: avatar {avatar.id} ready" in output
    assert 202 in {delivery.status for delivery in emu.webhook_deliveries}  # stored in the inbox
    assert (tmp_path / "webhooks.db").exists()


@pytest.mark.parametrize("token", ["example-query-token-0123456789", None])
async def test_unsigned_webhooks_example_confirms_refuses_forgeries_and_downloads(
    token: str | None, tmp_path: Path, webhook_port: int
) -> None:
    url = f"http://127.0.0.1:{webhook_port}/webhooks/avaturn"
    async with AvaturnEmulator(
        processing_delay=0.05,
        export_delay=0.05,
        webhook_url=f"{url}?token={token}" if token else url,
        sign_webhooks=False,  # as Avaturn documents its webhooks
        webhook_retry_delay=0.2,
        webhook_max_attempts=6,
    ) as unsigned:
        env = {"WEBHOOK_PORT": str(webhook_port), **({"WEBHOOK_TOKEN": token} if token else {})}
        output = await run_example("webhooks_unsigned.py", unsigned, tmp_path, env=env)
    [avatar] = unsigned.avatars.values()
    assert f"avatar.ready (confirmed by the API): {avatar.id} ready" in output
    assert "forged avatar.ready: answered 204, not dispatched" in output
    assert f"export.ready: downloaded {unsigned.export_size} bytes" in output
    assert "download refused: 169.254.169.254" in output
    assert "confirmation: {'confirmed': 2, 'contradicted': 1}" in output


async def test_onboard_csv_example_onboards_every_row_with_progress(
    emu: AvaturnEmulator, tmp_path: Path
) -> None:
    output = await run_example("onboard_csv.py", emu, tmp_path)
    assert len(emu.users) == len(emu.avatars) == 12
    assert "progress: 12/12 rows handled" in output


async def test_testing_example_passes_under_pytest(tmp_path: Path) -> None:
    with anyio.fail_after(DEADLINE):
        done = await anyio.run_process(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
             str(EXAMPLES / "test_my_code.py")],
            cwd=tmp_path,
            check=False,
        )
    assert done.returncode == 0, done.stdout.decode()
    assert "4 passed" in done.stdout.decode()


async def test_sync_tasks_example_onboards_from_threads_with_one_client(
    emu: AvaturnEmulator, tmp_path: Path
) -> None:
    output = await run_example("sync_tasks.py", emu, tmp_path)
    assert len(emu.avatars) == 4
    assert output.count(" ready\n") == 4
    assert "unknown user: 404" in output


async def test_onboard_results_example_loads_every_row_into_a_table(
    emu: AvaturnEmulator, tmp_path: Path
) -> None:
    output = await run_example("onboard_results.py", emu, tmp_path)
    assert "avaturn_ids: 6 rows loaded, 0 not ready" in output
    with sqlite3.connect(tmp_path / "app.db") as db:
        rows = db.execute("SELECT customer_id, avaturn_user_id FROM avaturn_ids").fetchall()
    assert sorted(customer for customer, _ in rows) == [f"C{n:06d}" for n in range(1, 7)]
    assert {user for _, user in rows} == set(emu.users)
