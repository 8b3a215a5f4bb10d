"""Old spellings that keep working for one release, each warning when used."""

from __future__ import annotations

import warnings
from typing import TypeVar

__all__ = ["renamed_argument", "warn_renamed"]

T = TypeVar("T")


def warn_renamed(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn the caller's caller that ``old`` is deprecated in favour of ``new``."""
    message = f"{old} is deprecated and will be removed in the next release: use {new}"
    warnings.warn(message, DeprecationWarning, stacklevel=stacklevel)


def renamed_argument(owner: str, old: str, new: str, old_value: T | None, new_value: T) -> T:
    """``new_value``, or ``old_value`` with a warning when the caller used keyword ``old``."""
    if old_value is None:
        return new_value
    warn_renamed(f"{owner}({old}=...)", f"{new}=...", stacklevel=4)
    return old_value
