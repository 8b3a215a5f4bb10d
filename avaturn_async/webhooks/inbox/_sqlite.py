"""The SQLite implementation of :class:`~avaturn_async.webhooks.InboxStore`.

One file, one table. :class:`SQLiteInboxTable` is the synchronous core, used
by one thread only: :class:`~avaturn_async.webhooks.SQLiteInboxStore`
(``inbox._sqlite_store``) confines it to the worker thread of an
``avaturn_async._sqlite.SQLiteThread``, which runs each of its writes in a
``BEGIN IMMEDIATE`` transaction and *group-commits* concurrent deliveries.
Several processes may share the file: a busy database is waited for
(``busy_timeout``).

Durability: WAL mode with ``synchronous=FULL`` by default (``avaturn_async._sqlite``
explains both levels, group commit, and what a kill, a power loss or a failed
commit keeps). The inbox commits a delivery and *then* answers 2xx, after which
the sender never retries: a commit lost to a power cut would be a webhook lost
for good. So with ``FULL`` every commit syncs the WAL before it returns, and a
receiver answers 2xx only after the ``COMMIT`` holding its delivery (and its
fsync) returned: an unsynced tail, or a transaction rolled back, holds only
unacknowledged deliveries, which their senders retry; a delivery answered 503
(its batch failed, then it failed alone) was not stored. ``synchronous="normal"``
trades that guarantee for speed where only process crashes matter.

Stored per delivery: the raw body, the ``webhook-id`` and
``webhook-timestamp`` values, the event type and bookkeeping. Never the
signature header, the query string (a shared token may ride there) or any
other header.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from ..._sqlite import transaction
from ._stats import InboxStats
from ._store import LEASE_LOST, Claimed, Delivery, InboxError, InboxRecord, InboxStatus, utc

__all__ = ["SCHEMA_VERSION", "SQLiteInboxTable", "Synchronous"]

SCHEMA_VERSION = 2
Synchronous = Literal["full", "normal"]

# Step n takes a file from user_version n-1 to n. Step 1 says IF NOT EXISTS: files
# written before the version was recorded hold its table at user_version 0.
_STEPS = (
    """
    CREATE TABLE IF NOT EXISTS webhook_inbox (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        dedupe_key        TEXT    NOT NULL UNIQUE,
        webhook_id        TEXT,
        webhook_timestamp INTEGER,
        event_type        TEXT    NOT NULL,
        body              BLOB    NOT NULL,
        status            TEXT    NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'done', 'dead')),
        attempts          INTEGER NOT NULL DEFAULT 0,
        next_attempt_at   REAL    NOT NULL,
        claim_token       TEXT,
        last_error        TEXT,
        received_at       REAL    NOT NULL,
        finished_at       REAL
    );
    CREATE INDEX IF NOT EXISTS webhook_inbox_due ON webhook_inbox (status, next_attempt_at);
    CREATE INDEX IF NOT EXISTS webhook_inbox_finished ON webhook_inbox (status, finished_at)
    """,
    # Ordered dispatch: an event's place in its key's queue is ordering_seq, or its id
    # when NULL (every row stored before this step, and every row until replayed).
    """
    ALTER TABLE webhook_inbox ADD COLUMN ordering_key TEXT;
    ALTER TABLE webhook_inbox ADD COLUMN ordering_seq INTEGER;
    CREATE INDEX webhook_inbox_order ON webhook_inbox
        (ordering_key, coalesce(ordering_seq, id)) WHERE status = 'pending'
    """,
)
assert len(_STEPS) == SCHEMA_VERSION

# Claimable: due, and first in its key's queue among pending events (a claimed event
# stays pending, so it holds back the rest of its key until done or dead).
_CLAIMABLE = """
    SELECT id, body, attempts, event_type, ordering_key FROM webhook_inbox AS t
    WHERE status = 'pending' AND next_attempt_at <= ?
      AND (ordering_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM webhook_inbox AS e
          WHERE e.ordering_key = t.ordering_key AND e.status = 'pending'
            AND coalesce(e.ordering_seq, e.id) < coalesce(t.ordering_seq, t.id)))
    ORDER BY next_attempt_at, id LIMIT ?
"""

# Not due before the first pending event of its key is, when that one waits for a retry:
# it cannot run before, and so it stays out of the claims' scan meanwhile (a hint for
# speed only; the claim's test is what keeps the order).
_INSERT = """
    INSERT OR IGNORE INTO webhook_inbox (dedupe_key, webhook_id, webhook_timestamp,
        event_type, body, next_attempt_at, received_at, ordering_key)
    VALUES (:dedupe_key, :webhook_id, :webhook_timestamp, :event_type, :body,
        max(:received_at, coalesce((
        SELECT CASE WHEN claim_token IS NULL THEN next_attempt_at END FROM webhook_inbox
        WHERE ordering_key = :ordering_key AND status = 'pending'
        ORDER BY coalesce(ordering_seq, id) LIMIT 1), 0)), :received_at, :ordering_key)
"""
# After a failed attempt of an ordered event, the pending events behind it are not due
# before its retry: each claim would otherwise walk past all of them until then.
_HOLD_BACK = """
    UPDATE webhook_inbox SET next_attempt_at = ?
    WHERE ordering_key = ? AND status = 'pending' AND claim_token IS NULL
      AND next_attempt_at < ? AND id <> ?
"""

_FIELDS = [field.name for field in attrs.fields(InboxRecord)]
_RECORD_COLUMNS = ", ".join(_FIELDS)  # the table's columns are the record's fields


def _record(row: Sequence[Any]) -> InboxRecord:
    got = dict(zip(_FIELDS, row, strict=True))
    got["status"] = status = InboxStatus(got["status"])
    got["received_at"] = utc(got["received_at"])
    got["next_attempt_at"] = utc(got["next_attempt_at"]) if status is InboxStatus.PENDING else None
    if got["finished_at"] is not None:
        got["finished_at"] = utc(got["finished_at"])
    return InboxRecord(**got)


def _connect(
    path: str | os.PathLike[str], *, create: bool, busy_timeout: float
) -> sqlite3.Connection:
    """Open the file; with ``create=False`` a missing file is an error, not a new inbox."""
    text = os.fspath(path)
    if create or text == ":memory:":
        target, uri = text, False
    else:
        if not Path(text).is_file():
            raise InboxError(f"{text}: no such inbox database")
        target, uri = Path(text).absolute().as_uri() + "?mode=rw", True
    return sqlite3.connect(target, uri=uri, isolation_level=None, timeout=busy_timeout)


class SQLiteInboxTable:
    """Synchronous access to the ``webhook_inbox`` table, from the thread that made it;
    each write in a transaction (``SQLiteThread.write``). ``create=False`` refuses to
    create a missing file or table (for tools that inspect an existing inbox)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "full",
        create: bool = True,
        busy_timeout: float = 10.0,
    ) -> None:
        if synchronous not in ("full", "normal"):
            raise InboxError(f"synchronous must be 'full' or 'normal', not {synchronous!r}")
        self._db = _connect(path, create=create, busy_timeout=busy_timeout)
        try:
            self._setup(synchronous, create)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise InboxError(f"{os.fspath(path)} is not a usable webhook inbox: {exc}") from None
        except BaseException:
            self._db.close()
            raise

    def _setup(self, synchronous: Synchronous, create: bool) -> None:
        db = self._db
        # Checked before anything is written: a wrong --db must stay untouched.
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise InboxError(f"inbox schema {version} is newer than this SDK ({SCHEMA_VERSION})")
        if not create and not self._has_table():
            raise InboxError("the database holds no webhook inbox")
        db.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the file
        # Per connection: every process that writes the file sets it for itself.
        db.execute(f"PRAGMA synchronous={synchronous.upper()}")
        with transaction(db):
            # Read again under the write lock: another process may have just upgraded.
            applied = db.execute("PRAGMA user_version").fetchone()[0]
            for step in _STEPS[applied:]:
                for statement in filter(str.strip, step.split(";")):
                    db.execute(statement)
            if applied < SCHEMA_VERSION:
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _has_table(self) -> bool:
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'webhook_inbox'"
        return self._db.execute(query).fetchone() is not None

    @property
    def connection(self) -> sqlite3.Connection:
        return self._db

    def close(self) -> None:
        self._db.close()

    # -- receiving ---------------------------------------------------------------------

    def insert(self, delivery: Delivery) -> int | None:
        """Store a delivery; its new id, or ``None`` when its ``dedupe_key`` is known."""
        cursor = self._db.execute(_INSERT, attrs.asdict(delivery, recurse=False))
        return cursor.lastrowid if cursor.rowcount == 1 else None

    # -- the worker's side -------------------------------------------------------------

    def claim(
        self, *, now: float, lease: float, limit: int, max_attempts: int, token: str
    ) -> list[Claimed]:
        """Lease up to ``limit`` due events (oldest due first), counting an attempt for each.

        An event with an ordering key is claimable only first in its key's queue.
        A due event still holding a claim is one whose worker died or overran
        its lease: it is claimed again, unless that was its last attempt, in
        which case it goes dead (a poison event must not crash workers forever).
        """

        db = self._db
        db.execute(
            "UPDATE webhook_inbox SET status = 'dead', claim_token = NULL, "
            "last_error = ?, finished_at = ? WHERE status = 'pending' AND "
            "claim_token IS NOT NULL AND next_attempt_at <= ? AND attempts >= ?",
            (LEASE_LOST, now, now, max_attempts),
        )
        rows = db.execute(_CLAIMABLE, (now, limit)).fetchall()
        # The lease is the due time: an unfinished claim becomes due again.
        db.executemany(
            "UPDATE webhook_inbox SET claim_token = ?, attempts = attempts + 1, "
            "next_attempt_at = ? WHERE id = ?",
            [(token, now + lease, row[0]) for row in rows],
        )
        return [
            Claimed(id=r[0], body=bytes(r[1]), attempts=r[2] + 1, token=token, event_type=r[3],
                    ordering_key=r[4])
            for r in rows
        ]

    def complete(self, claimed: Claimed, *, now: float) -> bool:
        """Mark done; ``False`` if the claim was lost (the lease expired and was re-taken)."""
        return self._finish("status = 'done', finished_at = ?", (now,), claimed)

    def fail(self, claimed: Claimed, *, now: float, error: str, retry_at: float | None) -> bool:
        """Record a failed attempt: due again at ``retry_at``, or dead when it is ``None``."""
        if retry_at is None:
            return self._finish(
                "status = 'dead', last_error = ?, finished_at = ?", (error, now), claimed
            )
        failed = self._finish("last_error = ?, next_attempt_at = ?", (error, retry_at), claimed)
        if failed and claimed.ordering_key is not None:
            self._db.execute(_HOLD_BACK, (retry_at, claimed.ordering_key, retry_at, claimed.id))
        return failed

    def renew(self, claimed: Claimed, *, now: float, lease: float) -> bool:
        """Extend a claim to ``now + lease``; ``False`` if it was lost."""
        return self._finish("next_attempt_at = ?", (now + lease,), claimed, keep=True)

    def release(self, claimed: Claimed, *, now: float) -> bool:
        """Give a claim back unfinished (the worker is stopping): due now, attempt not counted."""
        return self._finish("attempts = attempts - 1, next_attempt_at = ?", (now,), claimed)

    def _finish(
        self, assignments: str, params: tuple[Any, ...], claimed: Claimed, *, keep: bool = False
    ) -> bool:
        token = "" if keep else ", claim_token = NULL"
        sql = (
            f"UPDATE webhook_inbox SET {assignments}{token} "
            "WHERE id = ? AND claim_token = ? AND status = 'pending'"
        )
        return self._db.execute(sql, (*params, claimed.id, claimed.token)).rowcount == 1

    # -- inspection and maintenance ----------------------------------------------------

    def counts(self) -> dict[str, int]:
        """How many events are in each status (every status is present)."""
        return dict(self.stats(now=0.0).counts)

    def stats(self, *, now: float) -> InboxStats:
        """One ``GROUP BY`` over the ``(status, ...)`` index."""
        rows = self._db.execute(
            "SELECT status, COUNT(*), MIN(received_at) FROM webhook_inbox GROUP BY status"
        ).fetchall()
        oldest = next((row[2] for row in rows if row[0] == InboxStatus.PENDING.value), None)
        counts = {row[0]: row[1] for row in rows}
        return InboxStats.of(counts, oldest_pending_received_at=oldest, now=now)

    def ping(self) -> None:
        self._db.execute("SELECT 1").fetchone()

    def records(self, *, status: InboxStatus | None, limit: int) -> list[InboxRecord]:
        """Newest first, optionally only one ``status``."""
        where, params = ("WHERE status = ?", (status.value,)) if status is not None else ("", ())
        sql = f"SELECT {_RECORD_COLUMNS} FROM webhook_inbox {where} ORDER BY id DESC LIMIT ?"
        return [_record(row) for row in self._db.execute(sql, (*params, limit))]

    def replay(self, ids: Iterable[int] | None, *, now: float) -> list[int]:
        """Dead events (those of ``ids``, or all when ``None``) back to pending, attempts 0.

        Each takes a new place at the back of its key's queue (so it never overtakes,
        or runs beside, an event of its key that is pending now), in their old order.
        """

        db = self._db
        if ids is None:
            query = "SELECT id FROM webhook_inbox WHERE status = 'dead' ORDER BY id"
            chosen = [row[0] for row in db.execute(query)]
        else:
            chosen = [i for i in dict.fromkeys(ids) if self._is_dead(i)]
        placed = sorted(chosen, key=self._place)
        db.executemany(
            "UPDATE webhook_inbox SET status = 'pending', attempts = 0, "
            "next_attempt_at = ?, claim_token = NULL, finished_at = NULL, "
            "ordering_seq = ? WHERE id = ?",
            [(now, self._next_place(), event_id) for event_id in placed],
        )
        return chosen

    def _place(self, event_id: int) -> int:
        query = "SELECT coalesce(ordering_seq, id) FROM webhook_inbox WHERE id = ?"
        return int(self._db.execute(query, (event_id,)).fetchone()[0])

    def _next_place(self) -> int:
        """A place after every id given so far, and the next id after it: the table's
        AUTOINCREMENT counter (``sqlite_sequence``) is moved past it."""
        db = self._db
        db.execute(
            "INSERT INTO sqlite_sequence (name, seq) "
            "SELECT 'webhook_inbox', (SELECT coalesce(max(id), 0) FROM webhook_inbox) "
            "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'webhook_inbox')"
        )
        db.execute("UPDATE sqlite_sequence SET seq = seq + 1 WHERE name = 'webhook_inbox'")
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'webhook_inbox'")
        return int(row.fetchone()[0])

    def _is_dead(self, event_id: int) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM webhook_inbox WHERE id = ? AND status = 'dead'", (event_id,)
        ).fetchone()
        return row is not None

    def purge(self, *, finished_before: float) -> int:
        """Delete done events finished before ``finished_before``; how many were deleted."""
        sql = "DELETE FROM webhook_inbox WHERE status = 'done' AND finished_at < ?"
        return int(self._db.execute(sql, (finished_before,)).rowcount)
