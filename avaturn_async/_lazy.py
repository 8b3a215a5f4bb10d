"""Lazy re-exports for packages (PEP 562), so importing one corner loads only that corner.

Part of the webhook path's cold-start budget (ARCHITECTURE.md): ``import
avaturn_async.webhooks`` loads no client, aiohttp or sqlite3. Packages list their
re-exports in a table and hand it to :func:`lazy_exports`, which returns the
module-level ``__getattr__`` and ``__dir__``. The same names are imported under
``if TYPE_CHECKING:`` so that type checkers and IDEs see them; a test checks
that the table and those imports agree and that every name resolves.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._deprecated import warn_renamed

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, table: Mapping[str, Iterable[str]], renamed: Mapping[str, str] | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, exporting ``table``'s names lazily.

    ``table`` maps a module (relative to ``package``, e.g. ``"._client"``) to the
    names it provides. The first access to a name imports its module and binds
    the name in the package, so later accesses cost nothing. ``renamed`` maps
    deprecated names to their new ones: each access to an old name warns.
    """
    homes = {name: module for module, names in table.items() for name in names}
    old_names = renamed or {}

    def __getattr__(name: str) -> Any:
        if name in old_names:
            warn_renamed(f"{package}.{name}", old_names[name])
            name = old_names[name]
        module = homes.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | homes.keys())

    return __getattr__, __dir__
