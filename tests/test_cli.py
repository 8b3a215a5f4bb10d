"""The ``avaturn`` command line: the emulator command, for any client to point at."""

from __future__ import annotations

import os
import signal
import socket
import sys

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from avaturn_async import AvaturnClient
from avaturn_async._cli import main


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_emulator_command_serves_the_api_until_interrupted() -> None:
    port = free_port()
    command = [sys.executable, "-m", "avaturn_async", "emulator", "--port", str(port)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    async with await anyio.open_process(command, env=env) as process:
        assert process.stdout is not None
        with anyio.fail_after(20):
            first_line = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 4096)
        assert f"http://127.0.0.1:{port}" in first_line.decode()
        async with AvaturnClient("emulator-key", base_url=f"http://127.0.0.1:{port}") as client:
            user = await client.users.create()
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(10):
            code = await process.wait()
    assert user.id
    assert code in (0, 130)


def test_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as info:
        main(["teleport"])
    assert info.value.code == 2
