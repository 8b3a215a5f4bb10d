"""Public names report the public module they are imported from.

Classes and functions are defined in private modules (``avaturn_async._errors``)
and exported by a package (``avaturn_async``). Left alone, tracebacks, reprs,
pickles and documentation would name the private module. Each private module
ends with ``public("avaturn_async", Name, ...)`` for the names its package
exports, so this works without importing anything eagerly: whichever way a
module is first imported, its exported names are already fixed up.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["public"]


def public(module: str, *objects: type[Any] | Callable[..., Any]) -> None:
    """Set ``__module__`` of each object to ``module``, the public package exporting it.

    A class's own string annotations are evaluated first, in the module that
    wrote them: ``typing.get_type_hints`` (and cattrs, through it) looks names
    up in ``sys.modules[cls.__module__]``, which is about to change. An
    annotation that cannot be evaluated yet (a ``TYPE_CHECKING`` import) stays
    a string.
    """
    for obj in objects:
        if isinstance(obj, type):
            _resolve_own_annotations(obj)
        obj.__module__ = module


def _resolve_own_annotations(cls: type[Any]) -> None:
    own = inspect.get_annotations(cls)
    if not own:
        return
    namespace = vars(sys.modules[cls.__module__])
    cls.__annotations__ = {
        name: _evaluated(annotation, namespace, dict(vars(cls)))
        for name, annotation in own.items()
    }


def _evaluated(annotation: Any, namespace: dict[str, Any], local: dict[str, Any]) -> Any:
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, namespace, local)
    except Exception:  # a TYPE_CHECKING-only name: type checkers still read the text
        return annotation
