"""PostgreSQL backends, for running many replicas and workers (extra ``postgres``).

Importing this package does not import asyncpg; the backends do, when they are
created. The building blocks every backend shares are public so that your own
code (and a second driver, one day) can use them:

- :func:`is_postgres_dsn`, :func:`check_dsn`, :func:`redact_dsn`: DSNs without I/O;
- :func:`create_pool`, :func:`connect`: asyncpg with clear errors at start;
- :func:`is_transient`, :func:`retry_transient`: riding out a server restart;
- :func:`migrate`, :func:`schema_version`: versioned, concurrency-safe schemas.

The backends: :class:`PostgresInbox` (the durable webhook inbox, with its
:class:`PostgresInboxStore`), :class:`PostgresIdempotencyStore` (the plain
receivers' duplicate guard), :class:`PostgresEventHub` (``job.wait()`` resolved
by a webhook any replica received), :class:`PostgresGate` (one rate-limit pause
for every process), :class:`PostgresJournal` (one onboarding batch shared by
many workers).
"""

from typing import Any

from .._deprecated import warn_renamed as _warn_renamed
from .._errors import SchemaVersionError, StorageError, StorageUnavailableError
from ._connect import connect, create_pool, is_transient, retry_transient
from ._dedupe import PostgresIdempotencyStore
from ._dsn import check_dsn, is_postgres_dsn, redact_dsn
from ._gate import PostgresGate
from ._hub import PostgresEventHub, PostgresHubChannel
from ._inbox import INBOX_CHANNEL, PostgresInbox, PostgresInboxStore
from ._journal import DEFAULT_LEASE, PostgresJournal
from ._migrate import SCHEMA_TABLE, migrate, schema_version

__all__ = [
    "DEFAULT_LEASE",
    "INBOX_CHANNEL",
    "PostgresIdempotencyStore",
    "PostgresInbox",
    "PostgresInboxStore",
    "SCHEMA_TABLE",
    "PostgresJournal",
    "PostgresEventHub",
    "PostgresGate",
    "PostgresHubChannel",
    "SchemaVersionError",
    "StorageError",
    "StorageUnavailableError",
    "check_dsn",
    "connect",
    "create_pool",
    "is_postgres_dsn",
    "is_transient",
    "migrate",
    "redact_dsn",
    "retry_transient",
    "schema_version",
]


def __getattr__(name: str) -> Any:
    # Deprecated names, served (with a warning) for one release.
    if name == "PostgresTransport":
        _warn_renamed(f"{__name__}.{name}", "PostgresHubChannel")
        return PostgresHubChannel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
