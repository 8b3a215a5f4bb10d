"""WebhookInbox on SQLite: what is specific to the SQLite store (the file, WAL, group commit).

The behaviours every store shares are in ``tests/contract/test_inbox_contract.py``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import anyio
import pytest

from avaturn_async._errors import ConfigurationError
from avaturn_async.testing import make_render_ready, sign_webhook
from avaturn_async.webhooks import (
    GroupCommit,
    InboxError,
    InMemoryIdempotencyStore,
    WebhookInbox,
    WebhookPipeline,
    WebhookRouter,
    WebhookVerifier,
    exponential_backoff,
)
from tests.inbox_support import SECRET, FakeClock, deliver, recording_router


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "inbox.db"


@pytest.fixture
def inbox(db_path: Path) -> Iterator[WebhookInbox]:
    with WebhookInbox(db_path, now=FakeClock()) as opened:
        yield opened


async def test_pipeline_with_inbox_answers_202_and_stores_without_dispatching() -> None:
    router, calls = recording_router()
    with WebhookInbox(":memory:") as inbox:
        body, headers = sign_webhook(make_render_ready(), SECRET)
        answer = await WebhookPipeline(WebhookVerifier(SECRET), router, inbox=inbox).handle(
            body, headers
        )
        assert (answer.status, answer.outcome, calls) == (202, "stored", [])
        assert await inbox.counts() == {"pending": 1, "done": 0, "dead": 0}


async def test_stored_row_keeps_no_signature(inbox: WebhookInbox, db_path: Path) -> None:
    body, headers = sign_webhook(make_render_ready(), SECRET, msg_id="msg_kept")
    await WebhookPipeline(WebhookVerifier(SECRET), WebhookRouter(), inbox=inbox).handle(
        body, headers
    )
    with sqlite3.connect(db_path) as db:
        row = db.execute("SELECT * FROM webhook_inbox").fetchone()
    stored = repr(row)
    signature = headers["webhook-signature"].split(",", 1)[1]
    assert signature not in stored
    assert SECRET not in stored
    assert (row[2], row[5]) == ("msg_kept", body)  # webhook_id, body


async def test_inbox_failure_is_answered_503(tmp_path: Path) -> None:
    inbox = WebhookInbox(tmp_path / "closed.db")
    inbox.close()
    answer, _ = await deliver(inbox)
    assert (answer.status, answer.outcome) == (503, "store_failed")


def test_inbox_refuses_a_separate_idempotency_store(inbox: WebhookInbox) -> None:
    with pytest.raises(ConfigurationError):
        WebhookPipeline(
            WebhookVerifier(SECRET), WebhookRouter(), inbox=inbox, store=InMemoryIdempotencyStore()
        )


def test_opening_a_missing_inbox_without_create_raises(tmp_path: Path) -> None:
    with pytest.raises(InboxError):
        WebhookInbox(tmp_path / "absent.db", create=False)
    assert not (tmp_path / "absent.db").exists()


def test_inbox_database_is_in_wal_mode(inbox: WebhookInbox, db_path: Path) -> None:
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_exponential_backoff_grows_by_the_factor_up_to_the_maximum() -> None:
    backoff = exponential_backoff(5.0, factor=3.0, maximum=100.0)
    assert [backoff(n) for n in (1, 2, 3, 4, 10_000)] == [5.0, 15.0, 45.0, 100.0, 100.0]


# -- group commit -----------------------------------------------------------------------


async def test_deliveries_waiting_during_a_commit_share_the_next_commit() -> None:
    release, batches = anyio.Event(), list[list[int]]()

    async def commit(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        if len(batches) == 1:
            await release.wait()
        return [item * 10 for item in items]

    group: GroupCommit[int, int] = GroupCommit(commit)
    results: dict[int, int] = {}

    async def submit(item: int) -> None:
        results[item] = await group.submit(item)

    async with anyio.create_task_group() as tasks:
        for item in range(6):
            tasks.start_soon(submit, item)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert batches == [[0], [1, 2, 3, 4, 5]]
    assert results == {item: item * 10 for item in range(6)}


async def test_a_failed_commit_fails_every_delivery_in_it_and_only_those() -> None:
    release = anyio.Event()
    calls = 0

    async def commit(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            await release.wait()
            return list(items)
        raise OSError("disk I/O error")

    group: GroupCommit[int, int] = GroupCommit(commit)
    outcomes: dict[int, str] = {}

    async def submit(item: int) -> None:
        try:
            await group.submit(item)
        except OSError:
            outcomes[item] = "failed"
        else:
            outcomes[item] = "committed"

    async with anyio.create_task_group() as tasks:
        for item in range(4):
            tasks.start_soon(submit, item)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert outcomes == {0: "committed", 1: "failed", 2: "failed", 3: "failed"}


async def test_a_delivery_failing_in_sqlite_is_answered_503_alone(db_path: Path) -> None:
    inbox = WebhookInbox(db_path)
    # The injected failure is real: SQLite aborts the transaction on the poisoned row.
    with sqlite3.connect(db_path) as db:
        db.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON webhook_inbox WHEN NEW.webhook_id = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )
    statuses: dict[str, int] = {}

    async def send(msg_id: str) -> None:
        answer, _ = await deliver(inbox, msg_id=msg_id)
        statuses[msg_id] = answer.status

    async with anyio.create_task_group() as tasks:
        for msg_id in ("a", "poison", "b"):  # committed together, or one by one
            tasks.start_soon(send, msg_id)
    records = await inbox.list()
    inbox.close()
    assert statuses == {"a": 202, "poison": 503, "b": 202}
    assert sorted(record.webhook_id or "" for record in records) == ["a", "b"]
