"""``AVATURN_LOG=debug|info``: the SDK's logs on standard error without code, secrets hidden."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import asyncio
from avaturn_async import AvaturnClient
from avaturn_async.testing import AvaturnEmulator

async def main():
    async with AvaturnEmulator(api_key="sk_live_verysecret") as emu:
        async with AvaturnClient(emu.api_key, base_url=emu.base_url) as client:
            await client.users.create(extra_headers={"X-Partner-Token": "tok_hidden"})
            emu.fail_next("users.create", 503)
            await client.users.create()

asyncio.run(main())
"""


def run_with(level: str, tmp_path: Path) -> str:
    script = tmp_path / "logged.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "AVATURN_LOG": level}
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_debug_shows_each_request_with_secrets_redacted(tmp_path: Path) -> None:
    stderr = run_with("debug", tmp_path)
    assert "DEBUG avaturn_async] sending POST http://127.0.0.1:" in stderr
    assert "'Authorization': '***'" in stderr
    assert "'X-Partner-Token': '***'" in stderr
    assert "sk_live_verysecret" not in stderr
    assert "tok_hidden" not in stderr


def test_info_shows_retries_but_not_each_request(tmp_path: Path) -> None:
    stderr = run_with("info", tmp_path)
    assert "INFO avaturn_async] retrying POST /api/v1/users/new" in stderr
    assert "sending POST" not in stderr


def test_an_unknown_level_is_ignored_with_a_note(tmp_path: Path) -> None:
    stderr = run_with("verbose", tmp_path)
    assert stderr.strip() == "avaturn_async: AVATURN_LOG='verbose' ignored (use debug or info)"
