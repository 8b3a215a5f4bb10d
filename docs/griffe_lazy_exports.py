"""Griffe extension: the package faces' public names, for the reference pages.

Each package face lists its public names once, as ``from ._x import Name as Name``
lines under ``if TYPE_CHECKING:``, and computes ``__all__`` from them at import time
(``avaturn_async._lazy``). Griffe reads source without running it, so it sees no
``__all__`` and would render none of those names; this extension hands it the same
list the face computes: every name imported under ``TYPE_CHECKING`` in a module
whose ``__all__`` is assigned by ``_lazy_exports(...)``.
"""

from __future__ import annotations

from typing import Any

import griffe


class LazyExports(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for module in [pkg, *_submodules(pkg)]:
            if "_lazy_exports(" not in module.source:
                continue
            module.exports = [
                name
                for name, member in module.members.items()
                if member.is_alias and not member.runtime and not name.startswith("_")
            ]


def _submodules(module: griffe.Module) -> list[griffe.Module]:
    found = []
    for member in module.members.values():
        if not member.is_alias and member.is_module:
            assert isinstance(member, griffe.Module)
            found += [member, *_submodules(member)]
    return found
