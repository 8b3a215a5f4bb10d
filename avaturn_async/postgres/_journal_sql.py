"""The PostgreSQL journal's schema and statements (see ``_journal`` for the rules).

Statements that write a row are *fenced*: ``$1`` key, ``$2`` run (the owner),
``$3`` token; they return nothing when the run no longer holds the row.
"""

from __future__ import annotations

__all__ = [
    "ADVANCE",
    "BEGIN",
    "CLAIM",
    "COLUMNS",
    "END",
    "EXTRA_COLUMNS",
    "FAIL",
    "FAILURES",
    "HOLDINGS",
    "MIGRATIONS",
    "NOTE",
    "REJECTS",
    "REJECTS_PAGE",
    "RELEASE",
    "RENEW",
    "RESULTS_PAGE",
    "STATUS",
]

MIGRATIONS = [
    """
    CREATE TABLE avaturn_journal_runs (
        id          bigserial PRIMARY KEY,
        pid         integer,
        host        text,
        source      text,
        started_at  timestamptz NOT NULL DEFAULT now(),
        lease_until timestamptz,
        finished_at timestamptz,
        outcome     text
    );
    CREATE TABLE avaturn_journal_rows (
        key              text PRIMARY KEY,
        line             integer NOT NULL,
        run_id           bigint NOT NULL,
        state            text NOT NULL,
        user_id          text,
        avatar_id        text,
        export_path      text,
        error_kind       text,
        error            text,
        possible_orphans integer NOT NULL DEFAULT 0,
        updated_at       timestamptz NOT NULL DEFAULT now(),
        owner            bigint,
        token            bigint,
        lease_until      timestamptz,
        attempts         integer NOT NULL DEFAULT 0,
        let_go_at        timestamptz,
        let_go_by        bigint
    );
    CREATE INDEX avaturn_journal_rows_line ON avaturn_journal_rows (line);
    CREATE INDEX avaturn_journal_rows_held ON avaturn_journal_rows (lease_until)
        WHERE owner IS NOT NULL;
    CREATE SEQUENCE avaturn_journal_tokens;
    CREATE TABLE avaturn_journal_steps (
        id     bigserial PRIMARY KEY,
        run_id bigint NOT NULL,
        key    text NOT NULL,
        step   text NOT NULL,
        detail text,
        at     timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX avaturn_journal_steps_key ON avaturn_journal_steps (key, id);
    CREATE TABLE avaturn_journal_rejects (
        id     bigserial PRIMARY KEY,
        run_id bigint NOT NULL,
        line   integer NOT NULL,
        key    text,
        reason text NOT NULL,
        at     timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX avaturn_journal_rejects_run ON avaturn_journal_rejects (run_id, line)
    """,
    # 2: the manifest's own columns (JSON text: json keeps their order) for the results,
    # and the rows in manifest order a page at a time.
    """
    ALTER TABLE avaturn_journal_rows ADD COLUMN extra text;
    ALTER TABLE avaturn_journal_rejects ADD COLUMN extra text;
    CREATE INDEX avaturn_journal_rows_line_key ON avaturn_journal_rows (line, key)
    """,
]

COLUMNS = (
    "key, line, run_id, state, user_id, avatar_id, export_path, error_kind, error, "
    "possible_orphans"
)
_ROW_COLUMNS = ", ".join(f"r.{name.strip()}" for name in COLUMNS.split(","))

# $1 pid, $2 host, $3 source, $4 lease seconds.
BEGIN = """
INSERT INTO avaturn_journal_runs (pid, host, source, lease_until)
VALUES ($1, $2, $3, now() + make_interval(secs => $4)) RETURNING id, started_at
"""

# $1 run, $2 outcome: the run ends and lets go of its rows in one statement.
END = """
WITH run AS (UPDATE avaturn_journal_runs SET finished_at = now(), outcome = $2 WHERE id = $1)
UPDATE avaturn_journal_rows SET owner = NULL, token = NULL, lease_until = NULL WHERE owner = $1
"""

# $1 keys, $2 finished states, $3 retry_failed, $4 run, $5 run's start, $6 lease seconds.
# Every filter sits inside the locked CTE, so rows the claim skips use up no LIMIT slot.
# Rows this run holds already are claimed again (with new tokens): a claim whose commit
# was lost with the connection is repeated, and must return the rows it took.
CLAIM = f"""
WITH wanted AS (
    SELECT key FROM avaturn_journal_rows
    WHERE key = ANY($1::text[])
      AND NOT (state = ANY($2::text[]))
      AND error_kind IS DISTINCT FROM 'input'
      AND ($3::bool OR state <> 'avatar_failed')
      AND (owner IS NULL OR lease_until < now() OR owner = $4)
      AND (let_go_at IS NULL OR let_go_at < $5 OR let_go_by = $4)
    ORDER BY line
    FOR UPDATE SKIP LOCKED
)
UPDATE avaturn_journal_rows r
SET owner = $4, token = nextval('avaturn_journal_tokens'),
    lease_until = now() + make_interval(secs => $6), attempts = r.attempts + 1
FROM wanted WHERE r.key = wanted.key
RETURNING {_ROW_COLUMNS}, r.token
"""

# $1 run, $2 keys, $3 tokens, $4 lease seconds. The run's own lease is renewed too.
RENEW = """
WITH run AS (
    UPDATE avaturn_journal_runs SET lease_until = now() + make_interval(secs => $4)
    WHERE id = $1
)
UPDATE avaturn_journal_rows r SET lease_until = now() + make_interval(secs => $4)
FROM unnest($2::text[], $3::bigint[]) AS held(key, token)
WHERE r.key = held.key AND r.owner = $1 AND r.token = held.token
RETURNING r.key
"""

_FENCE = "WHERE key = $1 AND owner = $2 AND token = $3 RETURNING key"
_STEP = "INSERT INTO avaturn_journal_steps (run_id, key, step, detail) SELECT $2, key"

# $4 state, $5/$6 user_id, $7/$8 avatar_id, $9/$10 export_path (set?, value), $11 detail.
ADVANCE = f"""
WITH moved AS (
    UPDATE avaturn_journal_rows
    SET state = $4::text, error_kind = NULL, error = NULL, updated_at = now(),
        user_id = CASE WHEN $5::bool THEN $6::text ELSE user_id END,
        avatar_id = CASE WHEN $7::bool THEN $8::text ELSE avatar_id END,
        export_path = CASE WHEN $9::bool THEN $10::text ELSE export_path END
    {_FENCE}
)
{_STEP}, $4::text, $11::text FROM moved RETURNING id
"""

# $4 kind, $5 reason, $6 state or NULL.
FAIL = f"""
WITH failed AS (
    UPDATE avaturn_journal_rows
    SET error_kind = $4::text, error = $5::text, updated_at = now(),
        state = COALESCE($6::text, state)
    {_FENCE}
)
{_STEP}, 'failed:' || $4::text, $5::text FROM failed RETURNING id
"""

# $4 step, $5 detail, $6 orphans to add.
NOTE = f"""
WITH noted AS (
    UPDATE avaturn_journal_rows SET possible_orphans = possible_orphans + $6::int
    {_FENCE}
)
{_STEP}, $4::text, $5::text FROM noted RETURNING id
"""

# $1 key, $2 run, $3 token. A row let go with an error is not retried by this batch's
# other runs; one let go without (an interrupted run) is free for them at once.
RELEASE = """
UPDATE avaturn_journal_rows
SET owner = NULL, token = NULL, lease_until = NULL,
    let_go_at = CASE WHEN error IS NOT NULL OR state = 'avatar_failed' THEN now()
                     ELSE let_go_at END,
    let_go_by = CASE WHEN error IS NOT NULL OR state = 'avatar_failed' THEN $2
                     ELSE let_go_by END
WHERE key = $1 AND owner = $2 AND token = $3
"""

HOLDINGS = """
SELECT count(*) FILTER (WHERE owner <> $1 AND lease_until >= now()) AS live,
       count(*) FILTER (WHERE owner = $1) AS own,
       coalesce(array_agg(key) FILTER (
           WHERE (owner <> $1 AND lease_until < now())
              OR (owner IS NULL AND error IS NULL
                  AND state NOT IN ('ready', 'exported', 'avatar_failed'))
       ), '{}'::text[]) AS expired
FROM avaturn_journal_rows
WHERE owner IS NOT NULL
   OR (error IS NULL AND state NOT IN ('ready', 'exported', 'avatar_failed'))
"""

STATUS = """
WITH last AS (SELECT id, outcome FROM avaturn_journal_runs ORDER BY id DESC LIMIT 1)
SELECT
    (SELECT count(*) FROM avaturn_journal_rows
     WHERE error IS NOT NULL OR state = 'avatar_failed') AS failed,
    (SELECT coalesce(sum(possible_orphans), 0) FROM avaturn_journal_rows)::bigint
        AS possible_orphans,
    (SELECT count(*) FROM avaturn_journal_rows WHERE error_kind = 'input') AS invalid,
    (SELECT count(*) FROM avaturn_journal_rejects
     WHERE run_id = (SELECT id FROM last)) AS rejected_last_run,
    (SELECT count(*) FROM avaturn_journal_runs) AS runs,
    (SELECT outcome FROM last) AS last_run_outcome,
    (SELECT count(*) FROM avaturn_journal_runs
     WHERE finished_at IS NULL AND lease_until > now()) AS live_runs
"""

FAILURES = """
SELECT line, key, COALESCE(error_kind, state) AS kind,
       COALESCE(error, 'Avaturn reported that processing the photos failed') AS reason, state
FROM avaturn_journal_rows WHERE error IS NOT NULL OR state = 'avatar_failed'
ORDER BY line LIMIT $1
"""

REJECTS = """
SELECT line, key, 'rejected' AS kind, reason FROM avaturn_journal_rejects
WHERE run_id = (SELECT max(id) FROM avaturn_journal_runs) ORDER BY line LIMIT $1
"""

# The results (``batch._results``), a keyset page at a time on ``(line, key)`` (an index
# of migration 2), each its own statement: no cursor or transaction is held between
# pages, so a long export holds no lock and rides out a server restart between pages.
RESULTS_PAGE = """
SELECT key, line, state, user_id, avatar_id, export_path, error_kind, error, updated_at, extra
FROM avaturn_journal_rows WHERE (line, key) > ($1::int, $2::text)
ORDER BY line, key LIMIT $3
"""
REJECTS_PAGE = """
SELECT line, id, key, reason, at, extra FROM avaturn_journal_rejects
WHERE run_id = (SELECT max(id) FROM avaturn_journal_runs) AND (line, id) > ($1::int, $2::bigint)
ORDER BY line, id LIMIT $3
"""
# json (not jsonb) keeps each object's keys in the manifest's order.
EXTRA_COLUMNS = """
SELECT e.k FROM avaturn_journal_rows r,
     json_each_text(r.extra::json) WITH ORDINALITY AS e(k, v, n)
WHERE r.extra IS NOT NULL GROUP BY e.k ORDER BY min(r.line), min(e.n)
"""
