"""Every Python block in README.md runs as written, or is a fragment of an example.

The rule, found by pytest-examples (``find_examples``):

* A block whose first line is a comment starting ``# Fragment of examples/NAME.py``
  is a fragment: it is not run, but the file must exist, every code line of the
  block must appear in it (comments and ``...`` aside), and every name an import line
  of the block imports must appear in it, so the fragment cannot drift from code the
  example tests run (``tests/test_examples.py``).
* A block that defines ``test_*`` functions is a test file: it is written to a
  temporary folder and run with pytest (the ``avaturn`` plugin provides its fixtures).
* Any other block is a script: it is run as ``__main__`` in a temporary working
  folder, with ``AVATURN_BASE_URL`` and ``AVATURN_API_KEY`` pointing at an emulator
  (started as the README says, here on a free port in a thread of its own).
  Tracebacks name README.md and its line numbers. (pytest-examples' own runner is
  not used: its rewritten tracebacks crash pytest's reporting on Python 3.11.)
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_examples import CodeExample, find_examples

from avaturn_async.testing import AvaturnEmulator

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FRAGMENT = re.compile(r"# Fragment of (examples/[\w/]+\.py)")

BLOCKS = list(find_examples(README))


def _kind(block: CodeExample) -> str:
    first = block.source.lstrip().splitlines()[0]
    if FRAGMENT.match(first):
        return "fragment"
    if re.search(r"^(async )?def test_", block.source, flags=re.MULTILINE):
        return "tests"
    return "script"


def _blocks(kind: str) -> list[CodeExample]:
    return [block for block in BLOCKS if _kind(block) == kind]


def _code_lines(source: str) -> list[str]:
    lines = (line.split("  #")[0].strip() for line in source.splitlines())
    return [line for line in lines if line and not line.startswith("#") and line != "..."]


def _is_import(line: str) -> bool:
    return line.startswith(("import ", "from "))


def _imported_names(line: str) -> list[str]:
    names = line.split(" import ", 1)[1] if line.startswith("from ") else line[len("import ") :]
    return [name.strip(" (),") for name in names.split(",") if name.strip(" (),")]


def test_readme_has_python_blocks_of_each_kind() -> None:
    assert {_kind(block) for block in BLOCKS} == {"fragment", "tests", "script"}


@pytest.mark.parametrize("block", _blocks("fragment"), ids=str)
def test_readme_fragment_appears_in_the_example_it_names(block: CodeExample) -> None:
    match = FRAGMENT.match(block.source.lstrip())
    assert match is not None
    example = (ROOT / match.group(1)).read_text(encoding="utf-8")
    example_lines = set(_code_lines(example))
    lines = _code_lines(block.source)
    missing = [line for line in lines if not _is_import(line) and line not in example_lines]
    names = [name for line in lines if _is_import(line) for name in _imported_names(line)]
    missing += [name for name in names if not re.search(rf"\b{re.escape(name)}\b", example)]
    assert missing == [], f"lines of {block} not in {match.group(1)}"


@pytest.mark.parametrize("block", _blocks("script"), ids=str)
def test_readme_script_runs_against_the_emulator(
    block: CodeExample,
    avaturn_shared_emulator: AvaturnEmulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("AVATURN_BASE_URL", avaturn_shared_emulator.base_url)
    monkeypatch.setenv("AVATURN_API_KEY", avaturn_shared_emulator.api_key)
    monkeypatch.chdir(tmp_path)
    padded = "\n" * block.start_line + block.source  # line numbers as in README.md
    exec(compile(padded, str(README), "exec"), {"__name__": "__main__"})


@pytest.mark.parametrize("block", _blocks("tests"), ids=str)
def test_readme_test_file_passes_under_pytest(block: CodeExample, tmp_path: Path) -> None:
    (tmp_path / "test_readme_block.py").write_text(block.source, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout
