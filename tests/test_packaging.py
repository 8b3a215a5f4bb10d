"""The package metadata and the changelog say only what is true and checked."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
STANDARD_SECTIONS = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _changelog() -> str:
    return (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def test_changelog_uses_only_keep_a_changelog_section_names() -> None:
    sections = set(re.findall(r"^### (.+)$", _changelog(), flags=re.MULTILINE))
    assert sections <= STANDARD_SECTIONS, sections - STANDARD_SECTIONS


def test_changelog_starts_with_unreleased_then_dated_releases() -> None:
    versions = re.findall(r"^## (.+)$", _changelog(), flags=re.MULTILINE)
    assert versions[0] == "[Unreleased]"
    for heading in versions[1:]:
        assert re.fullmatch(r"\[\d+\.\d+\.\d+\] - \d{4}-\d{2}-\d{2}", heading), heading


def test_changelog_has_a_section_for_the_package_version() -> None:
    from avaturn_async import __version__

    assert re.search(rf"^## \[{re.escape(__version__)}\] - ", _changelog(), flags=re.MULTILINE)


def test_claimed_python_versions_are_the_checked_ones() -> None:
    """Classifiers name the lowest version (checked by mypy and ruff) and the tested one."""
    import sys

    project = _pyproject()["project"]
    assert isinstance(project, dict)
    claimed = {
        c.rsplit(" :: ", 1)[1]
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    lowest = re.fullmatch(r">=(3\.\d+)", project["requires-python"])
    assert lowest is not None
    tool = _pyproject()["tool"]
    assert isinstance(tool, dict)
    assert tool["mypy"]["python_version"] == lowest.group(1)
    assert tool["ruff"]["target-version"] == "py" + lowest.group(1).replace(".", "")
    assert claimed == {lowest.group(1), f"{sys.version_info[0]}.{sys.version_info[1]}"}


def test_license_file_matches_the_declared_license() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    assert project["license"] == {"text": "MIT"}
    assert "License :: OSI Approved :: MIT License" in project["classifiers"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


def test_project_urls_name_homepage_documentation_changelog_and_issues() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    assert set(project["urls"]) == {"Homepage", "Documentation", "Changelog", "Issues"}
    assert all(url.startswith("https://") for url in project["urls"].values())
