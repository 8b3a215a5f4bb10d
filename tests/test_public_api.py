"""The public API is what ``__all__`` says, no more and no less (as httpx and anyio check).

Public modules are those whose dotted path has no ``_``-prefixed part. For each:
every name in ``__all__`` imports, none is private, and nothing public-looking is
bound there without being listed. Across them: a class met in a public signature
is itself exported, every error users can catch is exported, and exported
errors name a public module in ``__module__`` (issue 12), one where they can be
found, so tracebacks never point into private files.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import typing
from collections.abc import Iterator
from typing import Any

import pytest

import avaturn_async
from avaturn_async import AvaturnError

# The clients' endpoint groups: users reach them as client.users, ... and never build
# them, so they are not exported (openai-python's resources are not at its top level either).
# Nor is the sync facade's attribute descriptor: users meet only the type it forwards.
CONSTRUCTOR_ONLY = {
    f"avaturn_async.{module}.{name}"
    for module in ("_resources", "sync._resources")
    for name in ("Users", "Sessions", "Avatars", "Renders", "Exports")
} | {"avaturn_async._client_options.Forward"}


def _all_module_names() -> list[str]:
    found = [avaturn_async.__name__]
    for info in pkgutil.walk_packages(avaturn_async.__path__, f"{avaturn_async.__name__}."):
        if not info.name.endswith(".__main__"):
            found.append(info.name)
    return found


ALL_MODULES = _all_module_names()
PUBLIC_MODULES = [
    name for name in ALL_MODULES if not any(part.startswith("_") for part in name.split("."))
]
PUBLIC_PACKAGES = [
    name for name in PUBLIC_MODULES if hasattr(importlib.import_module(name), "__path__")
]


def _exported() -> dict[int, tuple[str, str]]:
    """id(object) -> (public module, name) for every name in a public ``__all__``."""
    exported: dict[int, tuple[str, str]] = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            exported.setdefault(id(getattr(module, name)), (module_name, name))
    return exported


def _is_ours(obj: object) -> bool:
    return (inspect.isclass(obj) or inspect.isfunction(obj)) and getattr(
        obj, "__module__", ""
    ).startswith(avaturn_async.__name__)


def test_public_modules_are_found() -> None:
    assert {"avaturn_async", "avaturn_async.webhooks", "avaturn_async.testing"} <= set(
        PUBLIC_MODULES
    )
    assert "avaturn_async.batch" in PUBLIC_MODULES


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_name_in_all_imports(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = []
    for name in module.__all__:
        try:
            exec(f"from {module_name} import {name}", {})
        except ImportError:
            missing.append(name)
    assert not missing, missing


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_all_lists_no_private_name_and_no_name_twice(module_name: str) -> None:
    names = importlib.import_module(module_name).__all__
    assert [n for n in names if n.startswith("_") and n != "__version__"] == []
    assert len(names) == len(set(names))


@pytest.mark.parametrize("module_name", PUBLIC_PACKAGES)
def test_every_class_and_function_of_ours_bound_in_a_public_package_is_in_all(
    module_name: str,
) -> None:
    module = importlib.import_module(module_name)
    for name in module.__all__:  # a lazy package binds its names on first use
        getattr(module, name)
    unlisted = [
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and _is_ours(value) and name not in module.__all__
    ]
    assert not unlisted, unlisted


def _signature_parts(obj: Any) -> Iterator[Any]:
    """Functions and classes whose annotations users meet through ``obj``."""
    if inspect.isclass(obj):
        yield obj
        for name, member in vars(obj).items():
            if name.startswith("_") and name != "__init__":
                continue
            if isinstance(member, property):
                yield member.fget
            elif isinstance(member, (classmethod, staticmethod)):
                yield member.__func__
            elif inspect.isfunction(member):
                yield member
    elif inspect.isfunction(obj):
        yield obj


def _classes_in(annotation: Any) -> Iterator[type]:
    if isinstance(annotation, type):
        yield annotation
    origin = typing.get_origin(annotation)
    if isinstance(origin, type):
        yield origin
    for arg in typing.get_args(annotation):
        yield from _classes_in(arg)


def _hints(obj: Any) -> Iterator[Any]:
    """The evaluated annotations of ``obj`` (for a class, of it and its bases)."""
    if inspect.isclass(obj):
        yield from typing.get_type_hints(obj).values()
        return
    # TYPE_CHECKING-only names of ours are looked up among the package's public
    # names; a third-party one (asyncpg's types) is not ours to check.
    namespace = {**vars(avaturn_async), **obj.__globals__}
    for annotation in inspect.get_annotations(obj).values():
        try:
            yield eval(annotation, namespace) if isinstance(annotation, str) else annotation
        except NameError:
            continue


def test_classes_met_in_public_signatures_are_exported() -> None:
    exported = _exported()
    unexported: set[str] = set()
    for module_name, name in set(exported.values()):
        obj = getattr(importlib.import_module(module_name), name)
        for part in _signature_parts(obj):
            for annotation in _hints(part):
                for cls in _classes_in(annotation):
                    qualified = f"{cls.__module__}.{cls.__qualname__}"
                    if (
                        cls.__module__.startswith(avaturn_async.__name__)
                        and not cls.__name__.startswith("_")
                        and id(cls) not in exported
                        and qualified not in CONSTRUCTOR_ONLY
                    ):
                        unexported.add(f"{qualified} (in {module_name}.{name})")
    assert not unexported, sorted(unexported)


def _subclasses(cls: type[object]) -> Iterator[type[object]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_error_of_the_package_is_exported() -> None:
    for name in ALL_MODULES:
        importlib.import_module(name)
    exported = _exported()
    unexported = {
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _subclasses(AvaturnError)
        if cls.__module__.startswith(avaturn_async.__name__) and id(cls) not in exported
    }
    assert not unexported, sorted(unexported)


def test_exported_errors_name_the_public_module_that_has_them() -> None:
    wrong = []
    for module_name, name in sorted(set(_exported().values())):
        obj = getattr(importlib.import_module(module_name), name)
        if not (_is_ours(obj) and isinstance(obj, type) and issubclass(obj, BaseException)):
            continue
        home = obj.__module__
        public = not any(part.startswith("_") for part in home.split("."))
        if not public or getattr(importlib.import_module(home), obj.__qualname__, None) is not obj:
            wrong.append(f"{module_name}.{name}: __module__ = {home!r}")
    assert not wrong, wrong


def test_every_public_name_is_written_once_in_its_package() -> None:
    """__all__ is read from the package's ``from X import N as N`` lines, so no
    second list can drift from them; each such line names a module that has N."""
    for module_name in PUBLIC_PACKAGES:
        module = importlib.import_module(module_name)
        file = getattr(module, "__file__", "") or ""
        if not file.endswith("__init__.py"):
            continue
        with open(file, encoding="utf-8") as handle:
            source = handle.read()
        if "lazy_exports(" not in source:
            continue
        names = [line for line in source.splitlines() if line.strip().startswith("from .")]
        assert len(names) == len(set(names))
        reexported = [
            line.split(" as ")[-1].strip()
            for line in names
            if " as " in line and line.split(" import ")[1].split(" as ")[0].strip()
            == line.split(" as ")[-1].strip()
        ]
        assert sorted(module.__all__) == sorted(reexported)


def test_a_traceback_names_the_public_module() -> None:
    from avaturn_async import NotFoundError

    assert f"{NotFoundError.__module__}.{NotFoundError.__qualname__}" == (
        "avaturn_async.NotFoundError"
    )


def test_models_with_a_public_module_still_resolve_their_annotations() -> None:
    from avaturn_async.webhooks import AvatarReady, EventStatus

    assert EventStatus in typing.get_args(typing.get_type_hints(AvatarReady)["status"])
