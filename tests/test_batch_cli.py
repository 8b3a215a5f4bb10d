"""``avaturn onboard``: exit codes, reports, and runs killed with SIGKILL then rerun.

The killed runs are real subprocesses (``python -m avaturn_async onboard``)
talking over loopback to an emulator that lives in the test's event loop.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from avaturn_async._cli import main
from avaturn_async._cli._progress import PlainProgress, progress_reporter
from avaturn_async._cli._sample import run_sample_onboarding
from avaturn_async.batch import Journal, OnboardingSummary, RowState
from avaturn_async.batch import write_sample_manifest as write_manifest
from avaturn_async.samples import SAMPLES_DIR
from avaturn_async.testing import AvaturnEmulator

ROOT = Path(__file__).resolve().parents[1]
ROWS = 24


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "avaturn_async", *args]


def env_for(emu: AvaturnEmulator | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AVATURN_API_KEY", None)
    if emu is not None:
        env.update(AVATURN_BASE_URL=emu.base_url, AVATURN_API_KEY=emu.api_key)
    return env


# ---------------------------------------------------------------- in-process commands


def test_emulator_mode_onboards_the_bundled_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = str(SAMPLES_DIR / "manifest.csv")
    code = main(["onboard", manifest, "--journal", str(tmp_path / "j.db"), "--emulator"])
    assert code == 0
    assert "6 rows read, 6 ready" in capsys.readouterr().out


def test_bad_rows_give_exit_code_1_and_are_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path, 2)
    with manifest.open("a") as handle:
        handle.write("bad,nope.jpg,nope.jpg,nope.jpg,female,false\n")
    code = main(["onboard", str(manifest), "--journal", str(tmp_path / "j.db"), "--emulator"])
    assert code == 1
    assert "line 4 key bad: invalid: frontal photo not found" in capsys.readouterr().out


def test_an_unreadable_manifest_gives_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["onboard", str(tmp_path / "absent.csv"), "--journal", str(tmp_path / "j.db")])
    assert code == 2
    assert "cannot read manifest" in capsys.readouterr().err


def test_a_missing_api_key_gives_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AVATURN_API_KEY", raising=False)
    manifest = write_manifest(tmp_path, 1)
    code = main(["onboard", str(manifest), "--journal", str(tmp_path / "j.db")])
    assert code == 2
    assert "AVATURN_API_KEY" in capsys.readouterr().err


def test_a_webhook_port_without_secret_gives_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AVATURN_API_KEY", "k")
    monkeypatch.delenv("AVATURN_WEBHOOK_SECRET", raising=False)
    manifest = write_manifest(tmp_path, 1)
    argv = ["onboard", str(manifest), "--journal", str(tmp_path / "j.db"), "--webhook-port", "0"]
    assert main(argv) == 2
    assert "AVATURN_WEBHOOK_SECRET" in capsys.readouterr().err


def test_status_of_a_finished_journal_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path, 3)
    journal = str(tmp_path / "j.db")
    main(["onboard", str(manifest), "--journal", journal, "--emulator"])
    capsys.readouterr()
    assert main(["onboard", "--status", "--journal", journal]) == 0
    assert "ready 3, in progress 0, failed 0, invalid 0;" in capsys.readouterr().out


def test_an_unusable_emulator_state_file_gives_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_manifest(tmp_path, 1)
    journal = tmp_path / "j.db"
    Path(f"{journal}.emulator.db").write_bytes(b"not sqlite at all" * 100)
    assert main(["onboard", str(manifest), "--journal", str(journal), "--emulator"]) == 2
    assert "not an emulator state file" in capsys.readouterr().err


def test_status_of_a_missing_journal_exits_2(tmp_path: Path) -> None:
    assert main(["onboard", "--status", "--journal", str(tmp_path / "none.db")]) == 2


def test_plain_progress_prints_at_most_once_per_interval() -> None:
    out = io.StringIO()
    now = [0.0]
    progress = PlainProgress(out, 10, interval=5.0, now=lambda: now[0])
    for moment in (1.0, 5.0, 6.0, 10.5):
        now[0] = moment
        progress(OnboardingSummary(ready=3))
    assert [line.split(":")[0] for line in out.getvalue().splitlines()] == ["onboard", "onboard"]
    assert "3/10 rows" in out.getvalue()


async def test_the_sample_onboarding_finishes_every_row_and_resumes_idempotently() -> None:
    out = io.StringIO()
    assert await run_sample_onboarding(rows=10, out=out) == 0
    assert "10 already done, 0 redone; the emulator holds 10 users and 10 avatars" in (
        out.getvalue()
    )


# ---------------------------------------------------------------- killed and rerun


def states(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return dict(db.execute("SELECT state, COUNT(*) FROM rows GROUP BY state").fetchall())
    except sqlite3.OperationalError:  # schema not created yet
        return {}
    finally:
        db.close()


async def wait_for(path: Path, condition: Callable[[dict[str, int]], bool]) -> None:
    """Poll the journal of another process until ``condition`` holds (no event to
    wait on across processes)."""
    with anyio.fail_after(20):
        while not condition(await anyio.to_thread.run_sync(states, path)):  # noqa: ASYNC110
            await anyio.sleep(0.005)


@pytest.fixture
async def slow_emulator() -> AsyncIterator[AvaturnEmulator]:
    """Slow enough that rows linger in every state, so kills land mid-way."""
    async with AvaturnEmulator(processing_delay=0.3, response_delay=0.15) as emu:
        yield emu


KILL_POINTS: dict[str, Callable[[dict[str, int]], bool]] = {
    "user_requested": lambda s: s.get("user_requested", 0) >= 2,
    "avatar_requested": lambda s: s.get("avatar_requested", 0) >= 2,
    "uploading": lambda s: s.get("uploading", 0) >= 2,
    "ready_and_processing": lambda s: s.get("ready", 0) >= 3 and s.get("processing", 0) >= 1,
}


@pytest.mark.parametrize("kill_point", sorted(KILL_POINTS))
async def test_a_run_killed_mid_way_and_rerun_gives_one_user_and_avatar_per_row(
    tmp_path: Path, slow_emulator: AvaturnEmulator, kill_point: str
) -> None:
    emu = slow_emulator
    manifest = write_manifest(tmp_path, ROWS)
    journal = tmp_path / "j.db"
    args = cli("onboard", str(manifest), "--journal", str(journal), "--poll-interval", "0.05",
               "--concurrency", "4", "--progress", "none")
    process = await anyio.open_process(args, env=env_for(emu))
    async with process:
        await wait_for(journal, KILL_POINTS[kill_point])
        process.kill()  # SIGKILL: no cleanup of any kind
        await process.wait()
    emu.response_delay = 0
    with anyio.fail_after(5):
        # Requests of the dead run finish on the server (no event to wait on).
        while emu.stats.in_flight:  # noqa: ASYNC110
            await anyio.sleep(0.01)
    rerun = await anyio.run_process(args, env=env_for(emu), check=False)
    assert rerun.returncode == 0, rerun.stdout.decode() + rerun.stderr.decode()
    assert_one_user_and_avatar_per_row_besides_reported_orphans(emu, journal)


def assert_one_user_and_avatar_per_row_besides_reported_orphans(
    emu: AvaturnEmulator, path: Path
) -> None:
    with Journal(path) as journal:
        records = list(journal.records())
        orphans = journal.status().possible_orphans
    assert len(records) == ROWS
    assert {r.state for r in records} == {RowState.READY}
    avatars: dict[str, list[str]] = {}
    for avatar in emu.avatars.values():
        avatars.setdefault(avatar.user_id, []).append(avatar.id)
    assert avatars == {r.user_id: [r.avatar_id] for r in records}
    assert {a.status for a in emu.avatars.values()} == {"ready"}
    # Users that own no avatar are the Create User calls the kill left unanswered.
    assert 0 <= len(emu.users) - ROWS <= orphans


async def test_sigint_stops_the_run_with_exit_code_130_and_a_summary(
    tmp_path: Path, slow_emulator: AvaturnEmulator
) -> None:
    manifest = write_manifest(tmp_path, ROWS)
    journal = tmp_path / "j.db"
    args = cli("onboard", str(manifest), "--journal", str(journal), "--progress", "none")
    process = await anyio.open_process(args, env=env_for(slow_emulator))
    async with process:
        await wait_for(journal, lambda s: s.get("uploading", 0) >= 1)
        process.send_signal(signal.SIGINT)
        assert await process.wait() == 130
        assert process.stdout is not None
        output = (await process.stdout.receive()).decode()
    assert "Onboarding interrupted" in output


def test_the_cli_subprocess_needs_no_network_in_emulator_mode(tmp_path: Path) -> None:
    manifest = SAMPLES_DIR / "manifest.csv"
    done = subprocess.run(
        cli("onboard", str(manifest), "--journal", str(tmp_path / "j.db"), "--emulator"),
        env=env_for(None),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "embedded emulator at http://127.0.0.1:" in done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_webhook_port_receives_the_webhooks_that_finish_the_rows(tmp_path: Path) -> None:
    port = free_port()
    manifest = write_manifest(tmp_path, 8)
    async with AvaturnEmulator(
        processing_delay=0.05, webhook_url=f"http://127.0.0.1:{port}/webhooks/avaturn"
    ) as emu:
        env = {**env_for(emu), "AVATURN_WEBHOOK_SECRET": str(emu.webhook_secret)}
        args = cli("onboard", str(manifest), "--journal", str(tmp_path / "j.db"),
                   "--webhook-port", str(port), "--webhook-host", "127.0.0.1",
                   "--poll-interval", "60", "--progress", "none")
        with anyio.fail_after(30):
            done = await anyio.run_process(args, env=env, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert f"receiving webhooks on http://127.0.0.1:{port}/" in done.stdout.decode()
    assert emu.stats.requests["avatars.list"] == 0  # polling would start after a minute


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["sigkill", "sigint"])
async def test_an_emulator_run_stopped_mid_way_resumes_with_every_row_ready(
    tmp_path: Path, stop: signal.Signals
) -> None:
    rows = 80
    manifest = write_manifest(tmp_path, rows)
    journal = tmp_path / "j.db"
    args = cli("onboard", str(manifest), "--journal", str(journal), "--emulator",
               "--concurrency", "2", "--progress", "none")
    process = await anyio.open_process(args, env=env_for(None))
    async with process:
        await wait_for(journal, lambda s: s.get("ready", 0) >= 3)
        process.send_signal(stop)
        await process.wait()
    assert (await anyio.to_thread.run_sync(states, journal)).get("ready", 0) < rows
    rerun = await anyio.run_process(args, env=env_for(None), check=False)
    output = rerun.stdout.decode() + rerun.stderr.decode()
    assert rerun.returncode == 0, output
    assert set(states(journal)) == {"ready"}
    assert "404" not in output


# ---------------------------------------------------------------- one vocabulary


WORDS = ("ready 3", "already done 2", "failed 1", "invalid 1")


def test_plain_progress_counts_in_the_reports_words_and_shows_the_time_left() -> None:
    out = io.StringIO()
    progress = PlainProgress(out, 10, interval=0.0)
    progress(OnboardingSummary(ready=3, already_done=2, failed=1, invalid=1))
    line = out.getvalue()
    assert all(word in line for word in WORDS), line
    assert " left" in line


def test_the_rich_bar_counts_in_the_reports_words_and_shows_the_time_left() -> None:
    out = io.StringIO()
    with progress_reporter(out, 10, "rich") as report:
        assert report is not None
        report(OnboardingSummary(ready=3, already_done=2, failed=1, invalid=1))
    shown = out.getvalue()
    assert all(word in shown for word in WORDS), shown
    assert " left: " in shown


def test_the_final_summary_counts_in_the_same_words() -> None:
    report = OnboardingSummary(ready=3, already_done=2, failed=1, invalid=1, read=7).format()
    assert "3 ready, 2 already done, 1 failed, 1 invalid" in report


def test_the_summary_as_json_is_keyed_with_the_same_words() -> None:
    data = OnboardingSummary(ready=3, already_done=2, failed=1, invalid=1).as_dict()
    assert {k: data[k] for k in ("ready", "already_done", "failed", "invalid")} == {
        "ready": 3, "already_done": 2, "failed": 1, "invalid": 1,
    }


def test_the_time_left_counts_the_pace_of_rows_that_needed_work() -> None:
    summary = OnboardingSummary(ready=10, already_done=50, started=0.0, finished=10.0)
    # 60 of 100 handled; 10 rows of work took 10 s; 40 rows are left.
    assert summary.seconds_left(100) == 40.0
    assert OnboardingSummary(already_done=5).seconds_left(100) is None


def journal_with_every_outcome(tmp_path: Path) -> str:
    manifest = write_manifest(tmp_path, 3)
    with manifest.open("a") as handle:
        handle.write("bad,nope.jpg,nope.jpg,nope.jpg,female,false\n")
    journal = str(tmp_path / "j.db")
    main(["onboard", str(manifest), "--journal", journal, "--emulator", "--progress", "none"])
    return journal


def test_status_counts_in_the_same_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = journal_with_every_outcome(tmp_path)
    capsys.readouterr()
    assert main(["onboard", "--status", "--journal", journal]) == 1
    assert "ready 3, in progress 0, failed 0, invalid 1;" in capsys.readouterr().out


def test_status_json_is_keyed_with_the_same_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = journal_with_every_outcome(tmp_path)
    capsys.readouterr()
    assert main(["onboard", "--status", "--journal", journal, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    counts = {k: data[k] for k in ("rows", "ready", "in_progress", "failed", "invalid")}
    assert counts == {"rows": 4, "ready": 3, "in_progress": 0, "failed": 0, "invalid": 1}
    assert [f["error_kind"] for f in data["invalid_rows"]] == ["invalid"]
    assert data["failed_rows"] == []


def test_the_deprecated_skipped_count_reads_already_done() -> None:
    assert OnboardingSummary(already_done=2).skipped == 2
