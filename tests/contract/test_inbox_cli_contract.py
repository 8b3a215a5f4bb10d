"""``avaturn inbox`` against every inbox store: listing, JSON, replay, purge."""

from __future__ import annotations

import json

import pytest

from avaturn_async._cli import main
from avaturn_async.postgres import redact_dsn
from avaturn_async.testing import make_webhook_secret
from tests.inbox_support import make_inbox

SECRET = make_webhook_secret()


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["inbox", *args])
    return code, capsys.readouterr().out


def test_cli_lists_counts_and_every_event(
    capsys: pytest.CaptureFixture[str], inbox_database: str
) -> None:
    db = inbox_database
    make_inbox(db, done=1, dead=1, pending=2)
    code, out = run_cli(capsys, "--db", db)
    lines = out.splitlines()
    assert (code, lines[0]) == (0, f"{redact_dsn(db)}: 2 pending, 1 done, 1 dead")
    assert lines[1].split()[:4] == ["ID", "STATUS", "ATTEMPTS", "EVENT"]
    assert len(lines) == 2 + 4
    assert "RuntimeError: handler down" in out


def test_cli_status_filter_lists_only_that_status(
    capsys: pytest.CaptureFixture[str], inbox_database: str
) -> None:
    db = inbox_database
    ids = make_inbox(db, done=2, dead=1)
    code, out = run_cli(capsys, "--db", db, "--status", "dead", "--json")
    events = json.loads(out)["events"]
    assert (code, [e["id"] for e in events]) == (0, ids["dead"])


def test_cli_json_shows_records_without_bodies(
    capsys: pytest.CaptureFixture[str], inbox_database: str
) -> None:
    db = inbox_database
    make_inbox(db, dead=1)
    code, out = run_cli(capsys, "--db", db, "--json")
    document = json.loads(out)
    (event,) = document["events"]
    assert (code, document["counts"]) == (0, {"pending": 0, "done": 0, "dead": 1})
    assert set(event) == {
        "id",
        "webhook_id",
        "event_type",
        "status",
        "attempts",
        "last_error",
        "received_at",
        "next_attempt_at",
        "finished_at",
        "webhook_timestamp",
        "ordering_key",
    }
    assert (event["status"], event["last_error"]) == ("dead", "RuntimeError: handler down")


def test_cli_replay_dead_moves_every_dead_event_to_pending(
    capsys: pytest.CaptureFixture[str], inbox_database: str
) -> None:
    db = inbox_database
    ids = make_inbox(db, done=1, dead=2)
    code, out = run_cli(capsys, "--db", db, "--replay-dead", "--json")
    document = json.loads(out)
    assert (code, sorted(document["replayed"])) == (0, ids["dead"])
    assert document["counts"] == {"pending": 2, "done": 1, "dead": 0}


def test_cli_replay_ids_replays_only_those(
    capsys: pytest.CaptureFixture[str], inbox_database: str
) -> None:
    db = inbox_database
    ids = make_inbox(db, dead=2)
    code, out = run_cli(capsys, "--db", db, "--replay", str(ids["dead"][0]), "--json")
    assert (code, json.loads(out)["counts"]) == (0, {"pending": 1, "done": 0, "dead": 1})


def test_cli_replay_of_an_event_that_is_not_dead_exits_1(
    capsys: pytest.CaptureFixture[str], inbox_database: str
) -> None:
    db = inbox_database
    ids = make_inbox(db, done=1)
    code, out = run_cli(capsys, "--db", db, "--replay", str(ids["done"][0]))
    assert code == 1
    assert f"not dead, not replayed: {ids['done'][0]}" in out


def test_cli_purge_deletes_done_events_older_than_the_given_days(
    capsys: pytest.CaptureFixture[str], inbox_database: str
) -> None:
    make_inbox(inbox_database, done=2, dead=1)
    kept, _ = run_cli(capsys, "--db", inbox_database, "--purge-older-than", "1", "--json")
    code, out = run_cli(capsys, "--db", inbox_database, "--purge-older-than", "0", "--json")
    document = json.loads(out)
    assert (kept, code, document["purged"]) == (0, 0, 2)
    assert document["counts"] == {"pending": 0, "done": 0, "dead": 1}
