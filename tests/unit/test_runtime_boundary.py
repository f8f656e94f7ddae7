"""Only `streams.runtime` (and its own tests) may reach private names of Faust, mode or aiokafka.

The corrections to faust-streaming live behind the runtime's version gate; a private name used
anywhere else would break silently on an upgrade the gate lets through. Three ways in are looked
for, by reading the source (no import of our modules):

- `from faust.x import _name`, or a module path with a private part (`faust._x`);
- `obj._name` where `_name` is private in one of the libraries and `obj` is not `self`/`cls`;
- `self._name` inside a class that subclasses a library class, where the class itself never
  assigns `_name` (so it can only be the library's).
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from tests.unit.sources import python_sources

REPO = Path(__file__).resolve().parents[2]
LIBRARIES = ("faust", "mode", "aiokafka")
# The runtime package and the tests that exercise it against the libraries' own code.
EXEMPT = ("streams/runtime/", "tests/unit/streams/runtime/", "tests/integration/streams/runtime/")


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_names(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node.name
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            yield node.attr
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            yield node.id


@cache
def library_private_names() -> frozenset[str]:
    """Every private name the libraries define: functions, classes, attributes, variables."""
    names: set[str] = set()
    for library in LIBRARIES:
        # Imported rather than found: faust replaces its module, which then has no `__spec__`.
        origin = importlib.import_module(library).__file__
        assert origin is not None, f"{library} has no source"
        for path in Path(origin).parent.rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names.update(name for name in _defined_names(tree) if _is_private(name))
    return frozenset(names)


def _library_module(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in LIBRARIES


def _library_bases(tree: ast.Module) -> set[str]:
    """Names this module imported from the libraries (`Service`, `faust`, ...)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _library_module(node.module):
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(
                (alias.asname or alias.name).split(".")[0]
                for alias in node.names
                if _library_module(alias.name)
            )
    return names


def private_reaches(source: str, private: frozenset[str]) -> list[str]:
    """`line: code` for every reach into a library's private names in `source`."""
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _library_module(node.module):
            assert node.module is not None
            bad = any(_is_private(part) for part in node.module.split("."))
            if bad or any(_is_private(alias.name) for alias in node.names):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if _library_module(alias.name) and any(map(_is_private, parts)):
                    found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Attribute) and node.attr in private:
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    found += _inherited_reaches(tree, private)
    return found


def _inherited_reaches(tree: ast.Module, private: frozenset[str]) -> list[str]:
    imported = _library_bases(tree)
    found = []
    for cls in (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)):
        roots = {ast.unparse(base).split(".")[0] for base in cls.bases}
        if not roots & imported:
            continue
        own = {
            node.attr
            for node in ast.walk(cls)
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
        } | {node.name for node in ast.walk(cls) if isinstance(node, ast.FunctionDef)}
        for node in ast.walk(cls):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in ("self", "cls")
                and node.attr in private
                and node.attr not in own
            ):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def _our_sources() -> list[str]:
    return [path for path in python_sources() if not path.startswith(EXEMPT)]


def test_no_module_outside_the_runtime_reaches_a_private_library_name() -> None:
    private = library_private_names()
    sources = _our_sources()
    assert any(path.startswith("agents/") for path in sources)
    reaches = {
        path: found
        for path in sources
        if (REPO / path).exists()
        and (found := private_reaches((REPO / path).read_text(encoding="utf-8"), private))
    }
    assert reaches == {}


def test_the_libraries_private_names_include_those_the_runtime_corrects() -> None:
    assert {"_new_offset", "_getmany", "_acked", "_current_event", "_fetcher"} <= (
        library_private_names()
    )


def test_a_private_import_is_found() -> None:
    source = "from faust.streams import _current_event\nimport faust._private.x\n"
    assert private_reaches(source, frozenset()) == [
        "1: from faust.streams import _current_event",
        "2: import faust._private.x",
    ]


def test_a_private_attribute_of_another_object_is_found() -> None:
    source = "def f(consumer):\n    return consumer.app._fetcher\n"
    assert private_reaches(source, frozenset({"_fetcher"})) == ["2: consumer.app._fetcher"]


def test_own_private_attributes_are_not_findings() -> None:
    source = (
        "class Store:\n"
        "    def __init__(self, client):\n"
        "        self._client = client\n"
        "    def get(self):\n"
        "        return self._client\n"
    )
    assert private_reaches(source, frozenset({"_client"})) == []


def test_a_library_subclass_reading_an_inherited_private_name_is_found() -> None:
    source = (
        "from mode import Service\n"
        "class Store(Service):\n"
        "    def __init__(self):\n"
        "        self._mine = 1\n"
        "    def crashed(self):\n"
        "        return self._crash_reason, self._mine\n"
    )
    assert private_reaches(source, frozenset({"_crash_reason", "_mine"})) == [
        "6: self._crash_reason"
    ]
