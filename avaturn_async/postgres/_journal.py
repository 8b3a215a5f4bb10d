"""``PostgresJournal``: one onboarding batch shared by any number of runs on any machines.

The tables mirror the SQLite journal's (rows, steps, rejects, runs); the rules
of a row's states and of reconciliation are the same, in the same code
(``batch._row``). What is added is the claim:

* A run **claims** rows before working on them, a few at a time, with
  ``SELECT ... FOR UPDATE SKIP LOCKED`` in a CTE and an ``UPDATE`` that stamps
  ``owner`` (the run), a fresh ``token`` and ``lease_until = now() + lease``,
  committed at once: after the commit the columns are the claim, not the lock.
* The run **renews** the lease of every row it holds every ``lease / 3``
  seconds, fenced by owner and token. A row whose renewal updates nothing was
  taken over: the run stops working on it.
* **Every write** of a row is fenced the same way; one that updates nothing
  raises :class:`~avaturn_async.batch.LeaseLostError` and is not made.
* A row whose lease ran out (its run was killed, or lost the database for
  longer than the lease) is claimable again; the run that takes it over
  resumes from the state the journal holds, exactly as a rerun of the SQLite
  journal does, so it never gets a second user or avatar the journal knows of.
* A row a run let go with an error is retried by a later rerun, not by the
  batch's other runs.

All times are the database's (``now()``). A manifest key with a NUL character
(which PostgreSQL text cannot hold) is rejected on its line; reasons are escaped.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .._errors import ConfigurationError, SchemaVersionError
from .._journal_records import (
    OUTCOME_SQL,
    FailureRecord,
    Holdings,
    JournalError,
    JournalStatus,
    LeaseLostError,
    Registration,
    RowEntry,
    RowRecord,
    RowState,
    record_from_row,
    redact,
    status_from,
)
from . import _journal_sql as sql
from ._connect import is_transient
from ._connector import PostgresConnector, connector_for
from ._register import register_entries, storable

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    from ._tasks import BackgroundTask

__all__ = ["DEFAULT_LEASE", "PostgresJournal"]

T = TypeVar("T")
DEFAULT_LEASE = 30.0
"""Seconds a claimed row stays held without renewal (renewed every third of it)."""
_FAILURES_SHOWN = 20
_RETRY_ALSO = ("DeadlockDetectedError", "SerializationError")
_log = logging.getLogger("avaturn_async.postgres")


def _worth_retrying(exc: BaseException) -> bool:
    """Transient, or a conflict between concurrent runs that a second try resolves."""
    return is_transient(exc) or type(exc).__name__ in _RETRY_ALSO


async def _check_installed(connector: PostgresConnector) -> None:
    """Read-only: a database without a journal (or with an older one) is refused."""
    version = await connector.installed_version("journal")
    if version == 0:
        raise JournalError(f"no journal at {connector.label}")
    if version > len(sql.MIGRATIONS):
        raise SchemaVersionError(
            f"the journal at {connector.label} is at schema version {version}, newer than "
            "this avaturn_async knows: upgrade avaturn_async"
        )
    if version < len(sql.MIGRATIONS):
        raise JournalError(
            f"the journal at {connector.label} is at schema version {version}; run a "
            "worker (avaturn onboard) once to upgrade it"
        )


class PostgresJournal:
    """A :class:`~avaturn_async.batch.JournalStore` in PostgreSQL, shared by many runs.

    Open it with ``await PostgresJournal.open(dsn)`` (or a :class:`PostgresConnector`
    the process shares), or pass the DSN as ``onboard(..., journal="postgresql://...")``
    / ``avaturn onboard --journal``. One database (or schema, through
    ``search_path``) holds one batch.
    """

    def __init__(
        self, connector: PostgresConnector, *, lease: float = DEFAULT_LEASE, owned: bool = False
    ) -> None:
        if lease < 1.0:
            raise ConfigurationError("lease must be at least 1 second")
        self.connector = connector
        self._owned = owned
        self.lease = lease
        self._run_id: int | None = None
        self._started_at: datetime.datetime | None = None
        self._held: dict[str, int] = {}  # key -> token
        self._lost: dict[str, list[Callable[[], None]]] = {}
        self._renewer: BackgroundTask | None = None
        self.renewals: int = 0
        """Lease renewals made (each covers every row held)."""

    def __repr__(self) -> str:
        return f"PostgresJournal({self.label!r}, held={len(self._held)})"

    @classmethod
    async def open(
        cls, dsn: str | PostgresConnector, *, lease: float = DEFAULT_LEASE, create: bool = True
    ) -> PostgresJournal:
        """Connect and create (or upgrade) the journal's tables.

        ``create=False`` only reads: a database without a journal is a
        :class:`~avaturn_async.batch.JournalError` (``avaturn onboard --status``).
        Raises ``ConfigurationError`` for a bad DSN or a role that may not create
        the tables, ``StorageUnavailableError`` when no server answers and
        ``SchemaVersionError`` for a newer schema.
        """
        connector, owned = connector_for(dsn)
        journal = cls(connector, lease=lease, owned=owned)  # a bad lease fails before any I/O
        try:
            if create:
                await connector.migrate("journal", sql.MIGRATIONS)
            else:
                await _check_installed(connector)
        except BaseException:
            await journal.aclose()
            raise
        return journal

    @property
    def label(self) -> str:
        return self.connector.label

    @property
    def run_id(self) -> int:
        if self._run_id is None:
            raise RuntimeError("begin_run() first")
        return self._run_id

    async def _do(self, what: str, operation: Callable[[PoolConnectionProxy], Awaitable[T]]) -> T:
        """Run ``operation`` (safe to repeat: fenced or idempotent) until it succeeds,
        riding out a server restart, a deadlock between concurrent registrations, and
        a pooled connection left mid-operation by a dropped session (a transient error)."""
        return await self.connector.run(what, operation, retry_if=_worth_retrying)

    async def begin_run(self, source: str | None = None) -> int:
        args = (os.getpid(), socket.gethostname(), source, self.lease)
        row: Any = await self._do("starting a run", lambda conn: conn.fetchrow(sql.BEGIN, *args))
        self._run_id, self._started_at = int(row["id"]), row["started_at"]
        self._renewer = self.connector.spawn(self._renew_forever)
        return self._run_id

    async def end_run(self, outcome: str) -> tuple[list[FailureRecord], int]:
        run_id = self.run_id
        await self._stop_renewing()
        await self._do("ending the run", lambda conn: conn.execute(sql.END, run_id, outcome))
        self._held.clear()
        status = await self.status()
        return await self.failures(_FAILURES_SHOWN), status.failed + status.rejected_last_run

    async def _stop_renewing(self) -> None:
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            await renewer.stop()

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await self.renew()
            except Exception as exc:  # the next renewal may reach the database
                if not is_transient(exc):  # an outage is reported once, by the connector
                    _log.warning("could not renew the journal's leases: %s", exc)

    async def renew(self) -> None:
        """Renew the leases of every row held; report the rows that were lost."""
        held = dict(self._held)
        run_id = self.run_id
        rows = await self.connector.run(
            "renewing the journal's leases",
            lambda conn: conn.fetch(sql.RENEW, run_id, list(held), list(held.values()), self.lease),
            deadline=0,  # the next renewal is the retry
        )
        self.renewals += 1
        kept = {row["key"] for row in rows}
        for key, token in held.items():
            if key not in kept and self._held.get(key) == token:
                self._lose(key)

    def _lose(self, key: str) -> None:
        self._held.pop(key, None)
        for lost in self._lost.pop(key, []):
            lost()

    async def register(self, entries: Sequence[RowEntry]) -> list[Registration | None]:
        run_id = self.run_id

        async def attempt(conn: PoolConnectionProxy) -> list[Registration | None]:
            async with conn.transaction():
                return await register_entries(conn, run_id, entries)

        return await self._do("registering rows", attempt)

    async def claim(
        self, keys: Sequence[str], *, export: bool, retry_failed: bool
    ) -> list[RowRecord]:
        done = ["exported"] if export else ["ready", "exported"]
        args = (list(keys), done, retry_failed, self.run_id, self._started_at, self.lease)
        rows = await self._do("claiming rows", lambda conn: conn.fetch(sql.CLAIM, *args))
        for row in rows:
            self._held[row["key"]] = row["token"]
        # CLAIM returns the row's columns and then its lease token.
        records = (record_from_row(tuple(row)[:-1]) for row in rows)
        return sorted(records, key=lambda r: r.line)

    async def release(self, key: str) -> None:
        token = self._held.pop(key, None)
        self._lost.pop(key, None)
        if token is None:
            return
        run_id = self.run_id
        release = sql.RELEASE
        await self._do("releasing a row", lambda conn: conn.execute(release, key, run_id, token))

    def on_lease_lost(self, key: str, lost: Callable[[], None]) -> None:
        if key in self._held:
            self._lost.setdefault(key, []).append(lost)
        else:
            lost()

    async def holdings(self) -> Holdings:
        run_id = self.run_id
        row: Any = await self._do(
            "reading what other runs hold", lambda conn: conn.fetchrow(sql.HOLDINGS, run_id)
        )
        return Holdings(live=row["live"], expired=frozenset(row["expired"]), own=row["own"])

    async def record(self, key: str) -> RowRecord | None:
        select = f"SELECT {sql.COLUMNS} FROM avaturn_journal_rows WHERE key = $1"
        row = await self._do("reading a row", lambda conn: conn.fetchrow(select, key))
        return None if row is None else record_from_row(tuple(row))

    async def _fenced(self, what: str, key: str, query: str, *args: Any) -> None:
        token = self._held.get(key)
        if token is None:
            raise LeaseLostError(f"row {key!r} is not held by this run")
        run_id = self.run_id
        found = await self._do(what, lambda conn: conn.fetchval(query, key, run_id, token, *args))
        if found is None:
            self._lose(key)
            raise LeaseLostError(f"row {key!r} was taken over by another run")

    async def advance(
        self, key: str, state: RowState, *, detail: str | None = None, **columns: str | None
    ) -> None:
        unknown = set(columns) - {"user_id", "avatar_id", "export_path"}
        if unknown:
            raise TypeError(f"unknown journal columns: {sorted(unknown)}")
        await self._fenced(
            "recording a step", key, sql.ADVANCE, state.value,
            "user_id" in columns, columns.get("user_id"),
            "avatar_id" in columns, columns.get("avatar_id"),
            "export_path" in columns, columns.get("export_path"),
            None if detail is None else storable(redact(detail)),
        )

    async def fail(
        self, key: str, kind: str, reason: str, *, state: RowState | None = None
    ) -> None:
        await self._fenced(
            "recording a failure", key, sql.FAIL, kind, storable(redact(reason)),
            None if state is None else state.value,
        )

    async def note(self, key: str, step: str, detail: str, *, orphan: bool = False) -> None:
        await self._fenced(
            "recording a note", key, sql.NOTE, step, storable(redact(detail)), int(orphan)
        )

    async def status(self) -> JournalStatus:
        grouped = f"SELECT {OUTCOME_SQL}, state, count(*) FROM avaturn_journal_rows GROUP BY 1, 2"
        by_state = await self._do("reading the status", lambda conn: conn.fetch(grouped))
        row: Any = await self._do("reading the status", lambda conn: conn.fetchrow(sql.STATUS))
        # STATUS names its columns as the fields they fill.
        return status_from(map(tuple, by_state), **dict(row), running_pid=None)

    async def failures(self, limit: int = 20) -> list[FailureRecord]:
        failed = await self._do("reading failures", lambda conn: conn.fetch(sql.FAILURES, limit))
        left = max(0, limit - len(failed))
        rejected = await self._do("reading failures", lambda conn: conn.fetch(sql.REJECTS, left))
        return [FailureRecord(**dict(row)) for row in (*failed, *rejected)]

    # The results (``batch.read_results``): pages keyed by the last one read.

    async def results_page(self, after: tuple[int, str], limit: int) -> list[tuple[Any, ...]]:
        return await self._page("reading results", sql.RESULTS_PAGE, *after, limit)

    async def rejects_page(self, after: tuple[int, int], limit: int) -> list[tuple[Any, ...]]:
        return await self._page("reading rejected lines", sql.REJECTS_PAGE, *after, limit)

    async def extra_columns(self) -> list[str]:
        columns = await self._page("reading the manifest's columns", sql.EXTRA_COLUMNS)
        return [row[0] for row in columns]

    async def _page(self, what: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self._do(what, lambda conn: conn.fetch(query, *args))]

    async def aclose(self) -> None:
        await self._stop_renewing()
        if self._owned:
            await self.connector.aclose()
