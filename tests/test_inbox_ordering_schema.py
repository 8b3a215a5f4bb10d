"""Ordered dispatch's schema: inboxes written before it keep working (SQLite and
PostgreSQL upgrade in place, once), and PostgreSQL stores one avatar's events in
id order across replicas (a per-key advisory lock)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import anyio
import asyncpg

from avaturn_async.postgres import PostgresInbox, schema_version
from avaturn_async.testing import make_render_ready
from avaturn_async.webhooks import InboxStatus, SQLiteInboxStore, WebhookInbox
from tests.inbox_support import deliver, eventually, recording_router

# The inbox as the SDK wrote it before ordered dispatch (SQLite user_version 1,
# PostgreSQL component "inbox" at version 1): frozen here on purpose.
SQLITE_V1 = """
CREATE TABLE webhook_inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, dedupe_key TEXT NOT NULL UNIQUE,
    webhook_id TEXT, webhook_timestamp INTEGER, event_type TEXT NOT NULL,
    body BLOB NOT NULL, status TEXT NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'done', 'dead')), attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL, claim_token TEXT, last_error TEXT,
    received_at REAL NOT NULL, finished_at REAL);
CREATE INDEX webhook_inbox_due ON webhook_inbox (status, next_attempt_at);
CREATE INDEX webhook_inbox_finished ON webhook_inbox (status, finished_at);
PRAGMA user_version = 1;
"""
POSTGRES_V1 = """
CREATE TABLE avaturn_schema (component text PRIMARY KEY, version integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO avaturn_schema (component, version) VALUES ('inbox', 1);
CREATE TABLE avaturn_webhook_inbox (
    id bigserial PRIMARY KEY, dedupe_key text NOT NULL UNIQUE, webhook_id text,
    webhook_timestamp bigint, event_type text NOT NULL, body bytea NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'dead')),
    attempts integer NOT NULL DEFAULT 0, next_attempt_at timestamptz NOT NULL,
    claim_token text, last_error text, received_at timestamptz NOT NULL,
    finished_at timestamptz);
CREATE INDEX avaturn_webhook_inbox_due ON avaturn_webhook_inbox (next_attempt_at, id)
    WHERE status = 'pending';
CREATE INDEX avaturn_webhook_inbox_done ON avaturn_webhook_inbox (finished_at)
    WHERE status = 'done';
"""
OLD_BODY = make_render_ready(avatar_id="avatar-old", render_id="old")
OLD_ROW = (
    "INSERT INTO {table} (dedupe_key, webhook_id, event_type, body, next_attempt_at, "
    "received_at) VALUES ({values})"
)
#: The class of the advisory locks an insert takes per ordering key ("avor").
ORDER_LOCK_CLASS = 0x61766F72


def old_sqlite_inbox(path: Path) -> None:
    """A version 1 SQLite inbox holding one pending event."""
    from avaturn_async.testing import event_to_bytes

    db = sqlite3.connect(path)
    db.executescript(SQLITE_V1)
    sql = OLD_ROW.format(table="webhook_inbox", values="?, ?, ?, ?, ?, ?")
    db.execute(sql, ("id:old", "old", "render.ready", event_to_bytes(OLD_BODY), 1.0, 1.0))
    db.commit()
    db.close()


async def test_a_version_1_sqlite_inbox_is_upgraded_and_its_events_still_dispatch(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inbox.db"
    old_sqlite_inbox(path)
    router, calls = recording_router()
    async with WebhookInbox(path) as inbox:
        await deliver(inbox, make_render_ready(avatar_id="avatar-new"))
        await inbox.dispatch_due(router, limit=10)
        records = {r.webhook_id: r for r in await inbox.list()}
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert (version, len(calls)) == (2, 2)
    assert records["old"].ordering_key is None
    assert {r.status for r in records.values()} == {InboxStatus.DONE}


def test_sqlite_inboxes_opened_at_once_upgrade_a_version_1_file_once(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    old_sqlite_inbox(path)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            SQLiteInboxStore(path).close()
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    columns = [row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(webhook_inbox)")]
    assert (errors, columns.count("ordering_key")) == ([], 1)


async def test_a_version_1_postgres_inbox_is_upgraded_and_its_events_still_dispatch(
    postgres_dsn: str,
) -> None:
    from avaturn_async.testing import event_to_bytes

    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute(POSTGRES_V1)
        values = "'id:old', 'old', 'render.ready', $1, now(), now()"
        await conn.execute(
            OLD_ROW.format(table="avaturn_webhook_inbox", values=values),
            event_to_bytes(OLD_BODY),
        )
        router, calls = recording_router()
        async with PostgresInbox(postgres_dsn) as inbox:
            await deliver(inbox, make_render_ready(avatar_id="avatar-new"))
            await inbox.dispatch_due(router, limit=10)
            counts = await inbox.counts()
        assert (await schema_version(conn, "inbox"), len(calls)) == (2, 2)
        assert counts == {"pending": 0, "done": 2, "dead": 0}
    finally:
        await conn.close()


async def test_postgres_insert_of_an_avatar_waits_for_that_avatars_key_lock_only(
    postgres_dsn: str,
) -> None:
    # Two replicas (a receiver commits its deliveries in groups, one group at a time,
    # so one waiting insert holds up the rest of its own receiver).
    holder = await asyncpg.connect(postgres_dsn)
    stored: list[str] = []
    async with PostgresInbox(postgres_dsn) as first, PostgresInbox(postgres_dsn) as second:

        async def store(inbox: PostgresInbox, avatar_id: str) -> None:
            await deliver(inbox, make_render_ready(avatar_id=avatar_id))
            stored.append(avatar_id)

        async def waiting_for_the_lock() -> bool:
            query = (
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
            )
            return bool(await holder.fetchval(query))

        try:
            transaction = holder.transaction()
            await transaction.start()
            await holder.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext('avatar-held'))", ORDER_LOCK_CLASS
            )
            async with anyio.create_task_group() as group:
                group.start_soon(store, first, "avatar-held")
                await eventually(waiting_for_the_lock)
                await store(second, "avatar-free")
                assert stored == ["avatar-free"]
                await transaction.rollback()
        finally:
            await holder.close()
    assert stored == ["avatar-free", "avatar-held"]
