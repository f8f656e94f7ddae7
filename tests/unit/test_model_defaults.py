"""No field of ours defaults to a literal `{}`, `[]` or `set()`.

pydantic deep-copies such a default for every instance it builds: `RoutingState()`, made for
every new user the router reads, spent 13 µs doing so against 3 µs with `default_factory`
(1 % of a worker's samples at 400 notifications/s). ruff's RUF012 finds the rest of these, but
exempts classes that subclass pydantic's `BaseModel` directly, so this reads the source for them.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.unit.sources import python_sources

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("agents/", "streams/", "schemas/", "api/")


def _mutable_literal(node: ast.expr | None) -> bool:
    if isinstance(node, ast.Dict | ast.List | ast.Set):
        return True
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in {"dict", "list", "set"}
        and not node.args
        and not node.keywords
    )


def mutable_defaults(source: str) -> list[str]:
    """`Class.field` for each annotated class-level field whose default is a mutable literal."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for statement in node.body:
            if (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and _mutable_literal(statement.value)
            ):
                found.append(f"{node.name}.{statement.target.id}")
    return found


def test_the_check_finds_a_literal_default_and_passes_a_factory() -> None:
    source = (
        "class Model(BaseModel):\n"
        "    seen: dict[str, float] = {}\n"
        "    kept: list[str] = list()\n"
        "    sends: dict[str, float] = Field(default_factory=dict)\n"
        "    count: int = 0\n"
    )

    assert mutable_defaults(source) == ["Model.seen", "Model.kept"]


def test_no_field_of_ours_defaults_to_a_mutable_literal() -> None:
    found = [
        f"{path}: {name}"
        for path in python_sources()
        if path.startswith(PACKAGES)
        for name in mutable_defaults((REPO / path).read_text())
    ]

    assert found == [], "use Field(default_factory=...):\n" + "\n".join(found)
