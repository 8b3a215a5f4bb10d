"""Reading ``AvaturnClient``'s options: one meaning each, old spellings deprecated.

``None`` used to mean "default" for ``retry`` and ``timeouts``, "off" for
``adaptive`` and "auto" for ``tracing``. Each option now has explicit values;
``None`` still works for one release cycle and warns.
"""

from __future__ import annotations

import warnings
from typing import Literal, TypeVar

from ._adaptive import AdaptiveConcurrency
from ._errors import ConfigurationError

__all__ = ["adaptive_settings", "or_default", "tracing_mode"]

T = TypeVar("T")


def adaptive_settings(adaptive: AdaptiveConcurrency | bool | None) -> AdaptiveConcurrency | None:
    if adaptive is None:
        warnings.warn(
            "adaptive=None is deprecated: pass adaptive=False to turn the shared backoff off",
            DeprecationWarning,
            stacklevel=3,
        )
        return None
    if isinstance(adaptive, bool):
        return AdaptiveConcurrency() if adaptive else None
    if not isinstance(adaptive, AdaptiveConcurrency):
        raise ConfigurationError("adaptive must be True, False or an AdaptiveConcurrency")
    return adaptive


def tracing_mode(tracing: bool | Literal["auto"] | None) -> bool | None:
    if tracing is None:
        warnings.warn(
            'tracing=None is deprecated: "auto" (the default) means the same',
            DeprecationWarning,
            stacklevel=3,
        )
        return None
    if tracing == "auto":
        return None
    if not isinstance(tracing, bool):
        raise ConfigurationError('tracing must be True, False or "auto"')
    return tracing


def or_default(value: T | None, default: T, name: str) -> T:
    if value is None:
        warnings.warn(
            f"{name}=None is deprecated: leave it out for the default",
            DeprecationWarning,
            stacklevel=3,
        )
        return default
    return value
