"""PostgreSQL backends, for running many replicas and workers (extra ``postgres``).

Importing this package does not import asyncpg; the backends do, when they are
created. The building blocks every backend shares are public so that your own
code (and a second driver, one day) can use them:

- :class:`PostgresConnector`: one pool of :data:`DEFAULT_POOL_SIZE` connections and
  one ``LISTEN`` connection for every backend of a process, named
  :data:`APPLICATION_NAME` in ``pg_stat_activity``;
- :func:`is_postgres_dsn`, :func:`is_url`, :func:`check_dsn`, :func:`redact_dsn`:
  DSNs without I/O;
- :func:`create_pool`, :func:`connect`: asyncpg with clear errors at start;
- :func:`is_transient`, :func:`retry_transient`: riding out a server restart;
- :func:`migrate`, :func:`schema_version`: versioned, concurrency-safe schemas.

The backends: :class:`PostgresInbox` (the durable webhook inbox, with its
:class:`PostgresInboxStore`), :class:`PostgresIdempotencyStore` (the plain
receivers' duplicate guard), :class:`PostgresEventHub` (``job.wait()`` resolved
by a webhook any replica received), :class:`PostgresGate` (one rate-limit pause
for every process), :class:`PostgresRateBudget` (one request rate for every
process), :class:`PostgresLearnedPace` (one rate learned from 429s for every
process), :class:`PostgresJournal` (one onboarding batch shared by many workers).
Each takes a DSN (and opens a connector of its own) or a :class:`PostgresConnector`
shared with the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from .._errors import SchemaVersionError as SchemaVersionError
    from .._errors import StorageError as StorageError
    from .._errors import StorageUnavailableError as StorageUnavailableError
    from ._budget import PostgresRateBudget as PostgresRateBudget
    from ._connect import connect as connect
    from ._connect import create_pool as create_pool
    from ._connect import is_transient as is_transient
    from ._connect import retry_transient as retry_transient
    from ._connector import APPLICATION_NAME as APPLICATION_NAME
    from ._connector import DEFAULT_POOL_SIZE as DEFAULT_POOL_SIZE
    from ._connector import PostgresConnector as PostgresConnector
    from ._dedupe import PostgresIdempotencyStore as PostgresIdempotencyStore
    from ._dsn import check_dsn as check_dsn
    from ._dsn import is_postgres_dsn as is_postgres_dsn
    from ._dsn import is_url as is_url
    from ._dsn import redact_dsn as redact_dsn
    from ._gate import PostgresGate as PostgresGate
    from ._hub import PostgresEventHub as PostgresEventHub
    from ._hub import PostgresHubChannel as PostgresHubChannel
    from ._inbox import INBOX_CHANNEL as INBOX_CHANNEL
    from ._inbox import PostgresInbox as PostgresInbox
    from ._inbox import PostgresInboxStore as PostgresInboxStore
    from ._journal import DEFAULT_LEASE as DEFAULT_LEASE
    from ._journal import PostgresJournal as PostgresJournal
    from ._learned import PostgresLearnedPace as PostgresLearnedPace
    from ._listen import Subscription as Subscription
    from ._migrate import SCHEMA_TABLE as SCHEMA_TABLE
    from ._migrate import migrate as migrate
    from ._migrate import schema_version as schema_version
    from ._tasks import BackgroundTask as BackgroundTask

# One line above per public name: __all__ and the lazy table are read from them.
__getattr__: Callable[[str], Any]
__dir__: Callable[[], list[str]]
__all__: list[str]
__getattr__, __dir__, __all__ = _lazy_exports(
    __name__, __file__, renamed={"PostgresTransport": "PostgresHubChannel"}
)
