"""Registering manifest lines in the PostgreSQL journal: the SQLite journal's rules,
for a chunk at a time and for runs that read the same manifest at once.

A key read again on the line that holds it is the same row (another run of the
batch read it too). A key on another line is a duplicate, and that line is
rejected, while the run that read the first line is live (or is this one); a
key whose run is over moves to its new line, as in a rerun of an edited manifest.

PostgreSQL text holds no NUL character: a key with one cannot be a row, so its
line is rejected (counted invalid, the other lines go on), and a NUL in a
recorded reason is written ``\x00``.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import attrs

from .._journal_records import Registration, RowEntry, record_from_row, redact
from ._journal_sql import COLUMNS

if TYPE_CHECKING:
    import asyncpg

__all__ = ["register_entries", "storable"]

_INSERT = """
INSERT INTO avaturn_journal_rows (key, line, run_id, state, error_kind, error, extra)
SELECT k, l, $3, 'new', CASE WHEN p IS NULL THEN NULL ELSE 'input' END, p, x
FROM unnest($1::text[], $2::int[], $4::text[], $5::text[]) AS e(k, l, p, x)
ORDER BY k
ON CONFLICT (key) DO NOTHING
RETURNING key
"""
_LOCK = """
SELECT r.key, r.line, r.run_id, r.error_kind, r.state IN ('ready', 'exported') AS done,
       (r.run_id = $2 OR (x.finished_at IS NULL AND x.lease_until > now())) AS live,
       (r.owner IS NOT NULL AND r.owner <> $2 AND r.lease_until > now()) AS held
FROM avaturn_journal_rows r LEFT JOIN avaturn_journal_runs x ON x.id = r.run_id
WHERE r.key = ANY($1::text[]) ORDER BY r.key FOR UPDATE OF r
"""
# $4: 'set' records the input problem $5, 'clear' clears a stale one, 'keep' leaves it.
_UPDATE = """
UPDATE avaturn_journal_rows SET line = $2, run_id = $3, updated_at = now(),
    error_kind = CASE $4 WHEN 'set' THEN 'input' WHEN 'clear' THEN NULL ELSE error_kind END,
    error = CASE $4 WHEN 'set' THEN $5 WHEN 'clear' THEN NULL ELSE error END,
    extra = COALESCE($6::text, extra)
WHERE key = $1
"""
_REJECT = (
    "INSERT INTO avaturn_journal_rejects (run_id, line, key, reason, extra)"
    " VALUES ($1, $2, $3, $4, $5)"
)
_STEP = "INSERT INTO avaturn_journal_steps (run_id, key, step, detail) VALUES ($1, $2, $3, $4)"


def storable(text: str) -> str:
    """``text`` as PostgreSQL can store it: a NUL character written ``\\x00``."""
    return text.replace("\x00", "\\x00")


def _keyable(entry: RowEntry) -> RowEntry:
    """``entry``, or a keyless one (rejected on its line) if its key holds a NUL."""
    if entry.key is None or "\x00" not in entry.key:
        return entry
    problem = f"the key {entry.key!r} holds a NUL character, which PostgreSQL cannot store"
    return attrs.evolve(entry, key=None, problem=problem)


@attrs.define
class _Known:
    key: str
    line: int
    run_id: int
    live: bool
    held: bool
    done: bool
    error_kind: str | None


@attrs.define
class _Plan:
    """What registering a chunk writes, and what each entry becomes."""

    rejects: list[tuple[int, int, str | None, str, str | None]] = attrs.field(factory=list)
    steps: list[tuple[int, str, str, str]] = attrs.field(factory=list)
    updates: list[tuple[str, int, int, str, str | None, str | None]] = attrs.field(factory=list)
    results: list[Registration | str | None] = attrs.field(factory=list)


async def _known_rows(
    conn: Any, run_id: int, first: dict[str, RowEntry]
) -> tuple[set[str], dict[str, _Known]]:
    """Insert the keys not seen before; lock and read every key of the chunk."""
    new = list(first.values())
    inserted = {
        row["key"]
        for row in await conn.fetch(
            _INSERT, [e.key for e in new], [e.line for e in new], run_id,
            [None if e.problem is None else storable(redact(e.problem)) for e in new],
            [e.extra for e in new],
        )
    }
    locked = await conn.fetch(_LOCK, list(first), run_id)
    return inserted, {row["key"]: _Known(**dict(row)) for row in locked}


def _plan(
    run_id: int,
    entries: Sequence[RowEntry],
    first: dict[str, RowEntry],
    inserted: set[str],
    known: dict[str, _Known],
) -> _Plan:
    """The SQLite journal's registration rules, entry by entry, in manifest order."""
    plan = _Plan()
    for entry in entries:
        key = entry.key
        problem = None if entry.problem is None else storable(redact(entry.problem))
        if key is None:
            plan.rejects.append((run_id, entry.line, None, problem or "no key", entry.extra))
            plan.results.append(None)
            continue
        if key in inserted and first[key] is entry:
            if problem is not None:
                plan.steps.append((run_id, key, "invalid", problem))
            plan.results.append(key)
            continue
        found = known[key]
        if found.line != entry.line and (found.run_id == run_id or found.live):
            reason = f"duplicate key {key!r} (first seen on line {found.line})"
            plan.rejects.append((run_id, entry.line, key, redact(reason), entry.extra))
            plan.results.append(Registration(record=None, duplicate_of=found.line))
            continue
        if problem is not None:
            plan.steps.append((run_id, key, "invalid", problem))
            mode = "keep" if found.done or found.held else "set"
        else:
            mode = "clear" if found.error_kind == "input" else "keep"
        plan.updates.append((key, entry.line, run_id, mode, problem, entry.extra))
        found.line, found.run_id, found.live = entry.line, run_id, True
        plan.results.append(key)
    return plan


async def register_entries(
    conn: asyncpg.Connection | Any, run_id: int, entries: Sequence[RowEntry]
) -> list[Registration | None]:
    """Register ``entries`` inside the caller's transaction (see the module docstring)."""
    entries = [_keyable(entry) for entry in entries]
    first: dict[str, RowEntry] = {}
    for entry in entries:
        if entry.key is not None:
            first.setdefault(entry.key, entry)
    inserted, known = await _known_rows(conn, run_id, first)
    plan = _plan(run_id, entries, first, inserted, known)
    if plan.updates:  # keys in one order across runs: no deadlock between their locks
        await conn.executemany(_UPDATE, sorted(plan.updates, key=itemgetter(0)))
    if plan.rejects:
        await conn.executemany(_REJECT, plan.rejects)
    if plan.steps:
        await conn.executemany(_STEP, plan.steps)
    sql = f"SELECT {COLUMNS} FROM avaturn_journal_rows WHERE key = ANY($1::text[])"
    rows = await conn.fetch(sql, list(first))
    records = {row["key"]: record_from_row(tuple(row)) for row in rows}
    return [
        Registration(record=records[item]) if isinstance(item, str) else item
        for item in plan.results
    ]
