"""The statements of ``PostgresLearnedPace`` (``_learned``), on ``avaturn_rate_budget``.

Times go in and out as seconds since the epoch on the database's clock
(``clock_timestamp()``, not the transaction's ``now()``), the one clock every worker
reads the shared pace by.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._pacing import PROBE_STEP
from .._shared_pace import SharedPace

if TYPE_CHECKING:
    from asyncpg import Record

__all__ = ["BOOK", "FORGET", "LOCK", "WRITE", "columns", "pace_of"]

_PACE = """
    rate, extract(epoch FROM window_end)::float8 AS window_end, measured, bound_only,
    extract(epoch FROM probed_at)::float8 AS probed_at, step, held, raised_from,
    extract(epoch FROM clock_timestamp())::float8 AS now
"""
#: At start: the scope's row made if missing, and its pace forgotten when nobody has
#: booked by it for ``$2`` seconds.
FORGET = """
INSERT INTO avaturn_rate_budget AS b (scope, tat) VALUES ($1, clock_timestamp())
ON CONFLICT (scope) DO UPDATE
    SET rate = NULL, window_end = NULL, measured = NULL, bound_only = false,
        probed_at = NULL, step = NULL, held = false, raised_from = NULL
    WHERE b.rate IS NOT NULL AND b.tat < clock_timestamp() - make_interval(secs => $2)
"""
#: The pace, locked for a change until the transaction ends.
LOCK = f"SELECT {_PACE} FROM avaturn_rate_budget WHERE scope = $1 FOR UPDATE"
#: A changed pace (under LOCK).
WRITE = """
UPDATE avaturn_rate_budget
SET rate = $2, window_end = to_timestamp($3), measured = $4, bound_only = $5,
    probed_at = to_timestamp($6), step = $7, held = $8, raised_from = $9
WHERE scope = $1
"""
#: ``$2`` turns at the rate learned (none while nothing is): the last turn's time, and
#: the pace, noting whether a request had to wait for its turn.
BOOK = f"""
UPDATE avaturn_rate_budget AS b
SET tat = greatest(b.tat, clock_timestamp()) + make_interval(secs => $2 / b.rate),
    held = b.held OR b.tat > clock_timestamp()
WHERE b.scope = $1 AND b.rate > 0
RETURNING extract(epoch FROM b.tat)::float8 AS tat, {_PACE}
"""


def pace_of(row: Record) -> SharedPace:
    """The pace a row returned by LOCK or BOOK holds."""
    return SharedPace(
        rate=row["rate"],
        window_end=row["window_end"],
        measured=row["measured"],
        bound_only=row["bound_only"],
        probed_at=row["probed_at"],
        step=row["step"] if row["step"] is not None else PROBE_STEP,
        held=row["held"],
        raised_from=row["raised_from"],
    )


def columns(pace: SharedPace) -> tuple[Any, ...]:
    """WRITE's arguments after the scope."""
    return (pace.rate, pace.window_end, pace.measured, pace.bound_only, pace.probed_at,
            pace.step, pace.held, pace.raised_from)
