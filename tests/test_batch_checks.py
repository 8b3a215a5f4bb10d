"""Before a batch spends anything: ``--dry-run``, ``--max-new-users``, ``--write-sample``;
and a progress count that never counts a row twice."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from avaturn_async import AvaturnClient
from avaturn_async._cli import main
from avaturn_async.batch import (
    Manifest,
    OnboardingSummary,
    OnboardSettings,
    RowRecord,
    RowState,
    onboard,
    write_sample_manifest,
)
from avaturn_async.batch._onboard import _Run, _Work
from avaturn_async.testing import AvaturnEmulator


def _with_bad_rows(folder: Path) -> Path:
    manifest = write_sample_manifest(folder, 3, name="people.csv")
    with manifest.open("a", encoding="utf-8") as handle:
        handle.write("bad-photo,nope.jpg,photos/side_1.jpg,photos/side_2.jpg,male,false,C8\n")
        handle.write("bad-body,photos/frontal.jpg,photos/side_1.jpg,photos/side_2.jpg,robot,,\n")
        handle.write("sample-00002,photos/frontal.jpg,photos/side_1.jpg,photos/side_2.jpg,"
                     "male,false,C9\n")
    return manifest


def test_dry_run_lists_every_invalid_row_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["onboard", str(_with_bad_rows(tmp_path)), "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "6 rows read: 3 would be sent, 0 already done, 3 invalid; nothing was sent" in out
    assert "line 5 key bad-photo: frontal photo not found" in out
    assert "line 6 key bad-body: body_type must be 'male' or 'female'" in out
    assert "line 7 key sample-00002: [duplicate_key] duplicate key 'sample-00002'" in out


def test_dry_run_of_a_good_manifest_exits_0_with_json_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_sample_manifest(tmp_path, 5, name="people.csv")
    assert main(["onboard", str(manifest), "--dry-run", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {k: report[k] for k in ("rows", "would_send", "already_done", "invalid")} == {
        "rows": 5, "would_send": 5, "already_done": 0, "invalid": 0
    }


def test_dry_run_sends_nothing_and_needs_no_key_nor_journal(
    tmp_path: Path,
    avaturn_shared_emulator: AvaturnEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = avaturn_shared_emulator
    monkeypatch.delenv("AVATURN_API_KEY", raising=False)
    monkeypatch.setenv("AVATURN_BASE_URL", emu.base_url)
    before = sum(emu.stats.requests.values())
    manifest = write_sample_manifest(tmp_path, 3, name="people.csv")
    assert main(["onboard", str(manifest), "--dry-run"]) == 0
    assert sum(emu.stats.requests.values()) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["people.csv", "photos"]


def test_dry_run_with_a_journal_counts_the_rows_already_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = write_sample_manifest(tmp_path, 4, name="people.csv")
    journal = str(tmp_path / "j.db")
    main(["onboard", str(manifest), "--journal", journal, "--emulator", "--progress", "none",
          "--max-new-users", "3"])
    capsys.readouterr()
    assert main(["onboard", str(manifest), "--dry-run", "--journal", journal, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["already_done"], report["would_send"]) == (3, 1)


def test_dry_run_decodes_each_photo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = write_sample_manifest(tmp_path, 1, name="people.csv")
    (tmp_path / "photos" / "frontal.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    assert main(["onboard", str(manifest), "--dry-run"]) == 1
    assert "frontal photo is not a JPEG, PNG, WebP or HEIC image" in capsys.readouterr().out


async def test_the_user_cap_stops_starting_rows_and_a_later_run_goes_on(tmp_path: Path) -> None:
    manifest = write_sample_manifest(tmp_path, 10)
    journal = tmp_path / "j.db"
    async with AvaturnEmulator(processing_delay=0.01) as emu:
        async with AvaturnClient(emu.api_key, base_url=emu.base_url) as client:
            capped = OnboardSettings(concurrency=2, max_new_users=4)
            with Manifest(manifest) as rows:
                first = await onboard(client, rows, journal=journal, settings=capped)
            assert (len(emu.users), first.ready, first.not_started) == (4, 4, 6)
            assert (first.cap_reached, first.exit_code, first.done) == (True, 1, 10)
            assert "4 new users reached the cap (--max-new-users 4)" in first.format()
            with Manifest(manifest) as rows:
                second = await onboard(client, rows, journal=journal)
    assert (second.ready, second.already_done, len(emu.users)) == (6, 4, 10)


def test_the_sample_runs_where_it_is_copied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["onboard", "--write-sample", str(tmp_path / "sample"), "--rows", "3"]) == 0
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "sample", moved)
    shutil.rmtree(tmp_path / "sample")
    capsys.readouterr()
    assert main(["onboard", str(moved / "people.csv"), "--dry-run"]) == 0
    assert "3 would be sent" in capsys.readouterr().out


class _ClaimsEverything:
    """A journal store whose claims always succeed (the rows of a killed worker)."""

    async def claim(
        self, keys: Sequence[str], *, export: bool, retry_failed: bool
    ) -> list[RowRecord]:
        return [RowRecord(key=key, line=2, run_id=1, state=RowState.NEW) for key in keys]

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"not used here: {name}")


async def test_rows_taken_over_from_another_run_are_never_counted_twice(tmp_path: Path) -> None:
    rows = 20
    manifest = write_sample_manifest(tmp_path, rows)
    summary = OnboardingSummary(elsewhere=rows)  # every row was held by a run now dead
    seen: list[int] = []
    run = _Run(
        None,  # type: ignore[arg-type]  # no row is run: the workers below stand in
        _ClaimsEverything(),
        summary,
        OnboardSettings(),
        lambda summary: seen.append(summary.done),
    )
    send, receive = anyio.create_memory_object_stream[_Work](0)

    async def worker() -> None:
        async with receive:
            async for _ in receive:
                summary.ready += 1
                run.changed()

    keys = {f"sample-{n:05d}" for n in range(1, rows + 1)}
    async with anyio.create_task_group() as group:
        group.start_soon(worker)
        async with send:
            await run._rescan(manifest, keys, send)
    assert (max(seen), summary.done, summary.ready) == (rows, rows, rows)
