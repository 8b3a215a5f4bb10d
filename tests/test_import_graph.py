"""The import graph of ``avaturn_async`` has no cycles.

Every ``import`` in every module counts: at top level, inside functions, and
under ``if TYPE_CHECKING:``. A cycle that only type checkers see is still two
modules that cannot be understood (or moved) one without the other. Importing
``a.b.c`` also runs the packages ``a.b`` and ``a``, so those count as edges too,
except the packages the importing module already lives in.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "avaturn_async"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

Graph = dict[str, set[str]]


def _module_names() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package)."""
    names: dict[str, tuple[Path, bool]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        names[".".join(parts)] = (path, is_package)
    return names


def _packages_of(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _imported_names(tree: ast.AST, package: str) -> Iterator[str]:
    """Every dotted name an import statement anywhere in ``tree`` may load."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            yield base
            # ``from pkg import name`` loads the submodule pkg.name if there is one.
            yield from (f"{base}.{alias.name}" for alias in node.names)


def build_graph() -> Graph:
    """Module -> the package modules it imports (directly or as parent packages)."""
    modules = _module_names()
    graph: Graph = {name: set() for name in modules}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        already_running = _packages_of(name) | {name}
        for target in _imported_names(ast.parse(path.read_text(), str(path)), package):
            if target not in modules:
                continue
            graph[name] |= ({target} | _packages_of(target)) - already_running
    return graph


def find_cycle(graph: Graph) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or ``None`` if the graph is acyclic."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path = [start]
        stack = [iter(sorted(graph[start]))]
        while stack:
            target = next(stack[-1], None)
            if target is None:
                stack.pop()
                done.add(path.pop())
            elif target in path:
                return [*path[path.index(target) :], target]
            elif target not in done:
                path.append(target)
                stack.append(iter(sorted(graph[target])))
    return None


def test_the_graph_sees_the_modules_and_their_imports() -> None:
    graph = build_graph()
    assert f"{PACKAGE}._client" in graph[PACKAGE]
    assert f"{PACKAGE}._events" in graph[f"{PACKAGE}.webhooks"]


def test_find_cycle_reports_a_cycle_as_a_path() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]


def test_find_cycle_accepts_a_diamond() -> None:
    assert find_cycle({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}) is None


def test_package_modules_import_each_other_without_cycles() -> None:
    cycle = find_cycle(build_graph())
    if cycle is not None:
        pytest.fail("import cycle: " + " -> ".join(cycle))
