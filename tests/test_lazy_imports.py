"""The webhook path imports fast: lazy re-exports (PEP 562) keep aiohttp and sqlite3 out."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import avaturn_async
import avaturn_async.webhooks
from avaturn_async._lazy import reexports

ROOT = Path(avaturn_async.__file__).parent
HEAVY = ("aiohttp", "sqlite3", "opentelemetry", "anyio._backends", "avaturn_async._client")


def modules_loaded_by(statement: str) -> set[str]:
    """``sys.modules`` of a fresh interpreter after running ``statement``."""
    code = f"{statement}\nimport sys\nprint('\\n'.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


@pytest.mark.parametrize(
    "module", ["avaturn_async.webhooks", "avaturn_async.webhooks.asgi", "avaturn_async"]
)
def test_importing_the_webhook_path_loads_nothing_heavy(module: str) -> None:
    loaded = modules_loaded_by(f"import {module}")
    assert module in loaded
    assert sorted(name for name in HEAVY if name in loaded) == []


# Each costs a cold start a millisecond or more, and no delivery needs it before
# it is verified and parsed: logged, dispatched, or read with a query string.
DEFERRED = ("anyio", "logging", "urllib.parse")


@pytest.mark.parametrize("module", ["avaturn_async.webhooks", "avaturn_async.webhooks.asgi"])
def test_importing_the_webhook_path_defers_what_only_a_delivery_needs(module: str) -> None:
    loaded = modules_loaded_by(f"import {module}")
    assert sorted(name for name in DEFERRED if name in loaded) == []


def test_verifying_and_parsing_a_delivery_loads_nothing_heavy() -> None:
    loaded = modules_loaded_by(
        "import time\n"
        "from avaturn_async.webhooks import RenderReady, WebhookVerifier\n"
        "from avaturn_async.webhooks._signing import sign\n"
        "body = (b'{\"event\":\"render.ready\",\"avatar_id\":\"a\",'\n"
        "        b'\"id\":\"r\",\"status\":\"ready\"}')\n"
        "stamp = str(int(time.time()))\n"
        "headers = {'webhook-id': 'm', 'webhook-timestamp': stamp,\n"
        "           'webhook-signature': sign(b'k' * 32, 'm', stamp, body)}\n"
        "event = WebhookVerifier(b'k' * 32).verify_and_parse(body, headers)\n"
        "assert isinstance(event, RenderReady)"
    )
    assert sorted(name for name in HEAVY if name in loaded) == []


def test_using_the_inbox_loads_it_on_first_use() -> None:
    loaded = modules_loaded_by("from avaturn_async.webhooks import WebhookInbox")
    assert "sqlite3" in loaded


@pytest.mark.parametrize("package", [avaturn_async, avaturn_async.webhooks])
def test_every_exported_name_resolves_and_is_listed_by_dir(package: object) -> None:
    names = package.__all__  # type: ignore[attr-defined]
    assert [name for name in names if getattr(package, name, None) is None] == []
    assert set(names) <= set(dir(package))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        avaturn_async.NoSuchThing  # noqa: B018


def _type_checking_imports(path: Path) -> dict[str, str]:
    """name -> module, for the names imported under ``if TYPE_CHECKING:`` in ``path``."""
    tree = ast.parse(path.read_text())
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom)
                module = "." * statement.level + (statement.module or "")
                found.update((alias.name, module) for alias in statement.names)
    return found


PACKAGE_FACES = sorted(
    path for path in ROOT.rglob("__init__.py") if "lazy_exports(" in path.read_text()
)


@pytest.mark.parametrize("path", PACKAGE_FACES, ids=lambda path: str(path.parent.name))
def test_the_lazy_table_reads_every_name_type_checkers_see(path: Path) -> None:
    """The table is read from the face's text; a line it could not read (several
    names in parentheses, a missing ``as``) would be a name type checkers see that
    is not exported."""
    source = path.read_text()
    assert {
        name: module for name, module in reexports(source).items() if not name.startswith("__")
    } == _type_checking_imports(path)
