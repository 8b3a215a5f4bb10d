"""Opening asyncpg pools and connections with clear errors, and riding out restarts.

Every PostgreSQL backend goes through here, so that a wrong DSN is a
:class:`~avaturn_async.ConfigurationError` at start, an unreachable server a
:class:`~avaturn_async.StorageUnavailableError`, and the errors a restarting server
throws (see ``shared/postgres-notes.md`` §7) are recognised in one place.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import anyio

from .._backoff import ExponentialBackoff
from .._errors import ConfigurationError, StorageUnavailableError
from ._dsn import check_dsn, redact_dsn

if TYPE_CHECKING:
    import asyncpg

__all__ = [
    "connect",
    "create_pool",
    "is_transient",
    "one_line",
    "retry_transient",
    "sqlstate",
    "translate_connect_error",
]

T = TypeVar("T")

#: Waits of :func:`retry_transient`: 50 ms doubling to 2 s, each within ±50 %.
_TRANSIENT_BACKOFF = ExponentialBackoff(initial=0.05, maximum=2.0, jitter=0.5)

#: asyncpg errors that mean "the DSN is wrong", not "try again later".
_CONFIG_ERRORS = (
    "InvalidAuthorizationSpecificationError",  # unknown role, bad password
    "InvalidCatalogNameError",  # no such database
    "InvalidParameterValueError",
)
#: asyncpg errors a restarting or unreachable server raises.
_TRANSIENT_ERRORS = (
    "PostgresConnectionError",  # class 08: connection lost, refused, failure
    "OperatorInterventionError",  # class 57: admin/crash shutdown, cannot connect now
    "TooManyConnectionsError",
    "InterfaceError",  # e.g. "the underlying connection is closed"
    # A connection the server ended between two operations (a fast shutdown) can fail
    # its next step with "cannot switch to state ...; another operation is in progress".
    "InternalClientError",
)


def _asyncpg() -> Any:
    try:
        import asyncpg
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigurationError(
            "PostgreSQL support needs asyncpg: pip install 'avaturn-async[postgres]'"
        ) from exc
    return asyncpg


def _is_named(exc: BaseException, names: tuple[str, ...]) -> bool:
    return any(cls.__name__ in names for cls in type(exc).__mro__)


def sqlstate(exc: BaseException) -> str:
    """The five-character SQLSTATE of a server error, ``""`` for any other error."""
    code = getattr(exc, "sqlstate", None)
    return code if isinstance(code, str) else ""


def one_line(exc: BaseException) -> str:
    """``exc``'s message on one line (server messages may hold a newline and a detail)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    """``True`` for errors a retry after a pause may cure: the server restarting, a lost
    connection, a refused connect or a time-out. Looks through ``__context__`` too, as
    asyncpg wraps a lost connection in an ``InterfaceError`` at transaction exit.
    """
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        transient = isinstance(seen, StorageUnavailableError | OSError | TimeoutError)
        if transient or _is_named(seen, _TRANSIENT_ERRORS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def translate_connect_error(exc: BaseException, dsn: str) -> Exception:
    """The SDK error for ``exc``, raised while connecting to ``dsn``."""
    where = redact_dsn(dsn)
    if _is_named(exc, _CONFIG_ERRORS):
        return ConfigurationError(f"PostgreSQL refused {where}: {exc}")
    if is_transient(exc):
        return StorageUnavailableError(f"PostgreSQL at {where} cannot be reached: {exc}")
    if isinstance(exc, ValueError):
        return ConfigurationError(f"bad PostgreSQL DSN {where}: {exc}")
    return StorageUnavailableError(f"PostgreSQL at {where} failed at connect: {exc!r}")


async def _opened(open_with: str, dsn: str, application_name: str | None, **options: Any) -> Any:
    """asyncpg's ``open_with(dsn, ...)``, its errors said as the SDK's."""
    driver = _asyncpg()
    check_dsn(dsn)
    settings = None
    # An application_name in the DSN's own query wins (asyncpg would let ours win).
    if application_name is not None and "application_name" not in parse_qs(urlsplit(dsn).query):
        settings = {"application_name": application_name}
    try:
        return await getattr(driver, open_with)(dsn, server_settings=settings, **options)
    except Exception as exc:
        raise translate_connect_error(exc, dsn) from None


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    connect_timeout: float = 10.0,
    command_timeout: float = 60.0,
    application_name: str | None = None,
    statement_cache_size: int = 100,
) -> asyncpg.Pool:
    """An asyncpg pool for ``dsn``, connected before it is returned (``min_size``
    connections; with ``min_size=0``, none: the first acquire connects).

    Raises :class:`ConfigurationError` for a malformed DSN, an unknown role or
    database, or a refused password; :class:`StorageUnavailableError` when no
    server answers within ``connect_timeout``.
    """
    pool: asyncpg.Pool = await _opened(
        "create_pool",
        dsn,
        application_name,
        min_size=min_size,
        max_size=max_size,
        timeout=connect_timeout,
        command_timeout=command_timeout,
        statement_cache_size=statement_cache_size,
    )
    return pool


async def connect(
    dsn: str,
    *,
    connect_timeout: float = 10.0,
    application_name: str | None = None,
    statement_cache_size: int = 100,
) -> asyncpg.Connection:
    """One dedicated connection (for ``LISTEN``: a pool resets listeners on release)."""
    conn: asyncpg.Connection = await _opened(
        "connect",
        dsn,
        application_name,
        timeout=connect_timeout,
        statement_cache_size=statement_cache_size,
    )
    return conn


async def retry_transient(
    operation: Callable[[], Awaitable[T]],
    *,
    deadline: float = 30.0,
    what: str = "PostgreSQL operation",
    retry_if: Callable[[BaseException], bool] = is_transient,
) -> T:
    """Run ``operation`` again while it fails with errors ``retry_if`` accepts
    (:func:`is_transient` ones by default).

    Backs off from 50 ms to 2 s with jitter; after ``deadline`` seconds raises
    :class:`StorageUnavailableError`. ``operation`` must be safe to repeat (an
    outcome lost with a dropped COMMIT is unknown): fence writes with tokens and
    ``ON CONFLICT``.
    """
    give_up_at = time.monotonic() + deadline
    for retry in itertools.count(1):
        try:
            return await operation()
        except Exception as exc:
            if not retry_if(exc):
                raise
            if time.monotonic() + _TRANSIENT_BACKOFF.nominal(retry) > give_up_at:
                raise StorageUnavailableError(
                    f"{what} failed for {deadline:g}s: PostgreSQL unavailable ({exc})"
                ) from exc
        await anyio.sleep(_TRANSIENT_BACKOFF.delay(retry))
    raise AssertionError("unreachable: itertools.count is endless")  # pragma: no cover
