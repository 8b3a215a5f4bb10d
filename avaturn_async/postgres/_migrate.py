"""Versioned, idempotent schema migrations, one list per component.

Each backend (``inbox``, ``dedupe``, ``journal``, ``hub``, ``gate``) owns an ordered list
of SQL steps; step *n* takes its component from version *n-1* to *n*. The applied version
of every component is kept in ``avaturn_schema``. ``migrate`` runs in one transaction
under a transaction-level advisory lock, so any number of processes may start at once
(``CREATE TABLE IF NOT EXISTS`` alone is not safe under concurrency) and it works through
transaction-mode poolers. A database whose component is at a version newer than the code
knows is refused with :class:`~avaturn_async.SchemaVersionError` before anything is read
or written, as graphile-worker refuses a newer breaking schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._errors import ConfigurationError, SchemaVersionError

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

__all__ = ["PRIVILEGE", "SCHEMA_TABLE", "explain_schema_error", "migrate", "schema_version"]

SCHEMA_TABLE = "avaturn_schema"
#: Any constant will do, as long as every avaturn_async process uses the same one.
_LOCK_KEY = 0x61766174  # "avat"

_CREATE = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (
    component  text PRIMARY KEY,
    version    integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""


async def schema_version(conn: asyncpg.Connection | PoolConnectionProxy, component: str) -> int:
    """The applied version of ``component`` (0 when it was never installed)."""
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", SCHEMA_TABLE)
    if not exists:
        return 0
    found = await conn.fetchval(
        f"SELECT version FROM {SCHEMA_TABLE} WHERE component = $1", component
    )
    return int(found or 0)


def _refuse_newer(component: str, current: int, steps: Sequence[str]) -> None:
    if current > len(steps):
        raise SchemaVersionError(
            f"the database's {component!r} schema is at version {current}, but this "
            f"avaturn_async knows only up to {len(steps)}: upgrade avaturn_async"
        )


async def migrate(
    conn: asyncpg.Connection | PoolConnectionProxy, component: str, steps: Sequence[str]
) -> int:
    """Bring ``component`` up to ``len(steps)``; return the version it is now at.

    Idempotent: a second call (or a concurrent one in another process) applies
    nothing. Raises :class:`SchemaVersionError` if the database is ahead of ``steps``.
    A component already at its version is only read: a role that may not create
    tables can use tables an owner installed.
    """
    current = await schema_version(conn, component)
    if current == len(steps):
        return current
    _refuse_newer(component, current, steps)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(_CREATE)
        current = await schema_version(conn, component)
        _refuse_newer(component, current, steps)
        for version in range(current + 1, len(steps) + 1):
            await conn.execute(steps[version - 1])
        if len(steps) > current:
            await conn.execute(
                f"INSERT INTO {SCHEMA_TABLE} (component, version) VALUES ($1, $2) "
                "ON CONFLICT (component) DO UPDATE "
                "SET version = excluded.version, updated_at = now()",
                component,
                len(steps),
            )
    return len(steps)


#: SQLSTATEs of a role that may not do something, and of a search_path naming no schema.
PRIVILEGE = "42501"
_NO_SCHEMA = "3F000"


async def explain_schema_error(
    conn: asyncpg.Connection | PoolConnectionProxy, exc: BaseException, component: str, where: str
) -> ConfigurationError | None:
    """A :class:`ConfigurationError` saying what to grant or create, when installing
    ``component`` at ``where`` (a redacted DSN) failed with ``exc`` for want of a
    privilege or a schema; ``None`` for any other error."""
    code = getattr(exc, "sqlstate", "")
    if code not in (PRIVILEGE, _NO_SCHEMA):
        return None
    try:
        row = await conn.fetchrow(
            "SELECT current_user AS role, current_schema() AS schema,"
            " current_setting('search_path') AS search_path"
        )
    except Exception:  # the session is gone: say what we know
        row = None
    role = row["role"] if row else "this role"
    if code == _NO_SCHEMA or (row is not None and row["schema"] is None):
        path = row["search_path"] if row else "?"
        first = path.split(",")[0].strip() or "avaturn"
        return ConfigurationError(
            f"cannot install the {component} tables at {where}: search_path is {path!r} "
            f"and names no existing schema; CREATE SCHEMA {first} AUTHORIZATION {role} "
            "(or fix search_path)"
        )
    schema = row["schema"] if row else "public"
    if "schema" not in str(exc):  # "permission denied for table ...": installed, not granted
        return ConfigurationError(
            f"PostgreSQL role {role} may not use the {component} tables at {where} "
            f"({exc}): GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "
            f"{schema} TO {role}, and USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema}"
        )
    return ConfigurationError(
        f"PostgreSQL role {role} may not create the {component} tables in schema "
        f"{schema} at {where}: GRANT CREATE ON SCHEMA {schema} TO {role} (or install "
        "them once as a role that may)"
    )
