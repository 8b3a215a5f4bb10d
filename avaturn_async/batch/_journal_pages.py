"""The SQLite journal read a page at a time, for the results (``_results``).

Keyset pages: each page starts after the last row of the one before, on an index,
so reading 100,000 rows costs the same per page from the first to the last.
"""

from __future__ import annotations

from typing import Any

from ._journal import Journal

__all__ = ["extra_columns", "rejects_page", "results_page"]

_ROWS = (
    "SELECT key, line, state, user_id, avatar_id, export_path, error_kind, error,"
    " updated_at, extra FROM rows WHERE (line, key) > (?, ?) ORDER BY line, key LIMIT ?"
)
_REJECTS = (
    "SELECT line, id, key, reason, at, extra FROM rejects"
    " WHERE run_id = (SELECT MAX(id) FROM runs) AND (line, id) > (?, ?)"
    " ORDER BY line, id LIMIT ?"
)
# In order of first appearance: json_each walks an object in its text's order.
_EXTRA_COLUMNS = (
    "SELECT j.key FROM rows, json_each(rows.extra) AS j WHERE rows.extra IS NOT NULL"
    " GROUP BY j.key ORDER BY MIN(rows.line), MIN(j.id)"
)


def results_page(journal: Journal, after: tuple[int, str], limit: int) -> list[tuple[Any, ...]]:
    """Up to ``limit`` rows after ``(line, key)``, in manifest order."""
    return journal.connection.execute(_ROWS, (*after, limit)).fetchall()


def rejects_page(journal: Journal, after: tuple[int, int], limit: int) -> list[tuple[Any, ...]]:
    """Up to ``limit`` of the last run's rejected lines after ``(line, id)``."""
    return journal.connection.execute(_REJECTS, (*after, limit)).fetchall()


def extra_columns(journal: Journal) -> list[str]:
    """The manifest's own columns the rows kept, in the manifest's order."""
    return [row[0] for row in journal.connection.execute(_EXTRA_COLUMNS)]
