"""Every dependency pyproject.toml declares is used: imported by the repository's code, or one
of the few tools and plugins that are run or loaded rather than imported (each with its reason).
A dependency declared and never used (as `testcontainers` was) is installed, locked and audited
for nothing."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

from tests.unit.sources import python_sources

REPO = Path(__file__).resolve().parents[3]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# Used without an import statement of ours.
NOT_IMPORTED = {
    "orjson": "found by faust.utils.json, which then (de)serialises table values with it",
    "pytest-asyncio": "a pytest plugin (asyncio_mode in pyproject.toml)",
    "ruff": "run by `make lint`",
    "mypy": "run by `make typecheck`",
    "types-pyyaml": "type stubs mypy reads for yaml",
    "py-spy": "run by scripts/profile_worker.sh",
}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = PYPROJECT["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {_normalized(re.split(r"[\s\[<>=!~;]", line, maxsplit=1)[0]) for line in requirements}


def imported_top_levels() -> set[str]:
    listed = python_sources()
    names: set[str] = set()
    for path in listed:
        source = REPO / path
        if not source.exists():
            continue
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_every_declared_dependency_is_imported_or_a_tool_with_a_reason() -> None:
    providers = importlib.metadata.packages_distributions()
    imported_by: dict[str, set[str]] = {}
    for top_level, distributions in providers.items():
        for distribution in distributions:
            imported_by.setdefault(_normalized(distribution), set()).add(top_level)
    used = imported_top_levels()
    unused = {
        name
        for name in declared()
        if name not in NOT_IMPORTED and not imported_by.get(name, set()) & used
    }
    assert unused == set()


def test_the_tools_listed_as_not_imported_are_still_declared() -> None:
    assert set(NOT_IMPORTED) <= declared()


def test_testcontainers_is_not_declared() -> None:
    # The services are the local stack's (stack/stackctl.py) or external ones; no fixture
    # starts containers, so the library would only be installed, never used.
    assert "testcontainers" not in declared()
