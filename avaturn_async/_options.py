"""Reading ``AvaturnClient``'s options: one meaning each, old spellings deprecated.

``None`` used to mean "default" for ``retry`` and ``timeouts``, "off" for
``adaptive`` and "auto" for ``tracing``. Each option now has explicit values;
``None`` still works for one release cycle and warns.
"""

from __future__ import annotations

import os
import warnings
from typing import Literal, TypeVar

from ._adaptive import AdaptiveConcurrency
from ._errors import ConfigurationError
from ._pacing import RateBudget

__all__ = [
    "DEFAULT_BASE_URL",
    "adaptive_settings",
    "or_default",
    "rate_limit",
    "read_api_key",
    "read_base_url",
    "tracing_mode",
]

T = TypeVar("T")

DEFAULT_BASE_URL = "https://api.avaturn.me"


def read_api_key(api_key: str | None) -> str:
    """``api_key``, else ``$AVATURN_API_KEY``: a missing key fails here, not at the first call."""
    key = api_key if api_key is not None else os.environ.get("AVATURN_API_KEY")
    if not key or not key.strip():
        raise ConfigurationError(
            "no API key: pass api_key=... or set the AVATURN_API_KEY environment variable"
        )
    return key.strip()


def read_base_url(base_url: str | None) -> str:
    """``base_url``, else ``$AVATURN_BASE_URL``, else :data:`DEFAULT_BASE_URL`."""
    url = base_url or os.environ.get("AVATURN_BASE_URL") or DEFAULT_BASE_URL
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"base_url must start with http:// or https://, got {url!r}")
    return url.rstrip("/")


def _deprecated_none(message: str) -> None:
    warnings.warn(message, DeprecationWarning, stacklevel=4)  # the caller of AvaturnClient()


def adaptive_settings(adaptive: AdaptiveConcurrency | bool | None) -> AdaptiveConcurrency | None:
    if adaptive is None:
        _deprecated_none(
            "adaptive=None is deprecated: pass adaptive=False to turn the shared backoff off"
        )
        return None
    if isinstance(adaptive, bool):
        return AdaptiveConcurrency() if adaptive else None
    if not isinstance(adaptive, AdaptiveConcurrency):
        raise ConfigurationError("adaptive must be True, False or an AdaptiveConcurrency")
    return adaptive


def rate_limit(limit: object) -> float | RateBudget | None:
    """``rate_limit=``: a positive number of requests per second, a budget, or ``None``."""
    if limit is None or isinstance(limit, RateBudget):
        return limit
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
        raise ConfigurationError(
            "rate_limit must be a positive number of requests per second, a RateBudget "
            f"or None, not {limit!r}"
        )
    return float(limit)


def tracing_mode(tracing: bool | Literal["auto"] | None) -> bool | Literal["auto"]:
    if tracing is None:
        _deprecated_none('tracing=None is deprecated: "auto" (the default) means the same')
        return "auto"
    if tracing != "auto" and not isinstance(tracing, bool):
        raise ConfigurationError('tracing must be True, False or "auto"')
    return tracing


def or_default(value: T | None, default: T, name: str) -> T:
    if value is None:
        _deprecated_none(f"{name}=None is deprecated: leave it out for the default")
        return default
    return value
