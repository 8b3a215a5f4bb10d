"""Telling a PostgreSQL DSN from a file path, and showing one without its password.

Free of I/O and of asyncpg, so the CLI and the SQLite code paths can ask
"is this PostgreSQL?" without importing the driver.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from .._errors import ConfigurationError

__all__ = ["check_dsn", "is_postgres_dsn", "redact_dsn"]

_SCHEMES = ("postgresql://", "postgres://")
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def is_postgres_dsn(value: str | os.PathLike[str]) -> bool:
    """``True`` when ``value`` is a ``postgresql://`` or ``postgres://`` URL, not a path."""
    return isinstance(value, str) and value.lower().startswith(_SCHEMES)


def redact_dsn(dsn: str) -> str:
    """``dsn`` with any password (in the URL or a ``password=`` option) replaced by ``***``."""
    hidden = _PASSWORD.sub(r"\1***@", dsn)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", hidden)


def check_dsn(dsn: str) -> str:
    """Return ``dsn`` if it is a usable PostgreSQL URL; else a :class:`ConfigurationError`.

    Checks the form only (scheme, host or socket, port number); whether the server
    answers is learnt when connecting.
    """
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
