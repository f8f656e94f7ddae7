"""The project's own schema set: every released version of every subject, with stable ids.

Schema ids are written into every record (Confluent wire format), so they must mean the same on
every machine and after every restart, and an id once given must never name another schema. They
are therefore not computed but recorded: `avro/registry.json` lists, per subject
`<topic>-value`, the versions in release order with their id and a fingerprint of the released
file (`avro/released/<subject>/v<N>.avsc`), which must never change once released.

The working copy `avro/<subject>.avsc` is what people edit; the test suite insists it equals the
latest release, and `python -m schemas.registry release` cuts a new version from it after
checking that it can read every earlier version (backward compatibility, transitively).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.compatibility import check_backward_compatible

AVRO_DIR = Path(__file__).parent / "avro"
MANIFEST = "registry.json"
WORKING_SUFFIX = ".avsc"


class SchemaSetError(ValueError):
    """The manifest and the released files disagree: ids or released schemas were tampered with."""


def compact_json(schema: Mapping[str, Any]) -> str:
    """The schema text served and fingerprinted: one spelling per schema on every machine."""
    return json.dumps(schema, separators=(",", ":"), ensure_ascii=False)


def fingerprint(schema: Mapping[str, Any]) -> str:
    return hashlib.sha256(compact_json(schema).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class RegisteredSchema:
    subject: str
    version: int
    id: int
    schema: Mapping[str, Any]
    text: str


class SchemaSet:
    """Released schemas by subject and by id; the latest version of a subject is its current."""

    def __init__(self, released: Iterable[RegisteredSchema]) -> None:
        self._by_id: dict[int, RegisteredSchema] = {}
        self._history: dict[str, list[RegisteredSchema]] = {}
        for entry in sorted(released, key=lambda entry: (entry.subject, entry.version)):
            if entry.id in self._by_id:
                raise SchemaSetError(f"schema id {entry.id} is given twice")
            history = self._history.setdefault(entry.subject, [])
            if entry.version != len(history) + 1:
                raise SchemaSetError(f"{entry.subject}: versions must run 1, 2, 3... without gaps")
            self._by_id[entry.id] = entry
            history.append(entry)

    @classmethod
    def load(cls, directory: Path = AVRO_DIR) -> SchemaSet:
        manifest = json.loads((directory / MANIFEST).read_text())
        released = []
        for subject, versions in manifest["subjects"].items():
            for row in versions:
                path = released_path(directory, subject, row["version"])
                schema = json.loads(path.read_text())
                if fingerprint(schema) != row["sha256"]:
                    raise SchemaSetError(f"{path} changed after its release; released is final")
                text = compact_json(schema)
                released.append(RegisteredSchema(subject, row["version"], row["id"], schema, text))
        return cls(released)

    @property
    def subjects(self) -> list[str]:
        return sorted(self._history)

    def history(self, subject: str) -> Sequence[RegisteredSchema]:
        """Every released version of `subject`, oldest first; empty for an unknown subject."""
        return tuple(self._history.get(subject, ()))

    def latest(self, subject: str) -> RegisteredSchema:
        history = self._history.get(subject)
        if not history:
            raise KeyError(f"no released schema for subject {subject!r}")
        return history[-1]

    def by_id(self, schema_id: int) -> RegisteredSchema | None:
        return self._by_id.get(schema_id)

    def all(self) -> list[RegisteredSchema]:
        return sorted(self._by_id.values(), key=lambda entry: entry.id)


def released_path(directory: Path, subject: str, version: int) -> Path:
    return directory / "released" / subject / f"v{version}.avsc"


def working_copies(directory: Path = AVRO_DIR) -> dict[str, dict[str, Any]]:
    """The editable schemas, by subject (the file name without `.avsc`)."""
    return {
        path.name.removesuffix(WORKING_SUFFIX): json.loads(path.read_text())
        for path in sorted(directory.glob(f"*{WORKING_SUFFIX}"))
    }


def unreleased(directory: Path = AVRO_DIR) -> list[str]:
    """Subjects whose working copy differs from (or has no) latest release."""
    released = SchemaSet.load(directory)
    changed = []
    for subject, schema in working_copies(directory).items():
        history = released.history(subject)
        if not history or fingerprint(history[-1].schema) != fingerprint(schema):
            changed.append(subject)
    return changed


def release(directory: Path = AVRO_DIR) -> list[RegisteredSchema]:
    """Cuts a version for every changed working copy, each compatible with all its predecessors."""
    released = SchemaSet.load(directory)
    next_id = max((entry.id for entry in released.all()), default=0) + 1
    manifest = json.loads((directory / MANIFEST).read_text())
    cut = []
    for subject in unreleased(directory):
        schema = working_copies(directory)[subject]
        for older in released.history(subject):
            check_backward_compatible(older.schema, schema)
        version = len(released.history(subject)) + 1
        path = released_path(directory, subject, version)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema, indent=2) + "\n")
        row = {"version": version, "id": next_id, "sha256": fingerprint(schema)}
        manifest["subjects"].setdefault(subject, []).append(row)
        cut.append(RegisteredSchema(subject, version, next_id, schema, compact_json(schema)))
        next_id += 1
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return cut


def main(argv: Sequence[str], directory: Path = AVRO_DIR) -> int:
    """`check` fails while a working copy is unreleased; `release` cuts the new versions."""
    if list(argv) == ["release"]:
        for entry in release(directory):
            print(f"released {entry.subject} v{entry.version} as schema id {entry.id}")
        return 0
    if list(argv) == ["check"]:
        pending = unreleased(directory)
        for subject in pending:
            print(f"{subject}: working copy differs from its latest release", file=sys.stderr)
        return 1 if pending else 0
    print("usage: python -m schemas.registry check|release", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
