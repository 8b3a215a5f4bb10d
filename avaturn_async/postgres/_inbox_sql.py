"""The PostgreSQL inbox's schema and statements (see ``_inbox`` for the rules)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..webhooks import Delivery, InboxRecord, InboxStats, InboxStatus

__all__ = [
    "CLAIM",
    "COMPONENT",
    "EXPIRE",
    "INBOX_CHANNEL",
    "INSERT",
    "RECLAIM",
    "RECORD_COLUMNS",
    "STATS",
    "STEPS",
    "TABLE",
    "record",
    "stats_of",
    "unstorable_field",
]

INBOX_CHANNEL = "avaturn_webhook_inbox"
"""The ``LISTEN/NOTIFY`` channel that wakes workers (lower case: ``LISTEN`` folds case)."""
TABLE = "avaturn_webhook_inbox"
COMPONENT = "inbox"

STEPS = [
    f"""
    CREATE TABLE {TABLE} (
        id                bigserial   PRIMARY KEY,
        dedupe_key        text        NOT NULL UNIQUE,
        webhook_id        text,
        webhook_timestamp bigint,
        event_type        text        NOT NULL,
        body              bytea       NOT NULL,
        status            text        NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'done', 'dead')),
        attempts          integer     NOT NULL DEFAULT 0,
        next_attempt_at   timestamptz NOT NULL,
        claim_token       text,
        last_error        text,
        received_at       timestamptz NOT NULL,
        finished_at       timestamptz
    );
    CREATE INDEX {TABLE}_due ON {TABLE} (next_attempt_at, id) WHERE status = 'pending';
    CREATE INDEX {TABLE}_done ON {TABLE} (finished_at) WHERE status = 'done';
    ALTER TABLE {TABLE} SET (autovacuum_vacuum_scale_factor = 0.01, fillfactor = 70)
    """,
]

INSERT = f"""
WITH ins AS (
    INSERT INTO {TABLE} (dedupe_key, webhook_id, webhook_timestamp, event_type, body,
                          next_attempt_at, received_at)
    SELECT k, w, ts, e, b, r, r
    FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bytea[],
                $6::timestamptz[]) WITH ORDINALITY AS d(k, w, ts, e, b, r, n)
    ORDER BY n
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id, dedupe_key
)
SELECT id, dedupe_key, pg_notify('{INBOX_CHANNEL}', '')::text FROM ins
"""

EXPIRE = f"""
UPDATE {TABLE} SET status = 'dead', claim_token = NULL, last_error = $1, finished_at = $2
WHERE status = 'pending' AND claim_token IS NOT NULL AND next_attempt_at <= $2
  AND attempts >= $3
"""

# $1 now, $2 limit, $3 token, $4 lease end, $5 max attempts.
_DUE = f"""
    SELECT id FROM {TABLE}
    WHERE status = 'pending' AND next_attempt_at <= $1
      AND NOT (claim_token IS NOT NULL AND attempts >= $5)
    ORDER BY next_attempt_at, id
"""
_RETURNING = "RETURNING t.id, t.body, t.attempts, t.event_type, t.next_attempt_at"

CLAIM = f"""
WITH due AS ({_DUE} LIMIT $2 FOR UPDATE SKIP LOCKED)
UPDATE {TABLE} AS t
SET claim_token = $3, attempts = t.attempts + 1, next_attempt_at = $4
FROM due WHERE t.id = due.id
{_RETURNING}
"""

# The same claim, repeated after its answer was lost: the rows already holding the
# call's token are its own (their attempt is counted once), and only the rest of the
# limit is filled with due rows. Run for retries only: finding the token reads every
# pending row, which the first attempt need not do.
RECLAIM = f"""
WITH own AS (
    SELECT id FROM {TABLE} WHERE status = 'pending' AND claim_token = $3
), due AS ({_DUE} LIMIT greatest(0, $2 - (SELECT count(*) FROM own)) FOR UPDATE SKIP LOCKED),
chosen AS (SELECT id FROM own UNION SELECT id FROM due)
UPDATE {TABLE} AS t
SET claim_token = $3, next_attempt_at = $4,
    attempts = t.attempts + CASE WHEN t.claim_token = $3 THEN 0 ELSE 1 END
FROM chosen WHERE t.id = chosen.id AND t.status = 'pending'
{_RETURNING}
"""

RECORD_COLUMNS = (
    "id, webhook_id, event_type, status, attempts, last_error, received_at, "
    "next_attempt_at, finished_at, webhook_timestamp"
)



def record(row: Any) -> InboxRecord:
    status = InboxStatus(row["status"])
    return InboxRecord(
        id=row["id"],
        webhook_id=row["webhook_id"],
        event_type=row["event_type"],
        status=status,
        attempts=row["attempts"],
        last_error=row["last_error"],
        received_at=row["received_at"],
        next_attempt_at=row["next_attempt_at"] if status is InboxStatus.PENDING else None,
        finished_at=row["finished_at"],
        webhook_timestamp=row["webhook_timestamp"],
    )


def unstorable_field(delivery: Delivery) -> str | None:
    """The name of a text field PostgreSQL cannot store (it holds a NUL), or ``None``."""
    for name in ("dedupe_key", "webhook_id", "event_type"):
        value = getattr(delivery, name)
        if value is not None and "\x00" in value:
            return name
    return None


STATS = f"""
SELECT status, count(*) AS n, extract(epoch FROM min(received_at)) AS oldest
FROM {TABLE} GROUP BY status
"""
"""Counts by status and the oldest receipt of each: the inbox's gauges in one statement."""


def stats_of(rows: Sequence[Any], now: float) -> InboxStats:
    """:class:`InboxStats` from the rows of :data:`STATS`."""
    found = {row["status"]: int(row["n"]) for row in rows}
    oldest = next((row["oldest"] for row in rows if row["status"] == "pending"), None)
    received = None if oldest is None else float(oldest)
    return InboxStats.of(found, oldest_pending_received_at=received, now=now)
