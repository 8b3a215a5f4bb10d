"""The emulator's state on disk, so that a restarted emulator is the same service.

With ``AvaturnEmulator(state_file=...)`` every record the state changes is
written to one SQLite file before the request that changed it is answered (one
upsert or delete per record, one commit per change), and a restarted emulator
loads it back. This is what lets ``avaturn onboard --emulator`` resume after a
crash exactly as it would against Avaturn: the ids in the journal still exist.

SQLite runs in WAL mode with ``synchronous=NORMAL``: a committed change survives
the process being killed at any point (``kill -9``), like the journal beside it.

What is kept: users, avatars (status, upload signature, photos' sizes and
hashes, customization, version), renders, exports, sessions and the asset
catalog. What is not: events, webhook deliveries, stats, fault plans and test
hooks, which belong to one process. Work that was under way when the process
ended (processing, renders, exports) starts again on load; an upload that was
being received is given back (its connection died with the process).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from ..._errors import ConfigurationError
from ._records import AvatarRecord, ExportRecord, RenderRecord, SessionRecord, UserRecord

__all__ = ["RECORD_KINDS", "EmulatorStore", "EmulatorStoreError"]

RECORD_KINDS: dict[str, type[Any]] = {
    "users": UserRecord,
    "avatars": AvatarRecord,
    "renders": RenderRecord,
    "exports": ExportRecord,
    "sessions": SessionRecord,
}
"""The state's record tables (attribute names of ``EmulatorState``) and their types."""

_CATALOG = ("catalog", "assets")  # (kind, id) of the asset catalog's one entry

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS records ("
    " kind TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, id))"
)
_UPSERT = "INSERT OR REPLACE INTO records (kind, id, body) VALUES (?, ?, ?)"


class EmulatorStoreError(ConfigurationError):
    """The emulator's ``state_file`` cannot be used (not SQLite, or not an emulator's)."""


def _encode(record: Any) -> str:
    fields = dataclasses.asdict(record)
    for name, value in fields.items():
        if isinstance(value, datetime):
            fields[name] = value.isoformat()
    return json.dumps(fields, separators=(",", ":"))


def _decode(kind: str, body: str) -> Any:
    fields = json.loads(body)
    if "created_at" in fields:
        fields["created_at"] = datetime.fromisoformat(fields["created_at"])
    return RECORD_KINDS[kind](**fields)


class EmulatorStore:
    """One SQLite file holding the records of one emulator's state."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise EmulatorStoreError(f"{self.path} is not an emulator state file: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def load(self) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
        """Every stored record by kind and id, and the asset catalog (None if never saved)."""
        tables: dict[str, dict[str, Any]] = {kind: {} for kind in RECORD_KINDS}
        catalog: dict[str, Any] | None = None
        try:
            for kind, key, body in self._db.execute("SELECT kind, id, body FROM records"):
                if (kind, key) == _CATALOG:
                    catalog = json.loads(body)
                else:
                    tables[kind][key] = _decode(kind, body)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmulatorStoreError(f"{self.path} holds an unreadable record: {exc}") from None
        return tables, catalog

    def save(self, kind: str, key: str, record: Any | None) -> None:
        """Write ``record`` (``None``: it was deleted); committed on return."""
        if record is None:
            self._db.execute("DELETE FROM records WHERE kind = ? AND id = ?", (kind, key))
            return
        self._db.execute(_UPSERT, (kind, key, _encode(record)))

    def save_catalog(self, assets: dict[str, str], retired: set[str]) -> None:
        body = json.dumps({"assets": assets, "retired": sorted(retired)})
        self._db.execute(_UPSERT, (*_CATALOG, body))
