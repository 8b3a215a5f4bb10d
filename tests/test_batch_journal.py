"""The onboarding journal on its own: a temporary SQLite file, no network."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from avaturn_async._cli._onboard import format_status
from avaturn_async.batch import Journal, JournalBusyError, JournalError, RowState


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "onboard.db") as opened:
        yield opened


def test_journal_uses_wal_mode(journal: Journal) -> None:
    mode = sqlite3.connect(journal.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_a_new_row_starts_in_state_new(journal: Journal) -> None:
    run = journal.begin_run()
    registration = journal.register(run, "alice", 2, None)
    assert registration.record is not None
    assert registration.record.state is RowState.NEW


def test_steps_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "onboard.db"
    with Journal(path) as first:
        run = first.begin_run()
        first.register(run, "alice", 2, None)
        first.advance(run, "alice", RowState.USER_CREATED, user_id="U1")
        first.advance(run, "alice", RowState.UPLOADING, avatar_id="A1")
    with Journal(path) as second:
        record = second.record("alice")
    assert record is not None
    assert (record.state, record.user_id, record.avatar_id) == (RowState.UPLOADING, "U1", "A1")


def test_advance_keeps_columns_it_is_not_given(journal: Journal) -> None:
    run = journal.begin_run()
    journal.register(run, "alice", 2, None)
    journal.advance(run, "alice", RowState.USER_CREATED, user_id="U1")
    journal.advance(run, "alice", RowState.AVATAR_REQUESTED)
    record = journal.record("alice")
    assert record is not None
    assert record.user_id == "U1"


def test_a_failure_keeps_the_state_so_a_rerun_resumes_there(journal: Journal) -> None:
    run = journal.begin_run()
    journal.register(run, "alice", 2, None)
    journal.advance(run, "alice", RowState.PROCESSING, user_id="U1", avatar_id="A1")
    journal.fail(run, "alice", "timeout", "avatar not ready after 5 s")
    record = journal.record("alice")
    assert record is not None
    assert (record.state, record.error_kind) == (RowState.PROCESSING, "timeout")
    assert record.failed


def test_advancing_clears_the_last_error(journal: Journal) -> None:
    run = journal.begin_run()
    journal.register(run, "alice", 2, None)
    journal.fail(run, "alice", "network", "cannot connect")
    journal.advance(run, "alice", RowState.USER_REQUESTED)
    record = journal.record("alice")
    assert record is not None
    assert record.error is None


def test_the_same_key_twice_in_one_run_is_rejected_as_duplicate(journal: Journal) -> None:
    run = journal.begin_run()
    journal.register(run, "alice", 2, None)
    second = journal.register(run, "alice", 9, None)
    assert (second.record, second.duplicate_of) == (None, 2)
    assert journal.failures()[-1].reason == "duplicate key 'alice' (first seen on line 2)"


def test_the_same_key_in_a_later_run_is_not_a_duplicate(journal: Journal) -> None:
    first = journal.begin_run()
    journal.register(first, "alice", 2, None)
    journal.end_run(first, "interrupted")
    second = journal.begin_run()
    assert journal.register(second, "alice", 2, None).record is not None


def test_bad_input_is_recorded_with_its_line_and_reason(journal: Journal) -> None:
    run = journal.begin_run()
    journal.register(run, "bob", 7, "side_1 photo not found: b.jpg")
    failure = journal.failures()[0]
    assert (failure.line, failure.key, failure.kind, failure.reason) == (
        7,
        "bob",
        "input",
        "side_1 photo not found: b.jpg",
    )


def test_bad_input_does_not_touch_a_finished_row(journal: Journal) -> None:
    run = journal.begin_run()
    journal.register(run, "alice", 2, None)
    journal.advance(run, "alice", RowState.READY, user_id="U1", avatar_id="A1")
    journal.end_run(run, "finished")
    rerun = journal.begin_run()
    record = journal.register(rerun, "alice", 2, "frontal photo not found: a.jpg").record
    assert record is not None
    assert record.is_done(export=False)
    assert record.error is None


def test_an_input_error_is_cleared_when_the_row_reads_well_again(journal: Journal) -> None:
    run = journal.begin_run()
    journal.register(run, "bob", 7, "side_1 photo not found: b.jpg")
    journal.end_run(run, "finished")
    rerun = journal.begin_run()
    record = journal.register(rerun, "bob", 7, None).record
    assert record is not None
    assert record.error is None


def test_url_query_strings_are_never_stored(journal: Journal) -> None:
    run = journal.begin_run()
    journal.register(run, "alice", 2, None)
    journal.fail(run, "alice", "api", "409 at https://up.example/x?signature=SECRET")
    dump = "\n".join(sqlite3.connect(journal.path).iterdump())
    assert "SECRET" not in dump


def test_possible_orphans_are_counted_per_row(journal: Journal) -> None:
    run = journal.begin_run()
    journal.register(run, "alice", 2, None)
    journal.note(run, "alice", "possible_orphan_user", "no answer", orphan=True)
    record = journal.record("alice")
    assert record is not None
    assert record.possible_orphans == 1
    assert journal.status().possible_orphans == 1


def test_status_counts_rows_by_state_and_failures(journal: Journal) -> None:
    run = journal.begin_run()
    for key in ("a", "b", "c"):
        journal.register(run, key, 1, None)
    journal.advance(run, "a", RowState.READY)
    journal.advance(run, "b", RowState.AVATAR_FAILED)
    journal.reject(run, 9, None, "missing key")
    status = journal.status()
    assert (status.rows, status.by_state, status.failed, status.rejected_last_run) == (
        3,
        {"ready": 1, "avatar_failed": 1, "new": 1},
        1,
        1,
    )


def test_status_report_is_clean_only_when_every_row_is_finished(journal: Journal) -> None:
    run = journal.begin_run()
    journal.register(run, "a", 2, None)
    journal.register(run, "b", 3, None)
    journal.advance(run, "a", RowState.READY)
    assert format_status(journal)[1] is False
    journal.advance(run, "b", RowState.EXPORTED)
    assert format_status(journal)[1] is True


def test_status_report_lists_failures_with_line_and_reason(journal: Journal) -> None:
    run = journal.begin_run()
    journal.register(run, "bob", 7, "body_type must be 'male' or 'female', not 'x'")
    text, _ = format_status(journal)
    expected = "invalid rows:\n    line 7 key bob: body_type must be 'male' or 'female', not 'x'"
    assert expected in text


def test_steps_log_every_transition_in_order(journal: Journal) -> None:
    run = journal.begin_run()
    journal.register(run, "alice", 2, None)
    journal.advance(run, "alice", RowState.USER_REQUESTED)
    journal.advance(run, "alice", RowState.USER_CREATED, user_id="U1")
    assert [step for step, _ in journal.steps("alice")] == ["user_requested", "user_created"]


def test_a_live_run_owns_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "onboard.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from avaturn_async.batch import Journal; "
            f"Journal({str(path)!r}).begin_run(); print('ok', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"ok"
        with Journal(path) as journal, pytest.raises(JournalBusyError):
            journal.begin_run()
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_run_does_not_block_the_next(tmp_path: Path) -> None:
    path = tmp_path / "onboard.db"
    code = f"from avaturn_async.batch import Journal; Journal({str(path)!r}).begin_run()"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    with Journal(path) as journal:
        assert journal.begin_run() == 2


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database, just some text that is long enough to matter\n" * 20)
    with pytest.raises(JournalError):
        Journal(path)
