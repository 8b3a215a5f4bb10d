"""The PostgreSQL journal read a page at a time, for the results (``batch._results``).

Keyset pages on ``(line, key)`` (an index of migration 2), each its own statement:
no cursor or transaction is held between pages, so a long export holds no lock
and a server restart between pages is ridden out like any other read.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EXTRA_COLUMNS", "REJECTS_PAGE", "RESULTS_PAGE", "as_tuples"]

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


def as_tuples(records: list[Any]) -> list[tuple[Any, ...]]:
    return [tuple(record) for record in records]
