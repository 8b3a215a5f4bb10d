"""The onboarding journal: one SQLite file that records every step of every row.

Each row (one person, named by the partner's own *key*) moves through these
states, and the journal is written **before** each remote side effect (the
intent) and **after** it (the result)::

    new -> user_requested -> user_created -> avatar_requested -> uploading
        -> processing -> ready [-> exporting -> exported]
                      \\-> avatar_failed

* ``user_requested`` / ``avatar_requested``: the create was sent (or about to be)
  and its answer is not recorded yet. A rerun finding a row here must reconcile:
  see ``_row`` for the rules. The user id is committed together with
  ``avatar_requested`` (the answer of one call is the intent of the next, one
  commit); ``user_created`` is where a row waits when its New Avatar provably
  did not happen, or after its unusable avatars were deleted.
* ``uploading``: the avatar id is recorded and the photo upload is (about to be)
  sent; the upload URL is never stored (it is pre-signed: a credential).
* ``processing`` onwards: the photos landed; only waiting remains.

A failed attempt leaves the state where it was and fills ``error_kind`` and
``error``, so a rerun resumes from the last step that is known to have
happened. Every transition and failure is also appended to ``steps``; manifest
lines that cannot become a row (no key, duplicate key) go to ``rejects``.

A run owns the journal while it lasts (its pid is stored in the file; a
killed run's pid is gone, so the rerun takes over): two live runs on one
journal would make duplicates.

This class is synchronous and not thread-safe: use it from one thread at a
time (``SQLiteJournalStore`` confines it to one worker thread, for async code;
see ``avaturn_async._sqlite`` for how its writes are group-committed).
SQLite runs in WAL mode with ``synchronous=NORMAL``: a committed step survives
the process being killed at any point (``kill -9``); an OS crash or power loss
may lose the last few commits.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._journal_records import (
    OUTCOME_SQL,
    FailureRecord,
    JournalBusyError,
    JournalError,
    JournalStatus,
    Registration,
    RowRecord,
    RowState,
    record_from_row,
    redact,
    status_from,
)
from .._sqlite import transaction

__all__ = ["Journal", "Registration", "RowRecord", "RowState"]

SCHEMA_VERSION = "2"
# Version 2 keeps the manifest's own columns (``extra``, JSON) for the results, and
# an index to read the rows in manifest order a page at a time.
_UPGRADES = {
    "1": (
        "ALTER TABLE rows ADD COLUMN extra TEXT",
        "ALTER TABLE rejects ADD COLUMN extra TEXT",
        "CREATE INDEX IF NOT EXISTS rows_by_line ON rows (line, key)",
    ),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, pid INTEGER, host TEXT, source TEXT,
    started_at REAL NOT NULL, finished_at REAL, outcome TEXT);
CREATE TABLE IF NOT EXISTS rows (
    key TEXT PRIMARY KEY, line INTEGER NOT NULL, run_id INTEGER NOT NULL,
    state TEXT NOT NULL, user_id TEXT, avatar_id TEXT, export_path TEXT,
    error_kind TEXT, error TEXT, possible_orphans INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL, extra TEXT);
CREATE INDEX IF NOT EXISTS rows_by_state ON rows (state);
CREATE INDEX IF NOT EXISTS rows_by_line ON rows (line, key);
CREATE TABLE IF NOT EXISTS steps (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, key TEXT NOT NULL,
    step TEXT NOT NULL, detail TEXT, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rejects (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, line INTEGER NOT NULL,
    key TEXT, reason TEXT NOT NULL, at REAL NOT NULL, extra TEXT);
"""

_ROW_COLUMNS = (
    "key, line, run_id, state, user_id, avatar_id, export_path, error_kind, error, possible_orphans"
)
# The PostgreSQL journal's _UPDATE: 'set' records the input problem, 'clear' clears a
# stale one, 'keep' leaves it; the manifest's own columns are replaced when given.
_READ_AGAIN = (
    "UPDATE rows SET line = ?, run_id = ?, updated_at = ?,"
    " error_kind = CASE ? WHEN 'set' THEN 'input' WHEN 'clear' THEN NULL ELSE error_kind END,"
    " error = CASE ? WHEN 'set' THEN ? WHEN 'clear' THEN NULL ELSE error END,"
    " extra = COALESCE(?, extra) WHERE key = ?"
)


# The reports, as the PostgreSQL journal's STATUS, FAILURES and REJECTS read them.
_STATUS = (
    "SELECT COALESCE(SUM(error IS NOT NULL OR state = 'avatar_failed'), 0),"
    " COALESCE(SUM(possible_orphans), 0), COALESCE(SUM(error_kind = 'input'), 0),"
    " (SELECT COUNT(*) FROM rejects WHERE run_id = (SELECT MAX(id) FROM runs)),"
    " (SELECT COUNT(*) FROM runs), (SELECT outcome FROM runs ORDER BY id DESC LIMIT 1)"
    " FROM rows"
)
_FAILED = (
    "SELECT line, key, COALESCE(error_kind, state),"
    " COALESCE(error, 'Avaturn reported that processing the photos failed'), state FROM rows"
    " WHERE error IS NOT NULL OR state = 'avatar_failed' ORDER BY line LIMIT ?"
)
_REJECTED = (
    "SELECT line, key, 'rejected', reason, NULL FROM rejects"
    " WHERE run_id = (SELECT MAX(id) FROM runs) ORDER BY line LIMIT ?"
)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:  # alive, owned by someone else
        return True
    except OSError:  # ProcessLookupError: gone
        return False
    return True


_KEEP: Any = object()


class Journal(contextlib.AbstractContextManager["Journal"]):
    """The SQLite journal of one onboarding (one file, reused by every rerun)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path: Path = Path(path)
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self._setup()
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{self.path} is not a usable journal: {exc}") from None

    def _setup(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self.transaction():
            # Statement by statement: executescript() would commit on its own.
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self._db.execute(statement)
            found = self._meta("schema_version")
            if found is None:
                self._set_meta("schema_version", SCHEMA_VERSION)
            elif found in _UPGRADES:
                for statement in _UPGRADES[found]:
                    self._db.execute(statement)
                self._set_meta("schema_version", SCHEMA_VERSION)
            elif found != SCHEMA_VERSION:
                raise JournalError(
                    f"journal schema {found} is not supported (expected {SCHEMA_VERSION})"
                )

    def close(self) -> None:
        self._db.close()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The file's connection (for :class:`~avaturn_async._sqlite.SQLiteThread`)."""
        return self._db

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """One atomic commit; nested uses join the outer transaction."""
        return transaction(self._db)

    def _meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, name: str, value: str | None) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def begin_run(self, source: str | None = None) -> int:
        """Start a run and own the journal (see the module docstring); raises
        :class:`JournalBusyError` if a live run owns it."""
        host = socket.gethostname()
        with self.transaction():
            owner = self._meta("owner_pid")
            if owner is not None and self._meta("owner_host") == host:
                pid = int(owner)
                if pid != os.getpid() and _pid_alive(pid):
                    raise JournalBusyError(
                        f"{self.path} is in use by another onboarding run (pid {pid})"
                    )
            cursor = self._db.execute(
                "INSERT INTO runs (pid, host, source, started_at) VALUES (?, ?, ?, ?)",
                (os.getpid(), host, source, time.time()),
            )
            self._set_meta("owner_pid", str(os.getpid()))
            self._set_meta("owner_host", host)
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def end_run(self, run_id: int, outcome: str) -> None:
        """Record how the run ended and give up ownership."""
        with self.transaction():
            self._db.execute(
                "UPDATE runs SET finished_at = ?, outcome = ? WHERE id = ?",
                (time.time(), outcome, run_id),
            )
            if self._meta("owner_pid") == str(os.getpid()):
                self._set_meta("owner_pid", None)

    def record(self, key: str) -> RowRecord | None:
        row = self._db.execute(f"SELECT {_ROW_COLUMNS} FROM rows WHERE key = ?", (key,)).fetchone()
        return None if row is None else record_from_row(row)

    def records(self) -> Iterator[RowRecord]:
        """Every row, in manifest order (streamed from the file)."""
        cursor = self._db.execute(f"SELECT {_ROW_COLUMNS} FROM rows ORDER BY line, key")
        yield from map(record_from_row, cursor)

    def register(
        self, run_id: int, key: str, line: int, problem: str | None, extra: str | None = None
    ) -> Registration:
        """Note that ``key`` was read on ``line``, by the rules of ``JournalStore.register``;
        ``extra`` (the manifest's own columns, JSON) replaces what the row kept."""
        with self.transaction():
            found = self.record(key)
            if found is not None and found.run_id == run_id:
                reason = f"duplicate key {key!r} (first seen on line {found.line})"
                self.reject(run_id, line, key, reason, extra)
                return Registration(record=None, duplicate_of=found.line)
            now = time.time()
            if found is None:
                kind = None if problem is None else "input"
                self._db.execute(
                    "INSERT INTO rows (key, line, run_id, state, error_kind, error, updated_at,"
                    " extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (key, line, run_id, RowState.NEW.value, kind, problem, now, extra),
                )
            else:
                # Bad input is kept on a row still to do; a stale input error is cleared.
                mode = "clear" if found.error_kind == "input" else "keep"
                if problem is not None and not found.is_done(export=False):
                    mode = "set"
                self._db.execute(_READ_AGAIN, (line, run_id, now, mode, mode, problem, extra, key))
            if problem is not None:
                self._step(run_id, key, "invalid", problem)
            record = self.record(key)
            assert record is not None
            return Registration(record=record)

    def advance(
        self,
        run_id: int,
        key: str,
        state: RowState,
        *,
        user_id: str | None = _KEEP,
        avatar_id: str | None = _KEEP,
        export_path: str | None = _KEEP,
        detail: str | None = None,
    ) -> None:
        """Move ``key`` to ``state`` (clearing its error), setting the given columns."""
        sets = ["state = ?", "error_kind = NULL", "error = NULL", "updated_at = ?"]
        values: list[Any] = [state.value, time.time()]
        columns = {"user_id": user_id, "avatar_id": avatar_id, "export_path": export_path}
        for column, value in columns.items():
            if value is not _KEEP:
                sets.append(f"{column} = ?")
                values.append(value)
        with self.transaction():
            self._db.execute(f"UPDATE rows SET {', '.join(sets)} WHERE key = ?", (*values, key))
            self._step(run_id, key, state.value, detail)

    def fail(
        self, run_id: int, key: str, kind: str, reason: str, *, state: RowState | None = None
    ) -> None:
        """Record that the last attempt at ``key`` failed; ``state`` moves it too."""
        reason = redact(reason)
        with self.transaction():
            self._db.execute(
                "UPDATE rows SET error_kind = ?, error = ?, updated_at = ?,"
                " state = COALESCE(?, state) WHERE key = ?",
                (kind, reason, time.time(), None if state is None else state.value, key),
            )
            self._step(run_id, key, f"failed:{kind}", reason)

    def note(self, run_id: int, key: str, step: str, detail: str, *, orphan: bool = False) -> None:
        """Log a step that changes no state; ``orphan`` counts a possibly orphaned user."""
        with self.transaction():
            if orphan:
                self._db.execute(
                    "UPDATE rows SET possible_orphans = possible_orphans + 1 WHERE key = ?", (key,)
                )
            self._step(run_id, key, step, detail)

    def reject(
        self, run_id: int, line: int, key: str | None, reason: str, extra: str | None = None
    ) -> None:
        """Record a manifest line that cannot become a row (no key, duplicate key)."""
        with self.transaction():
            self._db.execute(
                "INSERT INTO rejects (run_id, line, key, reason, at, extra)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, line, key, redact(reason), time.time(), extra),
            )

    def _step(self, run_id: int, key: str, step: str, detail: str | None) -> None:
        self._db.execute(
            "INSERT INTO steps (run_id, key, step, detail, at) VALUES (?, ?, ?, ?, ?)",
            (run_id, key, step, None if detail is None else redact(detail), time.time()),
        )

    def steps(self, key: str) -> list[tuple[str, str | None]]:
        """``(step, detail)`` of ``key``, oldest first."""
        query = "SELECT step, detail FROM steps WHERE key = ? ORDER BY id"
        return [(row[0], row[1]) for row in self._db.execute(query, (key,))]

    def status(self) -> JournalStatus:
        failed, orphans, invalid, rejected, runs, last = self._db.execute(_STATUS).fetchone()
        owner = self._meta("owner_pid")
        running = int(owner) if owner is not None and _pid_alive(int(owner)) else None
        grouped = self._db.execute(
            f"SELECT {OUTCOME_SQL} AS outcome, state, COUNT(*) FROM rows GROUP BY outcome, state"
        )
        return status_from(
            grouped,
            failed=failed,
            possible_orphans=orphans,
            rejected_last_run=rejected,
            runs=runs,
            last_run_outcome=last,
            running_pid=running,
            invalid=invalid,
        )

    def failures(self, limit: int = 20) -> list[FailureRecord]:
        """Failed rows, then the last run's rejected lines, by line; at most ``limit``."""
        failed = self._db.execute(_FAILED, (limit,)).fetchall()
        rejected = self._db.execute(_REJECTED, (limit - len(failed),)).fetchall()
        names = ("line", "key", "kind", "reason", "state")
        return [FailureRecord(**dict(zip(names, row, strict=True))) for row in (*failed, *rejected)]

    def count_failures(self) -> int:
        """Failed rows plus the last run's rejected lines."""
        status = self.status()
        return status.failed + status.rejected_last_run
