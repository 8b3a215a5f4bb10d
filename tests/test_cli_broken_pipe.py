"""``avaturn ... | head``: when the reader of stdout leaves, the CLI exits quietly.

Each command runs in a real subprocess whose stdout is a pipe with its reading
end already closed, so its first write fails with EPIPE, as under ``| head``
once ``head`` has exited.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from avaturn_async.batch import write_sample_manifest
from avaturn_async.samples import SAMPLES_DIR
from tests.inbox_support import make_inbox

ROOT = Path(__file__).resolve().parents[1]


def run_into_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    read, write = os.pipe()
    os.close(read)  # nobody will ever read: every write to the pipe fails
    try:
        return subprocess.run(
            [sys.executable, "-m", "avaturn_async", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)


def assert_quiet_exit(done: subprocess.CompletedProcess[str]) -> None:
    assert (done.returncode, done.stderr) == (1, "")


def test_inbox_json_into_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    db = tmp_path / "inbox.db"
    make_inbox(db, done=2, dead=1)
    assert_quiet_exit(run_into_closed_pipe("inbox", "--db", str(db), "--json"))


def test_inbox_listing_into_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    db = tmp_path / "inbox.db"
    make_inbox(db, done=2)
    assert_quiet_exit(run_into_closed_pipe("inbox", "--db", str(db)))


@pytest.fixture(scope="module")
def finished_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    journal = tmp_path_factory.mktemp("journal") / "j.db"
    from avaturn_async._cli import main

    assert main(["onboard", str(SAMPLES_DIR / "manifest.csv"), "--journal", str(journal),
                 "--emulator", "--progress", "none"]) == 0
    return journal


def test_onboard_status_into_a_closed_pipe_exits_quietly(finished_journal: Path) -> None:
    assert_quiet_exit(run_into_closed_pipe("onboard", "--status", "--journal",
                                           str(finished_journal)))


def test_an_onboard_run_into_a_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    manifest = write_sample_manifest(tmp_path, 2)
    done = run_into_closed_pipe("onboard", str(manifest), "--journal", str(tmp_path / "j.db"),
                                "--emulator", "--progress", "plain")
    assert_quiet_exit(done)
