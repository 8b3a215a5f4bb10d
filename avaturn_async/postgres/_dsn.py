"""Telling a PostgreSQL DSN from a file path, and showing one without its password.

Free of I/O and of asyncpg, so the CLI and the SQLite code paths can ask
"is this PostgreSQL?" without importing the driver. Anything with ``://`` in it
is a URL, never a file path: a scheme other than ``postgresql://`` or
``postgres://`` (``mysql://``, ``postgresql+asyncpg://``, a typo) is a
:class:`~avaturn_async.ConfigurationError`, not a file of that name.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from .._errors import ConfigurationError
from .._redact import looks_like_url, redact_location

__all__ = ["check_dsn", "is_postgres_dsn", "is_url", "redact_dsn"]

_SCHEMES = ("postgresql://", "postgres://")


def is_url(value: str | os.PathLike[str]) -> bool:
    """``True`` when ``value`` has ``://`` in it: a URL (maybe not one we support), not a path."""
    return looks_like_url(value)


def is_postgres_dsn(value: str | os.PathLike[str]) -> bool:
    """``True`` when ``value`` is a ``postgresql://`` or ``postgres://`` URL, not a path."""
    return isinstance(value, str) and value.lower().startswith(_SCHEMES)


def redact_dsn(dsn: str) -> str:
    """``dsn`` with any password (in the URL or a ``password=`` option) replaced by ``***``."""
    return redact_location(dsn)


def _scheme_problem(dsn: str) -> str:
    scheme = dsn.split("://", 1)[0]
    if scheme.lower().startswith(("postgresql+", "postgres+")):
        fix = "write postgresql:// (the driver is always asyncpg)"
    else:
        fix = "only postgresql:// (or postgres://) DSNs are supported; a file path has no '://'"
    return f"unsupported URL scheme {scheme + '://'!r} in {redact_dsn(dsn)!r}: {fix}"


def check_dsn(dsn: str) -> str:
    """Return ``dsn`` if it is a usable PostgreSQL URL; else a :class:`ConfigurationError`.

    Checks the form only (scheme, host or socket, port number); whether the server
    answers is learnt when connecting.
    """
    if is_url(dsn) and not is_postgres_dsn(dsn):
        raise ConfigurationError(_scheme_problem(dsn))
    if not is_postgres_dsn(dsn):
        raise ConfigurationError(
            f"not a PostgreSQL DSN: {redact_dsn(str(dsn))!r} "
            "(expected postgresql://user:password@host:port/database)"
        )
    try:
        port = urlsplit(dsn).port
    except ValueError as exc:
        raise ConfigurationError(f"bad port in PostgreSQL DSN {redact_dsn(dsn)!r}") from exc
    if port == 0:
        raise ConfigurationError(f"bad port in PostgreSQL DSN {redact_dsn(dsn)!r}")
    return dsn
