"""The import graph of ``avaturn_async`` has no cycles, and follows the layers of ARCHITECTURE.md.

Every ``import`` in every module counts: at top level, inside functions, and
under ``if TYPE_CHECKING:``. A cycle that only type checkers see is still two
modules that cannot be understood (or moved) one without the other. Importing
``a.b.c`` also runs the packages ``a.b`` and ``a``, so those count as edges too,
except the packages the importing module already lives in.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
from collections.abc import Container, Iterator
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


def _imported_names(tree: ast.AST, package: str, modules: Container[str]) -> Iterator[str]:
    """Every dotted name an import statement anywhere in ``tree`` loads or reads from."""
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
            for alias in node.names:
                # ``from pkg import name`` loads the submodule pkg.name if there is
                # one, else reads a name that pkg itself binds.
                full = f"{base}.{alias.name}"
                yield full if full in modules else base


@functools.cache
def _scan() -> tuple[Graph, Graph, dict[str, frozenset[str]]]:
    """The import graph; the same plus names read from enclosing packages; and the
    top-level outside packages each module imports."""
    modules = _module_names()
    graph: Graph = {name: set() for name in modules}
    uses: Graph = {name: set() for name in modules}
    outside: dict[str, frozenset[str]] = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        already_running = _packages_of(name) | {name}
        tree = ast.parse(path.read_text(), str(path))
        found = set(_imported_names(tree, package, modules))
        for target in found & modules.keys():
            graph[name] |= ({target} | _packages_of(target)) - already_running
        # ``from avaturn_async import AvaturnClient`` inside the package makes no
        # cycle (the package is already running) but does use the client.
        uses[name] = graph[name] | ((found & already_running) - {name})
        outside[name] = frozenset(
            target.partition(".")[0] for target in found if not target.startswith(PACKAGE)
        )
    return graph, uses, outside


def build_graph() -> Graph:
    """Module -> the package modules it imports (directly or as parent packages)."""
    return {name: set(targets) for name, targets in _scan()[0].items()}


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


# ---------------------------------------------------------------- layers (ARCHITECTURE.md)

# Each module belongs to the first layer with a matching pattern.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "tools",
        (
            "avaturn_async.__main__",
            "avaturn_async._cli",
            "avaturn_async._demo",
            "avaturn_async.batch._command",
            "avaturn_async.batch._environment",
            "avaturn_async.batch._progress",
            "avaturn_async.batch._sample",
            "avaturn_async.testing.pytest_plugin",
            "avaturn_async.webhooks._inbox_cli",
        ),
    ),
    ("samples", ("avaturn_async.samples",)),
    ("testing", ("avaturn_async.testing", "avaturn_async.testing.*")),
    ("postgres", ("avaturn_async.postgres", "avaturn_async.postgres.*")),
    ("batch", ("avaturn_async.batch", "avaturn_async.batch.*")),
    ("inbox", ("avaturn_async.webhooks._inbox*",)),
    ("webhooks", ("avaturn_async.webhooks", "avaturn_async.webhooks.*")),
    ("client", ("avaturn_async", "avaturn_async._client", "avaturn_async._resources")),
    ("jobs", ("avaturn_async._jobs", "avaturn_async._hub", "avaturn_async._ports")),
    ("transport", ("avaturn_async._transport",)),
    ("core", ("avaturn_async._*",)),
]

# Which layers a layer may import (besides itself). Keep in step with ARCHITECTURE.md.
MAY_IMPORT: dict[str, set[str]] = {
    "core": set(),
    "transport": {"core"},
    "jobs": {"core"},
    "client": {"core", "transport", "jobs"},
    "webhooks": {"core", "inbox"},
    "inbox": {"core", "webhooks", "postgres"},
    "batch": {"core", "jobs", "client", "postgres", "samples"},
    "postgres": {"core", "jobs", "webhooks", "inbox", "batch"},
    "testing": {"core", "webhooks", "samples"},
    "samples": set(),
    "tools": {layer for layer, _ in LAYERS},
}

# Known exceptions, each a debt to pay rather than a pattern to copy.
ALLOWED_EDGES = {
    # `avaturn_async.batch` exports run_sample_onboarding, which runs the embedded emulator.
    ("avaturn_async.batch", "avaturn_async.batch._sample"),
}

# Outside packages and the only layers that may import them.
OUTSIDE_ONLY_IN: dict[str, set[str]] = {
    "aiohttp": {"transport", "client", "testing", "tools"},
    "asyncpg": {"postgres"},
    "sqlite3": {"inbox", "batch", "testing", "tools"},
    "rich": {"tools"},
    "uvicorn": set(),
}
# A module of a layer that may not import aiohttp, which is the aiohttp adapter itself.
OUTSIDE_MODULE_EXCEPTIONS = {("avaturn_async.webhooks.aiohttp", "aiohttp")}


def layer_of(module: str) -> str:
    for layer, patterns in LAYERS:
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns):
            return layer
    raise LookupError(f"{module} is in no layer: add it to LAYERS and ARCHITECTURE.md")


def test_every_module_has_a_layer() -> None:
    assert {layer_of(name) for name in build_graph()} == set(MAY_IMPORT)


def test_layer_of_reads_the_first_matching_pattern() -> None:
    assert layer_of("avaturn_async.webhooks._inbox_store") == "inbox"
    assert layer_of("avaturn_async.webhooks._inbox_cli") == "tools"
    assert layer_of("avaturn_async._events") == "core"


def test_layers_import_only_the_layers_they_may() -> None:
    wrong = [
        f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
        for module, targets in sorted(_scan()[1].items())
        for target in sorted(targets)
        if layer_of(target) != layer_of(module)
        and layer_of(target) not in MAY_IMPORT[layer_of(module)]
        and (module, target) not in ALLOWED_EDGES
    ]
    assert not wrong, "\n".join(wrong)


def test_outside_packages_are_imported_only_where_they_belong() -> None:
    wrong = [
        f"{module} ({layer_of(module)}) imports {name}"
        for module, names in sorted(_scan()[2].items())
        for name in sorted(names & OUTSIDE_ONLY_IN.keys())
        if layer_of(module) not in OUTSIDE_ONLY_IN[name]
        and (module, name) not in OUTSIDE_MODULE_EXCEPTIONS
    ]
    assert not wrong, "\n".join(wrong)
