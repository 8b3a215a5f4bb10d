"""Every shell block of README.md runs as written, in an empty folder.

Each ```` ```sh ```` block is run by ``bash -e`` in a fresh folder, with this virtual
environment's ``bin`` first on ``PATH`` (the README says the blocks use the activated
venv's ``avaturn`` and ``python``) and ``AVATURN_BASE_URL`` / ``AVATURN_API_KEY``
pointing at an emulator, as the README asks for its blocks. The only change made to
a block is its fixed ports (8080, 8081, 8100), moved to free ones so that parallel
runs do not collide; a block "from a checkout" gets ``tests/pg_server.py`` beside it.

A block is never skipped silently: each one is either run, or named in ``NOT_RUN``
with the reason and where CI runs its commands instead; a new block that is neither
fails the test that lists them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from avaturn_async.testing import AvaturnEmulator

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FIXED_PORTS = ("8080", "8081", "8100")

NOT_RUN = {
    "# In a clone of this repository:": (
        "makes a venv, installs the package and runs the whole test suite: that is CI "
        "itself (.ci/run installs the wheel into a fresh venv and runs avaturn demo)"
    ),
    "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]'": (
        "the development setup: .ci/run runs these very commands"
    ),
}


def shell_blocks() -> list[tuple[int, str]]:
    """(line, source) of every ```sh block, in order."""
    blocks: list[tuple[int, str]] = []
    lines = README.read_text(encoding="utf-8").splitlines()
    start: int | None = None
    for number, line in enumerate(lines, start=1):
        if start is None and line.strip() in ("```sh", "```bash", "```console"):
            start = number
        elif start is not None and line.strip() == "```":
            blocks.append((start, "\n".join(lines[start : number - 1]) + "\n"))
            start = None
    return blocks


def _reason_not_run(source: str) -> str | None:
    first = source.lstrip().splitlines()[0]
    return next((why for head, why in NOT_RUN.items() if first.startswith(head)), None)


BLOCKS = shell_blocks()
TO_RUN = [(line, source) for line, source in BLOCKS if _reason_not_run(source) is None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fresh_folder() -> Iterator[Path]:
    """An empty folder the ``postgres`` user can reach too (pg_server.py runs as it)."""
    folder = Path(tempfile.mkdtemp(prefix="avaturn-readme-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        if (folder / "pg" / "data").exists():  # a block that failed before stopping it
            subprocess.run([sys.executable, str(ROOT / "tests" / "pg_server.py"), "stop",
                            str(folder / "pg")], check=False, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_every_shell_block_is_run_or_says_why_not() -> None:
    assert [line for line, _ in TO_RUN], "no shell block of README.md is run"
    for line, source in BLOCKS:
        if _reason_not_run(source) is None:
            assert "```" not in source, f"README.md:{line}: an unclosed block"


@pytest.mark.parametrize(
    "source", [source for _, source in BLOCKS if _reason_not_run(source) is not None],
    ids=[f"README.md:{line}" for line, source in BLOCKS if _reason_not_run(source) is not None],
)
def test_a_block_not_run_here_is_run_by_ci(source: str) -> None:
    reason = _reason_not_run(source)
    assert reason is not None
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for command in ("pip install", "pytest -q"):
        if command in source:
            assert command in ci, f"CI does not run {command!r}, which {reason!r} says it does"


@pytest.mark.slow
@pytest.mark.parametrize(
    "source", [source for _, source in TO_RUN], ids=[f"README.md:{n}" for n, _ in TO_RUN]
)
def test_readme_shell_block_runs_in_a_fresh_folder(
    source: str, fresh_folder: Path, avaturn_shared_emulator: AvaturnEmulator
) -> None:
    emu = avaturn_shared_emulator
    ports = {port: str(_free_port()) for port in FIXED_PORTS}
    script = re.sub(r"\b(8080|8081|8100)\b", lambda match: ports[match.group(1)], source)
    if "tests/pg_server.py" in script:  # "from a checkout": the script beside the block
        (fresh_folder / "tests").mkdir()
        shutil.copy(ROOT / "tests" / "pg_server.py", fresh_folder / "tests" / "pg_server.py")
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(Path(sys.executable).parent.parent),
        "AVATURN_BASE_URL": emu.base_url,
        "AVATURN_API_KEY": emu.api_key,
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", script], cwd=fresh_folder, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=300)
    finally:
        # What the block started in the background (an emulator) ends with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    assert process.returncode == 0, f"exit {process.returncode}:\n{script}\n---\n{output}"
