"""Every schema change must keep data already on the topics readable.

Data written with every released version of every subject is read through the current reader
schema, and the check behind that is shown to reject the classic incompatible changes (and to
accept the compatible ones), so that a passing run means something.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from schemas.compatibility import IncompatibleSchemaError, check_backward_compatible, sample_data
from schemas.contracts import BY_SUBJECT
from schemas.registry import SchemaSet

SCHEMAS = SchemaSet.load()
RELEASES = [entry for subject in SCHEMAS.subjects for entry in SCHEMAS.history(subject)]
Change = Callable[[dict[str, Any]], None]


def _payload_branches(schema: dict[str, Any]) -> list[dict[str, Any]]:
    payload = next(field for field in schema["fields"] if field["name"] == "payload")
    branches: list[dict[str, Any]] = payload["type"]
    return branches


def _branch(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(branch for branch in _payload_branches(schema) if branch["name"] == name)


def _field(record: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(field for field in record["fields"] if field["name"] == name)
    return found


@pytest.mark.parametrize("released", RELEASES, ids=lambda e: f"{e.subject}-v{e.version}")
def test_data_written_with_every_release_is_read_by_the_current_schema(released: Any) -> None:
    current = SCHEMAS.latest(released.subject)
    check_backward_compatible(released.schema, current.schema)


@pytest.mark.parametrize("subject", SCHEMAS.subjects)
def test_the_samples_cover_every_payload_type_and_both_sides_of_optional_fields(
    subject: str,
) -> None:
    schema = dict(SCHEMAS.latest(subject).schema)
    samples = list(sample_data(schema))
    names = {sample["payload"][0].rsplit(".", 1)[-1] for sample in samples}
    assert names == {branch["name"] for branch in _payload_branches(schema)}
    assert {sample["causation_id"] for sample in samples} == {None, "s"}
    contract = BY_SUBJECT[subject]
    assert len(names) == len(set(contract.payload_models.values()))
    parsed = parse_schema(schema)
    for sample in samples:  # every sample is valid data for its schema
        buffer = io.BytesIO()
        schemaless_writer(buffer, parsed, sample)
        buffer.seek(0)
        schemaless_reader(buffer, parsed, None)


def _new_field_without_default(schema: dict[str, Any]) -> None:
    _branch(schema, "UserCreated")["fields"].append({"name": "nickname", "type": "string"})


def _nested_field_without_default(schema: dict[str, Any]) -> None:
    quiet_hours = _field(_branch(schema, "UserPreferencesUpdated"), "quiet_hours")["type"][1]
    quiet_hours["fields"].append({"name": "weekends_only", "type": "boolean"})


def _removed_payload_type(schema: dict[str, Any]) -> None:
    payload = next(field for field in schema["fields"] if field["name"] == "payload")
    payload["type"] = [b for b in payload["type"] if b["name"] != "UserDeleted"]


def _removed_enum_symbol(schema: dict[str, Any]) -> None:
    _field(_branch(schema, "UserVerified"), "contact")["type"]["symbols"] = ["email"]


def _changed_field_type(schema: dict[str, Any]) -> None:
    _field(_branch(schema, "UserCreated"), "locale")["type"] = "int"


def _required_where_optional(schema: dict[str, Any]) -> None:
    phone = _field(_branch(schema, "UserCreated"), "phone")
    phone["type"] = "string"
    del phone["default"]


def _renamed_record(schema: dict[str, Any]) -> None:
    _branch(schema, "UserDeleted")["name"] = "UserErased"


def _unparsable(schema: dict[str, Any]) -> None:
    _branch(schema, "UserCreated")["fields"].append({"name": "x", "type": "NoSuchType"})


@pytest.mark.parametrize(
    "change",
    [
        _new_field_without_default,
        _nested_field_without_default,
        _removed_payload_type,
        _removed_enum_symbol,
        _changed_field_type,
        _required_where_optional,
        _renamed_record,
        _unparsable,
    ],
)
def test_an_incompatible_change_is_rejected(change: Change) -> None:
    current = copy.deepcopy(dict(SCHEMAS.latest("users.events-value").schema))
    changed = json.loads(json.dumps(current))
    change(changed)
    with pytest.raises(IncompatibleSchemaError):
        check_backward_compatible(current, changed)


def _new_field_with_default(schema: dict[str, Any]) -> None:
    _branch(schema, "UserCreated")["fields"].append(
        {"name": "nickname", "type": ["null", "string"], "default": None}
    )


def _appended_payload_type(schema: dict[str, Any]) -> None:
    _payload_branches(schema).append(
        {"type": "record", "name": "UserMerged", "fields": [{"name": "user_id", "type": "string"}]}
    )


def _added_enum_symbol(schema: dict[str, Any]) -> None:
    _field(_branch(schema, "UserVerified"), "contact")["type"]["symbols"].append("whatsapp")


def _removed_field(schema: dict[str, Any]) -> None:
    record = _branch(schema, "UserDeleted")
    record["fields"] = [f for f in record["fields"] if f["name"] != "reason"]


def _documented(schema: dict[str, Any]) -> None:
    _field(_branch(schema, "UserCreated"), "email")["doc"] = "Where we write to the user."


@pytest.mark.parametrize(
    "change",
    [
        _new_field_with_default,
        _appended_payload_type,
        _added_enum_symbol,
        _removed_field,
        _documented,
    ],
)
def test_a_compatible_change_is_accepted(change: Change) -> None:
    current = copy.deepcopy(dict(SCHEMAS.latest("users.events-value").schema))
    changed = json.loads(json.dumps(current))
    change(changed)
    check_backward_compatible(current, changed)


def test_promotions_avro_allows_are_accepted() -> None:
    orders = copy.deepcopy(dict(SCHEMAS.latest("orders.events-value").schema))
    widened = json.loads(json.dumps(orders))
    item = _field(_branch(widened, "Order"), "items")["type"]["items"]
    _field(item, "quantity")["type"] = "long"
    check_backward_compatible(orders, widened)
    with pytest.raises(IncompatibleSchemaError):
        check_backward_compatible(widened, orders)  # narrowing back is not
