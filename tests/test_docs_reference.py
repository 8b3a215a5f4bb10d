"""The reference pages render every public name of each package face.

The faces compute ``__all__`` at import time; griffe reads source, so the docs
build hands it the names through ``docs/griffe_lazy_exports.py``. Without that,
the reference pages rendered only the package docstrings.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import griffe
import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
FACES = [
    "avaturn_async",
    *(f"avaturn_async.{n}" for n in ("batch", "postgres", "sync", "testing", "webhooks")),
]


@pytest.fixture(scope="module")
def package() -> griffe.Module:
    spec = importlib.util.spec_from_file_location(
        "griffe_lazy_exports", DOCS / "griffe_lazy_exports.py"
    )
    assert spec is not None
    assert spec.loader is not None
    extension = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extension)
    loaded = griffe.load(
        "avaturn_async",
        search_paths=[str(DOCS.parent)],
        extensions=griffe.load_extensions(extension.LazyExports()),
    )
    assert isinstance(loaded, griffe.Module)
    return loaded


@pytest.mark.parametrize("face", FACES)
def test_the_docs_see_every_public_name_of_a_package_face(
    package: griffe.Module, face: str
) -> None:
    module = package if face == "avaturn_async" else package[face.removeprefix("avaturn_async.")]
    runtime = set(importlib.import_module(face).__all__) - {"__version__"}
    assert {str(name) for name in module.exports or []} == runtime
