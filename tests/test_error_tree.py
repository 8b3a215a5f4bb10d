"""The error tree in ``avaturn_async._errors``'s docstring is the whole truth.

It promises to list every exception the package raises, wherever it is defined,
with its place in the hierarchy: these tests keep it from drifting when an error
is added, moved or re-parented.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator

import avaturn_async
from avaturn_async import _errors

# "    │   ├── JournalBusyError    another live process ..." -> depth 2, the name,
# and the builtins it also subclasses, in parentheses.
TREE_LINE = re.compile(r"^    ((?:[│ ]   )*)[├└]── (\w+)(?: \((\w+)\))?")


def _subclasses(cls: type[BaseException]) -> Iterator[type[BaseException]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _exceptions_users_can_meet() -> set[type[BaseException]]:
    """Ours, and not an internal signal (a private name, or one left in a private module).

    Exported classes name their public module in ``__module__``, so a private
    module there means nothing outside the package ever sees the class.
    """
    for info in pkgutil.walk_packages(avaturn_async.__path__, "avaturn_async."):
        if not info.name.endswith(".__main__"):
            importlib.import_module(info.name)
    return {
        cls
        for cls in _subclasses(BaseException)
        if cls.__module__.startswith("avaturn_async")
        and not any(part.startswith("_") for part in cls.__module__.split("."))
        and not cls.__name__.startswith("_")
    }


def _tree() -> dict[str, tuple[str, str | None]]:
    """Each exception named in the tree -> (its parent in the tree, its builtin or None)."""
    assert _errors.__doc__ is not None
    parents = ["AvaturnError"]
    tree: dict[str, tuple[str, str | None]] = {}
    for line in _errors.__doc__.splitlines():
        match = TREE_LINE.match(line)
        if match is None:
            continue
        indent, name, builtin = match.groups()
        depth = len(indent) // 4 + 1
        del parents[depth:]
        tree[name] = (parents[-1], builtin)
        parents.append(name)
    return tree


def test_every_exception_users_can_meet_is_in_the_error_tree() -> None:
    named = set(_tree()) | {"AvaturnError"}
    missing = {cls.__name__ for cls in _exceptions_users_can_meet()} - named
    assert not missing, sorted(missing)


def test_the_error_tree_gives_each_exception_its_real_parent_and_builtin() -> None:
    ours = {cls.__name__: cls for cls in _exceptions_users_can_meet()}
    wrong = []
    for name, (parent, builtin) in _tree().items():
        expected_bases = {parent} | ({builtin} if builtin else set())
        if name not in ours or {base.__name__ for base in ours[name].__bases__} != expected_bases:
            wrong.append(name)
    assert not wrong, wrong
