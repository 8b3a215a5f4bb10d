"""Results out of the journal: one line per manifest row, in the reports' words.

``avaturn onboard --results FILE`` and ``read_results``/``write_results``, for a
SQLite journal here (``test_postgres_results.py`` for PostgreSQL).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from avaturn_async._cli import main
from avaturn_async.batch import (
    RESULT_COLUMNS,
    Journal,
    JournalError,
    read_results,
    write_sample_manifest,
)
from avaturn_async.testing import AvaturnEmulator

ROOT = Path(__file__).resolve().parents[1]


def _manifest_with_bad_rows(folder: Path) -> Path:
    manifest = write_sample_manifest(folder, 3, name="people.csv")
    with manifest.open("a", encoding="utf-8") as handle:
        handle.write("bad,nope.jpg,photos/side_1.jpg,photos/side_2.jpg,male,false,C9\n")
        handle.write("sample-00001,photos/frontal.jpg,photos/side_1.jpg,photos/side_2.jpg,"
                     "male,false,C10\n")
    return manifest


def _run(folder: Path, *extra: str) -> int:
    manifest = _manifest_with_bad_rows(folder)
    journal = str(folder / "j.db")
    return main(["onboard", str(manifest), "--journal", journal, "--emulator",
                 "--progress", "none", *extra])


def test_results_csv_has_the_fixed_columns_then_the_manifests_own(tmp_path: Path) -> None:
    assert _run(tmp_path, "--results", str(tmp_path / "out.csv")) == 1
    with (tmp_path / "out.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [*RESULT_COLUMNS, "customer_id"]
    assert [(r["key"], r["state"], r["customer_id"]) for r in rows] == [
        ("sample-00001", "ready", "C000001"),
        ("sample-00002", "ready", "C000002"),
        ("sample-00003", "ready", "C000003"),
        ("bad", "invalid", "C9"),
        ("sample-00001", "invalid", "C10"),
    ]
    assert all(r["user_id"] and r["avatar_id"] for r in rows[:3])
    assert [r["error_kind"] for r in rows[3:]] == ["invalid", "duplicate_key"]
    assert rows[0]["updated_at"].endswith("+00:00")


def test_results_alone_write_json_lines_to_stdout_and_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(tmp_path)
    capsys.readouterr()
    assert main(["onboard", "--journal", str(tmp_path / "j.db"), "--results", "-"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["state"] for line in lines] == ["ready"] * 3 + ["invalid"] * 2
    assert lines[0]["customer_id"] == "C000001"


def test_results_totals_add_up_with_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(tmp_path, "--results", str(tmp_path / "out.jsonl"))
    capsys.readouterr()
    main(["onboard", "--status", "--journal", str(tmp_path / "j.db"), "--json"])
    status = json.loads(capsys.readouterr().out)
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    states = [json.loads(line)["state"] for line in lines]
    assert status["rows"] == len(states) == sum(
        status[word] for word in ("ready", "in_progress", "failed", "invalid")
    )
    assert {word: states.count(word) for word in ("ready", "invalid")} == {
        "ready": status["ready"], "invalid": status["invalid"]
    }


def test_an_unknown_results_extension_is_a_usage_error_before_anything_runs(
    tmp_path: Path,
) -> None:
    assert _run(tmp_path, "--results", str(tmp_path / "out.xlsx")) == 2
    assert not (tmp_path / "j.db").exists()


def test_results_of_a_missing_journal_file_is_an_error_and_creates_nothing(
    tmp_path: Path,
) -> None:
    assert main(["onboard", "--journal", str(tmp_path / "j.db"), "--results", "-"]) == 2
    assert not (tmp_path / "j.db").exists()


async def test_results_are_written_when_the_run_is_interrupted(tmp_path: Path) -> None:
    manifest = write_sample_manifest(tmp_path, 4, name="people.csv")
    journal, out = tmp_path / "j.db", tmp_path / "out.csv"
    async with AvaturnEmulator(processing_delay=60) as emu:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "AVATURN_BASE_URL": emu.base_url,
               "AVATURN_API_KEY": emu.api_key}
        args = [sys.executable, "-m", "avaturn_async", "onboard", str(manifest),
                "--journal", str(journal), "--results", str(out), "--progress", "none"]
        async with await anyio.open_process(args, env=env) as process:
            with anyio.fail_after(60):
                while emu.stats.uploads < 4:  # noqa: ASYNC110 (every row waits now)
                    await anyio.sleep(0.05)
            process.send_signal(signal.SIGINT)
            code = await process.wait()
    assert code == 130
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["state"], bool(r["avatar_id"])) for r in rows] == [("in_progress", True)] * 4


def _version_1_journal(path: Path) -> None:
    """A journal file as the first schema wrote it (no ``extra`` columns)."""
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE runs (id INTEGER PRIMARY KEY, pid INTEGER, host TEXT, source TEXT,
            started_at REAL NOT NULL, finished_at REAL, outcome TEXT);
        INSERT INTO runs (id, started_at, outcome) VALUES (1, 0, 'finished');
        CREATE TABLE rows (key TEXT PRIMARY KEY, line INTEGER NOT NULL,
            run_id INTEGER NOT NULL, state TEXT NOT NULL, user_id TEXT, avatar_id TEXT,
            export_path TEXT, error_kind TEXT, error TEXT,
            possible_orphans INTEGER NOT NULL DEFAULT 0, updated_at REAL NOT NULL);
        INSERT INTO rows (key, line, run_id, state, user_id, avatar_id, updated_at)
            VALUES ('old', 2, 1, 'ready', 'U1', 'A1', 1700000000);
        CREATE TABLE steps (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL,
            key TEXT NOT NULL, step TEXT NOT NULL, detail TEXT, at REAL NOT NULL);
        CREATE TABLE rejects (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL,
            line INTEGER NOT NULL, key TEXT, reason TEXT NOT NULL, at REAL NOT NULL);
        """
    )
    db.close()


async def test_a_version_1_journal_is_migrated_and_its_rows_keep_their_results(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    _version_1_journal(path)
    with Journal(path) as journal:
        run = journal.begin_run()
        journal.register(run, "new", 3, None, json.dumps({"customer_id": "C7"}))
    results = [result async for result in read_results(path)]
    assert [(r.key, r.state, r.user_id, r.extra) for r in results] == [
        ("old", "ready", "U1", {}),
        ("new", "in_progress", None, {"customer_id": "C7"}),
    ]


async def test_read_results_of_a_missing_file_raises_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no journal"):
        _ = [result async for result in read_results(tmp_path / "none.db")]
    assert not (tmp_path / "none.db").exists()


def _big_journal(path: Path, rows: int) -> None:
    with Journal(path) as journal:
        run = journal.begin_run()
        now = time.time()
        journal.connection.executemany(
            "INSERT INTO rows (key, line, run_id, state, user_id, avatar_id, updated_at, extra)"
            " VALUES (?, ?, ?, 'ready', ?, ?, ?, ?)",
            (
                (f"k{n:06d}", n + 2, run, f"U{n:028d}", f"A{n:035d}", now,
                 json.dumps({"customer_id": f"C{n}", "email": f"p{n}@example.com"}))
                for n in range(rows)
            ),
        )


_MEASURE = """
import resource, sys, anyio
from avaturn_async.batch import read_results, write_results

async def warm_up():  # the first page: every import and cache in place
    results = read_results(sys.argv[1])
    await anext(results)
    await results.aclose()

anyio.run(warm_up)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
count = anyio.run(write_results, sys.argv[1], sys.argv[2])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(count, (after - before) * 1024)
"""


@pytest.mark.slow
def test_writing_100000_results_keeps_memory_flat(tmp_path: Path) -> None:
    rows = 100_000
    path = tmp_path / "big.db"
    _big_journal(path, rows)
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), str(tmp_path / "out.csv")],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        check=True, timeout=120,
    )
    written, grown = map(int, done.stdout.split())
    assert written == rows
    # The file holds ~15 MB, the rows as Python objects would be far more; the peak
    # memory of the process grows by about a page of rows, not by the rows.
    assert grown < 8 * 1024 * 1024
    assert (tmp_path / "out.csv").stat().st_size > 10 * 1024 * 1024
