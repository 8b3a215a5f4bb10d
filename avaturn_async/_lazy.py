"""Package faces whose public names are written once (PEP 562 lazy re-exports).

A package lists each public name on one line, for type checkers and "go to
definition", in the form they read as an explicit re-export::

    if TYPE_CHECKING:
        from ._client import AvaturnClient as AvaturnClient

and ends with ``__getattr__, __dir__, __all__ = lazy_exports(__name__, __file__)``.
That reads the same lines back (a regular expression over the file: the ``ast``
module would cost a cold start more than the rest of the face), so ``__all__``
and the table of where each name lives come from that one source. The first
access to a name imports its module and binds the name in the package: importing
one corner loads only that corner, and a serverless webhook receiver does not pay
for aiohttp, the client or sqlite3 on every cold start.

An exported exception reports the package as its ``__module__`` once it has been
handed out, so a traceback names ``avaturn_async.NotFoundError``, the name to catch.
Everything else keeps its defining module, where ``typing.get_type_hints`` and
cattrs evaluate its string annotations, and where documentation tools (which read
the source) find it anyway.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

from ._deprecated import warn_renamed

__all__ = ["lazy_exports"]

_REEXPORT = re.compile(r"^\s*from (\.[\w.]*) import (\w+) as (\w+)\s*$", re.MULTILINE)


def reexports(source: str) -> dict[str, str]:
    """Public name -> the module (relative, e.g. ``"._client"``) that defines it."""
    return {name: module for module, name, alias in _REEXPORT.findall(source) if name == alias}


def lazy_exports(
    package: str, file: str, renamed: Mapping[str, str] | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for the package whose ``__init__`` is ``file``.

    ``renamed`` maps deprecated names (not in ``__all__``) to their new ones: each
    access to an old name warns and returns the new name's object.
    """
    with open(file, encoding="utf-8") as handle:
        homes = reexports(handle.read())
    old_names = renamed or {}

    def __getattr__(name: str) -> Any:
        if name in old_names:
            warn_renamed(f"{package}.{name}", old_names[name])
            name = old_names[name]
        module = homes.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        _name_the_package(value, package)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | homes.keys())

    return __getattr__, __dir__, sorted(homes)


def _name_the_package(value: Any, package: str) -> None:
    # Exceptions only (module docstring); functions need nothing: their globals travel along.
    if not (isinstance(value, type) and issubclass(value, BaseException)):
        return
    module = value.__module__
    # Only what a private module of ours defines; an error two packages export
    # keeps the first package it was handed out by.
    if module.startswith("avaturn_async.") and module.rpartition(".")[2].startswith("_"):
        value.__module__ = package
