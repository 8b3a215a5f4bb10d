"""The PostgreSQL inbox's schema and statements (see ``_inbox`` for the rules)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..webhooks import Delivery, InboxRecord, InboxStats, InboxStatus

__all__ = [
    "CLAIM",
    "COMPONENT",
    "EXPIRE",
    "HOLD_BACK",
    "INBOX_CHANNEL",
    "INSERT",
    "RECLAIM",
    "RECORD_COLUMNS",
    "REPLAY",
    "STATS",
    "STEPS",
    "TABLE",
    "record",
    "stats_of",
    "unstorable",
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
    # Ordered dispatch. An event's place in its key's queue is ordering_seq, or its id
    # when NULL (every row stored before this step, and every row until replayed).
    # Adding nullable columns without a default rewrites nothing.
    f"""
    ALTER TABLE {TABLE} ADD COLUMN ordering_key text, ADD COLUMN ordering_seq bigint;
    CREATE INDEX {TABLE}_order ON {TABLE} (ordering_key, (coalesce(ordering_seq, id)))
        WHERE status = 'pending'
    """,
]

# Inserts, and replays, of one ordering key take this transaction-level advisory lock
# (the two-int form: its own key space) on the key's hash, in hash order (no deadlock):
# ids are drawn from the sequence when a row is inserted, so without it two replicas
# storing events of one avatar could commit them out of id order, and a claim could
# start the later one before the earlier one was visible. With it, an event is
# committed before the next one of its key draws its id.
_ORDER_LOCK_CLASS = 0x61766F72  # "avor"


def _lock_keys(key: str, source: str) -> str:
    """A query taking the locks of the keys in column ``key`` of ``source``."""
    return f"""
    SELECT count(pg_advisory_xact_lock({_ORDER_LOCK_CLASS}, h)) AS locked
    FROM (SELECT DISTINCT hashtext({key}) AS h FROM {source}
          WHERE {key} IS NOT NULL ORDER BY h) AS hashes
    """


# Not due before the first pending event of its key is, when that one waits for a retry:
# it cannot run before, and so it stays out of the claims' scan meanwhile (a hint for
# speed only; the claim's test is what keeps the order).
_NOT_BEFORE_HEAD = f"""greatest(r, (
        SELECT CASE WHEN h.claim_token IS NULL THEN h.next_attempt_at END
        FROM {TABLE} AS h WHERE h.ordering_key = o AND h.status = 'pending'
        ORDER BY coalesce(h.ordering_seq, h.id) LIMIT 1))"""

# The locks are taken first: the rows to insert are joined to their one-row answer
# (materialized, so taken once), so no row is inserted, and no id drawn, before.
INSERT = f"""
WITH locks AS MATERIALIZED ({_lock_keys("k", "unnest($7::text[]) AS k")}), ins AS (
    INSERT INTO {TABLE} (dedupe_key, webhook_id, webhook_timestamp, event_type, body,
                          next_attempt_at, received_at, ordering_key)
    SELECT k, w, ts, e, b, {_NOT_BEFORE_HEAD}, r, o
    FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bytea[],
                $6::timestamptz[], $7::text[]) WITH ORDINALITY AS d(k, w, ts, e, b, r, o, n)
         CROSS JOIN locks
    ORDER BY n
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id, dedupe_key
)
SELECT id, dedupe_key, pg_notify('{INBOX_CHANNEL}', '')::text FROM ins
"""

# After a failed attempt of an ordered event ($3), the pending events behind it ($1) are
# not due before its retry ($2): each claim's scan would otherwise walk past all of
# them until then (the head-of-line cost of GW#348). Only a hint, like the insert's.
HOLD_BACK = f"""
UPDATE {TABLE} SET next_attempt_at = $2
WHERE ordering_key = $1 AND status = 'pending' AND claim_token IS NULL
  AND next_attempt_at < $2 AND id <> $3
"""

EXPIRE = f"""
UPDATE {TABLE} SET status = 'dead', claim_token = NULL, last_error = $1, finished_at = $2
WHERE status = 'pending' AND claim_token IS NOT NULL AND next_attempt_at <= $2
  AND attempts >= $3
"""

# $1 now, $2 limit, $3 token, $4 lease end, $5 max attempts. An event with an ordering
# key is due only first in its key's queue among pending events; a claimed event stays
# pending, so it holds back the rest of its key until done or dead. The test is inside
# the locked scan, so held-back events never use up the limit; it reads the status,
# which a claim does not change, so it holds whatever other claims are under way.
_DUE = f"""
    SELECT id FROM {TABLE} AS c
    WHERE status = 'pending' AND next_attempt_at <= $1
      AND NOT (claim_token IS NOT NULL AND attempts >= $5)
      AND (ordering_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM {TABLE} AS e
          WHERE e.ordering_key = c.ordering_key AND e.status = 'pending'
            AND coalesce(e.ordering_seq, e.id) < coalesce(c.ordering_seq, c.id)))
    ORDER BY next_attempt_at, id
"""
_RETURNING = "RETURNING t.id, t.body, t.attempts, t.event_type, t.next_attempt_at, t.ordering_key"

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

# Replaying the dead rows chosen ($2, or all when NULL): under their keys' locks, each
# takes a new place at the back of its key's queue, drawn in their old queue order (the
# materialized, sorted choice is scanned in that order, and the sequence read as it is).
REPLAY = f"""
WITH chosen AS MATERIALIZED (
    SELECT id, ordering_key FROM {TABLE}
    WHERE status = 'dead' AND ($2::bigint[] IS NULL OR id = ANY($2::bigint[]))
    ORDER BY coalesce(ordering_seq, id)
), locks AS MATERIALIZED ({_lock_keys("ordering_key", "chosen")}), places AS MATERIALIZED (
    SELECT id, nextval(pg_get_serial_sequence('{TABLE}', 'id')::regclass) AS place
    FROM chosen CROSS JOIN locks
)
UPDATE {TABLE} AS t
SET status = 'pending', attempts = 0, next_attempt_at = $1, claim_token = NULL,
    finished_at = NULL, ordering_seq = places.place
FROM places WHERE t.id = places.id AND t.status = 'dead'
RETURNING t.id, pg_notify('{INBOX_CHANNEL}', '')::text
"""

RECORD_COLUMNS = (
    "id, webhook_id, event_type, status, attempts, last_error, received_at, finished_at,"
    " CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at,"
    " webhook_timestamp, ordering_key"
)


def record(row: Any) -> InboxRecord:
    """An :class:`InboxRecord` from a row of :data:`RECORD_COLUMNS`."""
    return InboxRecord(**{**dict(row), "status": InboxStatus(row["status"])})


def unstorable(delivery: Delivery) -> str | None:
    """Why PostgreSQL cannot store ``delivery`` (a text field holds a NUL), or ``None``."""
    for name in ("dedupe_key", "webhook_id", "event_type", "ordering_key"):
        value = getattr(delivery, name)
        if value is not None and "\x00" in value:
            return f"the delivery's {name} holds a NUL character, which PostgreSQL cannot store"
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
