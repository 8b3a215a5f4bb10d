"""The webhooks guide's example for each mode is code the test suite runs.

Every block of ``docs/webhooks.md`` that starts ``# Fragment of examples/NAME.py`` must
appear in that example (as ``tests/test_readme.py`` checks the README's), and each
mode's section must show one: the examples run end to end against the emulator in
``tests/test_examples.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pytest_examples import CodeExample, find_examples

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "webhooks.md"
FRAGMENT = re.compile(r"# Fragment of (examples/[\w/]+\.py)")
MODES = (
    "A token in the URL",
    "Confirmation against the API",
    "Confirmation alone",
    "Downloads that stay outside your network",
    "Signed deliveries",
)

BLOCKS = [block for block in find_examples(GUIDE) if block.prefix == "python"]
FRAGMENTS = [block for block in BLOCKS if FRAGMENT.match(block.source.lstrip())]


def _code_lines(source: str) -> list[str]:
    lines = (line.split("  #")[0].strip() for line in source.splitlines())
    return [line for line in lines if line and not line.startswith("#") and line != "..."]


def _section_of(line: int) -> str:
    """The heading (``##`` or ``###``) above ``line`` (1-based) of the guide."""
    headings = [
        (number, text.lstrip("#").strip())
        for number, text in enumerate(GUIDE.read_text(encoding="utf-8").splitlines(), 1)
        if text.startswith(("## ", "### "))
    ]
    return [text for number, text in headings if number < line][-1]


@pytest.mark.parametrize("block", FRAGMENTS, ids=str)
def test_guide_fragment_appears_in_the_example_it_names(block: CodeExample) -> None:
    match = FRAGMENT.match(block.source.lstrip())
    assert match is not None
    example = (ROOT / match.group(1)).read_text(encoding="utf-8")
    known = set(_code_lines(example))
    lines = _code_lines(block.source)
    missing = [line for line in lines if not line.startswith(("from ", "import "))]
    missing = [line for line in missing if line not in known]
    imported = [
        name.strip(" (),")
        for line in lines
        if line.startswith("from ")
        for name in line.split(" import ", 1)[1].split(",")
    ]
    missing += [name for name in imported if not re.search(rf"\b{re.escape(name)}\b", example)]
    assert missing == [], f"lines of {block} not in {match.group(1)}"


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_of_the_guide_shows_a_tested_example(mode: str) -> None:
    sections = {_section_of(block.start_line) for block in FRAGMENTS}
    assert mode in sections
