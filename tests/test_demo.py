"""The README's first command: ``avaturn demo`` against the embedded emulator."""

from __future__ import annotations

import io

from avaturn_async._cli import main
from avaturn_async._cli._demo import run_demo


async def test_demo_calls_every_endpoint_and_onboards_the_sample_batch() -> None:
    out = io.StringIO()
    assert await run_demo(rows=6, out=out) == 0
    text = out.getvalue()
    assert text.count("webhook received") == 3
    assert "6 ready" in text
    assert "6 users and 6 avatars for 6 rows" in text


def test_demo_command_exits_zero() -> None:
    assert main(["demo", "--quiet", "--rows", "0"]) == 0
