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
import re
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


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement in ``tree``, with whether only type checkers run it."""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, typing_only = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, typing_only
        guarded = node.body if isinstance(node, ast.If) and _is_type_checking(node.test) else []
        for child in ast.iter_child_nodes(node):
            stack.append((child, typing_only or child in guarded))


def _imported_names(
    tree: ast.AST, package: str, modules: Container[str]
) -> Iterator[tuple[str, bool]]:
    """Every dotted name an import statement anywhere in ``tree`` loads or reads from,
    with whether the import is for type checkers only."""
    for node, typing_only in _import_nodes(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name, typing_only) for alias in node.names)
            continue
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
            yield (full if full in modules else base), typing_only


@functools.cache
def _scan() -> tuple[Graph, Graph, dict[str, frozenset[str]]]:
    """The import graph (less type-only imports inside one layer); the same plus names
    read from enclosing packages; and the top-level outside packages each module imports.

    A type-only import between two modules of one layer is no edge: it lets a part
    name the whole it belongs to (a job its ``AvaturnClient``, a handler its emulator)
    without a protocol restating it, and it never runs. Across layers it counts.
    """
    modules = _module_names()
    graph: Graph = {name: set() for name in modules}
    uses: Graph = {name: set() for name in modules}
    outside: dict[str, frozenset[str]] = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        already_running = _packages_of(name) | {name}
        tree = ast.parse(path.read_text(), str(path))
        imported = list(_imported_names(tree, package, modules))
        found = {
            target
            for target, typing_only in imported
            if not (typing_only and target in modules and layer_of(target) == layer_of(name))
        }
        for target in found & modules.keys():
            graph[name] |= ({target} | _packages_of(target)) - already_running
        # ``from avaturn_async import AvaturnClient`` inside the package makes no
        # cycle (the package is already running) but does use the client.
        uses[name] = graph[name] | ((found & already_running) - {name})
        outside[name] = frozenset(
            target.partition(".")[0]
            for target, _ in imported
            if not target.startswith(PACKAGE)
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
    assert f"{PACKAGE}._resources" in graph[f"{PACKAGE}._client"]
    assert f"{PACKAGE}._events" in graph[f"{PACKAGE}.webhooks"]


def test_find_cycle_reports_a_cycle_as_a_path() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]


def test_a_type_only_import_inside_one_layer_is_no_edge() -> None:
    # _jobs names AvaturnClient for type checkers only; _client imports _jobs for real.
    assert f"{PACKAGE}._client" not in build_graph()[f"{PACKAGE}._jobs"]


def test_find_cycle_accepts_a_diamond() -> None:
    assert find_cycle({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}) is None


def test_package_modules_import_each_other_without_cycles() -> None:
    cycle = find_cycle(build_graph())
    if cycle is not None:
        pytest.fail("import cycle: " + " -> ".join(cycle))


# ---------------------------------------------------------------- layers (ARCHITECTURE.md)

# Each module belongs to the first layer with a matching pattern: by folder, except
# the top-level private modules, which the last four rows share out.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("cli", ("avaturn_async.__main__", "avaturn_async._cli", "avaturn_async._cli.*")),
    ("samples", ("avaturn_async.samples",)),
    ("testing", ("avaturn_async.testing", "avaturn_async.testing.*")),
    ("batch", ("avaturn_async.batch", "avaturn_async.batch.*")),
    ("postgres", ("avaturn_async.postgres", "avaturn_async.postgres.*")),
    ("webhooks", ("avaturn_async.webhooks", "avaturn_async.webhooks.*")),
    ("client", ("avaturn_async", "avaturn_async._client", "avaturn_async._resources")),
    ("client", ("avaturn_async._jobs",)),
    ("hub", ("avaturn_async._hub",)),
    ("transport", ("avaturn_async._transport", "avaturn_async._ssrf")),
    ("sqlite", ("avaturn_async._sqlite",)),
    ("core", ("avaturn_async._*",)),
]

# The layers each layer imports (besides itself): exactly the edges the code has, so
# that ARCHITECTURE.md, which draws this table, draws what is there. The cli layer
# may import anything.
MAY_IMPORT: dict[str, set[str]] = {
    "core": set(),
    "transport": {"core"},
    "hub": {"core"},
    "client": {"core", "transport", "hub"},
    "sqlite": set(),
    "webhooks": {"core", "sqlite"},
    "postgres": {"core", "hub", "webhooks"},
    "batch": {"core", "sqlite", "client", "postgres", "samples"},
    "testing": {"core", "webhooks"},
    "samples": set(),
    "cli": {layer for layer, _ in LAYERS} - {"cli"},
}

# Outside packages and the only layers that may import them.
OUTSIDE_ONLY_IN: dict[str, set[str]] = {
    "aiohttp": {"transport", "client", "testing", "cli"},
    "asyncpg": {"postgres"},
    "sqlite3": {"sqlite", "batch", "testing", "cli"},
    "rich": {"cli"},
    "uvicorn": set(),
}
# Modules of a layer that may not import the package, which they alone may.
OUTSIDE_MODULE_EXCEPTIONS: dict[str, tuple[str, ...]] = {
    # The aiohttp receiver is the webhooks layer's one aiohttp adapter.
    "aiohttp": ("avaturn_async.webhooks.aiohttp",),
    # The durable inbox's SQLite store; `import avaturn_async.webhooks` loads it lazily.
    "sqlite3": ("avaturn_async.webhooks.inbox.*",),
}


def layer_of(module: str) -> str:
    for layer, patterns in LAYERS:
        if any(fnmatch.fnmatchcase(module, pattern) for pattern in patterns):
            return layer
    raise LookupError(f"{module} is in no layer: add it to LAYERS and ARCHITECTURE.md")


def _layer_edges() -> dict[tuple[str, str], list[str]]:
    """(layer, imported layer) -> the module imports that make that edge."""
    edges: dict[tuple[str, str], list[str]] = {}
    for module, targets in sorted(_scan()[1].items()):
        for target in sorted(targets):
            if layer_of(target) != layer_of(module):
                edge = (layer_of(module), layer_of(target))
                edges.setdefault(edge, []).append(f"{module} -> {target}")
    return edges


def test_every_module_has_a_layer() -> None:
    assert {layer_of(name) for name in build_graph()} == set(MAY_IMPORT)


def test_layer_of_reads_the_first_matching_pattern() -> None:
    assert layer_of("avaturn_async.webhooks.inbox._store") == "webhooks"
    assert layer_of("avaturn_async._cli._inbox") == "cli"
    assert layer_of("avaturn_async._jobs") == "client"
    assert layer_of("avaturn_async._events") == "core"


def test_layers_form_a_strict_hierarchy() -> None:
    """No two layers import each other, directly or through others."""
    order = {layer: set(allowed) for layer, allowed in MAY_IMPORT.items()}
    for _ in order:  # transitive closure
        for allowed in order.values():
            allowed |= set().union(*(order[other] for other in allowed))
    assert not [layer for layer, below in order.items() if layer in below]


def test_layers_import_only_the_layers_they_may() -> None:
    wrong = [
        f"{layer} -> {target}: " + ", ".join(made_by)
        for (layer, target), made_by in _layer_edges().items()
        if target not in MAY_IMPORT[layer]
    ]
    assert not wrong, "\n".join(wrong)


def test_every_allowed_layer_edge_is_used() -> None:
    """The table (and ARCHITECTURE.md's drawing) names no edge the code lacks."""
    used = _layer_edges().keys()
    unused = [
        f"{layer} -> {target}"
        for layer, allowed in MAY_IMPORT.items()
        if layer != "cli"
        for target in sorted(allowed)
        if (layer, target) not in used
    ]
    assert not unused


def test_architecture_md_lists_the_same_layers_and_edges() -> None:
    """Each row of ARCHITECTURE.md's layer table: | **layer** | ... | imports |."""
    text = (ROOT.parent / "ARCHITECTURE.md").read_text()
    documented: dict[str, set[str]] = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("**") and cells[0].endswith("**"):
            imports = cells[-1].replace("nothing", "").replace("anything", "")
            documented[cells[0].strip("*")] = {
                name.strip() for name in imports.split(",") if name.strip()
            }
    expected = {layer: set(allowed) for layer, allowed in MAY_IMPORT.items()}
    expected["cli"] = set()
    assert documented == expected


def _architecture_rows() -> dict[str, str]:
    rows = {}
    for line in (ROOT.parent / "ARCHITECTURE.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("**") and cells[0].endswith("**"):
            rows[cells[0].strip("*")] = cells[1]
    return rows


def test_architecture_md_names_every_module_in_its_layer() -> None:
    rows = _architecture_rows()
    missing = []
    for module, (_, is_package) in _module_names().items():
        name = "__init__" if module == PACKAGE else module.rpartition(".")[2]
        name = f"{name}/" if is_package and module != PACKAGE else name
        if not re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", rows[layer_of(module)]):
            missing.append(f"{module} ({layer_of(module)})")
    assert not missing


def test_outside_packages_are_imported_only_where_they_belong() -> None:
    wrong = [
        f"{module} ({layer_of(module)}) imports {name}"
        for module, names in sorted(_scan()[2].items())
        for name in sorted(names & OUTSIDE_ONLY_IN.keys())
        if layer_of(module) not in OUTSIDE_ONLY_IN[name]
        and not any(
            fnmatch.fnmatchcase(module, pattern)
            for pattern in OUTSIDE_MODULE_EXCEPTIONS.get(name, ())
        )
    ]
    assert not wrong, "\n".join(wrong)
