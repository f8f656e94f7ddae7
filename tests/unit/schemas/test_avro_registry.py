from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from schemas.compatibility import IncompatibleSchemaError
from schemas.registry import (
    AVRO_DIR,
    MANIFEST,
    RegisteredSchema,
    SchemaSet,
    SchemaSetError,
    compact_json,
    main,
    release,
    unreleased,
)

# Ids are written into records already on topics: these must never change.
RELEASED_IDS = {
    ("auth.events-value", 1): 1,
    ("notifications.receipts-value", 1): 2,
    ("notifications.requests-value", 1): 3,
    ("notifications.status-value", 1): 4,
    ("orders.events-value", 1): 5,
    ("users.events-value", 1): 6,
    ("notifications.dispatch-value", 1): 7,
    ("notifications.requests-value", 2): 8,
    ("notifications.status-value", 2): 9,
    ("users.events-value", 2): 10,
    ("analytics.auth-value", 1): 11,
    ("analytics.delivery-value", 1): 12,
    ("analytics.events-value", 1): 13,
    ("analytics.orders-value", 1): 14,
    ("auth.events-value", 2): 15,
    ("notifications.suppressions-value", 1): 16,
    ("notifications.templates-value", 1): 17,
    ("users.events-value", 3): 18,
}
# The id the next release anywhere gets: ids are global, one counter for every subject.
NEXT_ID = max(RELEASED_IDS.values()) + 1


@pytest.fixture
def avro_dir(tmp_path: Path) -> Path:
    """A private copy of the schema directory, for tests that release or tamper."""
    copy = tmp_path / "avro"
    shutil.copytree(AVRO_DIR, copy)
    return copy


def _working(directory: Path, subject: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((directory / f"{subject}.avsc").read_text())
    return schema


def _save_working(directory: Path, subject: str, schema: dict[str, Any]) -> None:
    (directory / f"{subject}.avsc").write_text(json.dumps(schema, indent=2))


def _payload_record(schema: dict[str, Any], name: str) -> dict[str, Any]:
    payload = next(field for field in schema["fields"] if field["name"] == "payload")
    record: dict[str, Any] = next(b for b in payload["type"] if b["name"] == name)
    return record


def test_released_ids_are_stable() -> None:
    schemas = SchemaSet.load()
    assert {(e.subject, e.version): e.id for e in schemas.all()} == RELEASED_IDS


def test_lookups_by_subject_and_id() -> None:
    schemas = SchemaSet.load()
    latest = schemas.latest("orders.events-value")
    assert schemas.by_id(latest.id) is latest
    assert schemas.history("orders.events-value") == (latest,)
    assert json.loads(latest.text) == latest.schema
    assert schemas.by_id(999) is None
    assert schemas.history("nope-value") == ()
    with pytest.raises(KeyError):
        schemas.latest("nope-value")


def test_a_released_file_is_final(avro_dir: Path) -> None:
    released = avro_dir / "released" / "orders.events-value" / "v1.avsc"
    schema = json.loads(released.read_text())
    schema["doc"] = "edited after release"
    released.write_text(json.dumps(schema))
    with pytest.raises(SchemaSetError, match="changed after its release"):
        SchemaSet.load(avro_dir)


def _entry(subject: str, version: int, schema_id: int) -> RegisteredSchema:
    return RegisteredSchema(subject, version, schema_id, {"type": "string"}, '"string"')


def test_an_id_is_never_given_twice() -> None:
    with pytest.raises(SchemaSetError, match="id 3 is given twice"):
        SchemaSet([_entry("a-value", 1, 3), _entry("b-value", 1, 3)])


def test_versions_have_no_gaps() -> None:
    with pytest.raises(SchemaSetError, match="without gaps"):
        SchemaSet([_entry("a-value", 1, 1), _entry("a-value", 3, 2)])


def test_nothing_to_release_when_the_working_copies_are_released(avro_dir: Path) -> None:
    manifest = (avro_dir / MANIFEST).read_text()
    assert unreleased(avro_dir) == []
    assert release(avro_dir) == []
    assert (avro_dir / MANIFEST).read_text() == manifest


def test_a_compatible_change_is_released_with_a_new_id(avro_dir: Path) -> None:
    schema = _working(avro_dir, "users.events-value")
    created = _payload_record(schema, "UserCreated")
    created["fields"].append({"name": "nickname", "type": ["null", "string"], "default": None})
    _save_working(avro_dir, "users.events-value", schema)
    assert unreleased(avro_dir) == ["users.events-value"]
    (cut,) = release(avro_dir)
    versions = len(SchemaSet.load().history("users.events-value"))
    assert (cut.subject, cut.version, cut.id) == ("users.events-value", versions + 1, NEXT_ID)
    reloaded = SchemaSet.load(avro_dir)
    assert reloaded.latest("users.events-value").schema == schema
    assert reloaded.by_id(6) == SchemaSet.load().by_id(6)  # v1 keeps its id
    assert unreleased(avro_dir) == []


def test_a_new_topic_gets_version_one(avro_dir: Path) -> None:
    schema = {"type": "record", "name": "Ping", "fields": [{"name": "at", "type": "long"}]}
    _save_working(avro_dir, "pings-value", schema)
    (cut,) = release(avro_dir)
    assert (cut.subject, cut.version, cut.id, cut.text) == (
        "pings-value",
        1,
        NEXT_ID,
        compact_json(schema),
    )


def test_an_incompatible_change_is_refused_and_nothing_is_written(avro_dir: Path) -> None:
    manifest = (avro_dir / MANIFEST).read_text()
    schema = _working(avro_dir, "auth.events-value")
    _payload_record(schema, "LoginFailed")["fields"].append({"name": "attempt", "type": "int"})
    _save_working(avro_dir, "auth.events-value", schema)
    with pytest.raises(IncompatibleSchemaError):
        release(avro_dir)
    assert (avro_dir / MANIFEST).read_text() == manifest
    assert not (avro_dir / "released" / "auth.events-value" / "v3.avsc").exists()


def test_the_check_command_fails_while_a_change_is_unreleased(
    avro_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check"]) == 0
    assert main(["frobnicate"]) == 2
    schema = _working(avro_dir, "orders.events-value")
    schema["doc"] = "a clearer description"
    _save_working(avro_dir, "orders.events-value", schema)
    assert main(["check"], avro_dir) == 1
    assert "orders.events-value" in capsys.readouterr().err
    assert main(["release"], avro_dir) == 0
    released = f"released orders.events-value v2 as schema id {NEXT_ID}"
    assert released in capsys.readouterr().out
    assert main(["check"], avro_dir) == 0
