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
    """Every exception a public package exports (an internal signal is never exported)."""
    met: set[type[BaseException]] = set()
    for info in pkgutil.walk_packages(avaturn_async.__path__, "avaturn_async."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if isinstance(value, type) and issubclass(value, BaseException):
                met.add(value)
    return met | {
        value
        for name in avaturn_async.__all__
        if isinstance(value := getattr(avaturn_async, name), type)
        and issubclass(value, BaseException)
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
