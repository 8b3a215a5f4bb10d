"""``avaturn emulator``: the constructor's main options, defaults in ``--help``, a busy port
as one line and exit 2, and HTTPS from the command line."""

from __future__ import annotations

import argparse
import inspect
import os
import signal
import socket
import ssl
import sys
from pathlib import Path

import anyio
import pytest
import trustme
from anyio.streams.buffered import BufferedByteReceiveStream

from avaturn_async import AvaturnClient
from avaturn_async._cli import _parser, main
from avaturn_async._cli._emulator import _emulator
from avaturn_async.testing import AvaturnEmulator, RateLimit

# Constructor arguments without a flag: a FaultPlan is a value to build in Python;
# the other two are deprecated spellings of it.
WITHOUT_FLAG = {"faults", "duplicate_webhooks", "reorder_webhooks"}
FLAG_OF = {"sign_webhooks": "--unsigned-webhooks", "ssl": "--tls-cert",
           "require_customization": "--no-require-customization"}  # fmt: skip


def emulator_help(capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        main(["emulator", "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


def test_help_has_a_flag_for_each_main_constructor_argument(
    capsys: pytest.CaptureFixture[str],
) -> None:
    shown = emulator_help(capsys)
    arguments = set(inspect.signature(AvaturnEmulator).parameters) - WITHOUT_FLAG
    flags = {FLAG_OF.get(name, "--" + name.replace("_", "-")) for name in arguments}
    assert sorted(flag for flag in flags if flag not in shown) == []


def test_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    shown = emulator_help(capsys)
    for expected in ("(default: 127.0.0.1)", "(default: 8080)", "(default: emulator-key)",
                     "(default: 1.0)", "(default: 4096)", "(default: no limit)",
                     "(default: memory only)", "(default: 4)", "(default: 0.05)"):  # fmt: skip
        assert expected in shown


def test_every_option_says_what_it_does() -> None:
    commands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    emulator = commands.choices["emulator"]
    silent = [a.dest for a in emulator._actions if not a.help]
    assert silent == []


def test_options_reach_the_emulator(tmp_path: Path) -> None:
    args = _parser().parse_args(
        ["emulator", "--rate-limit", "50/2", "--export-size", "2048", "--response-delay", "0.2",
         "--no-require-customization", "--state-file", str(tmp_path / "s.db"),
         "--processing-delay", "0.3", "--export-delay", "0.1", "--webhook-max-attempts", "2"]
    )  # fmt: skip
    emulator = _emulator(args)
    assert (emulator.rate_limit, emulator.export_size, emulator.response_delay) == (
        RateLimit(requests=50, per=2.0),
        2048,
        0.2,
    )
    assert (emulator.render_delay, emulator.export_delay) == (0.3, 0.1)


def test_a_busy_port_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["emulator", "--port", str(port)])
    err = capsys.readouterr().err
    assert (code, err) == (
        2,
        f"avaturn emulator: cannot listen on 127.0.0.1:{port}: the port is already in use\n",
    )


def test_a_bad_rate_limit_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["emulator", "--rate-limit", "fast"])
    assert exited.value.code == 2
    assert "neither R nor REQUESTS/SECONDS" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_command_serves_https_with_the_given_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    port = free_port()
    command = [sys.executable, "-m", "avaturn_async", "emulator", "--port", str(port),
               "--tls-cert", str(cert), "--tls-key", str(key)]  # fmt: skip
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with await anyio.open_process(
        command, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    ) as process:
        assert process.stdout is not None
        with anyio.fail_after(20):
            banner = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 4096)
        base_url = f"https://127.0.0.1:{port}"
        async with AvaturnClient("emulator-key", base_url=base_url, ssl=context) as client:
            user = await client.users.create()
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(10):
            await process.wait()
    assert base_url in banner.decode()
    assert user.id
