"""The pydantic contracts and the Avro schemas describe the same events.

They are written separately (the schemas are a product surface with their own docs), so these
tests are what keeps them from drifting apart.
"""

from __future__ import annotations

import types
import uuid
from datetime import UTC, datetime
from typing import Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from schemas import examples
from schemas.contracts import (
    ANALYTICS_CONTRACTS,
    BY_EVENT_TYPE,
    BY_FAMILY,
    CONTRACTS,
    TEMPLATES_CONTRACT,
    Contract,
    contract_for_model,
    event_from_webhook,
)
from schemas.envelope import Envelope
from schemas.registry import SchemaSet, fingerprint, working_copies

SCHEMAS = SchemaSet.load()
ENVELOPE_FIELDS = [
    "event_id",
    "event_type",
    "occurred_at",
    "ingested_at",
    "source",
    "correlation_id",
    "causation_id",
    "payload",
]


def _payload_branches(contract: Contract[Any]) -> list[dict[str, Any]]:
    schema = SCHEMAS.latest(contract.subject).schema
    payload = next(field for field in schema["fields"] if field["name"] == "payload")
    branches: list[dict[str, Any]] = payload["type"]
    return branches


def _named_records(schema: Any, found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    if isinstance(schema, list):
        for branch in schema:
            _named_records(branch, found)
    elif isinstance(schema, dict):
        if schema.get("type") == "record":
            found[schema["name"]] = schema
            for field in schema["fields"]:
                _named_records(field["type"], found)
        for key in ("items", "values"):
            _named_records(schema.get(key), found)
    return found


def _nullable(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


def test_every_topic_has_a_contract_a_released_schema_and_a_working_copy() -> None:
    subjects = {contract.subject for contract in CONTRACTS}
    outputs = {contract.subject for contract in ANALYTICS_CONTRACTS}
    state = {TEMPLATES_CONTRACT.subject}
    assert subjects | outputs | state == set(SCHEMAS.subjects) == set(working_copies())
    assert len(CONTRACTS) == len(subjects) == 8


def test_the_working_copies_are_the_latest_releases() -> None:
    """Run `python -m schemas.registry release` after changing a schema to make this pass."""
    for subject, schema in working_copies().items():
        assert fingerprint(schema) == fingerprint(SCHEMAS.latest(subject).schema), subject


# The families, and the templates' state topic, which travels in the same envelope.
WITH_STATE = (*CONTRACTS, TEMPLATES_CONTRACT)


@pytest.mark.parametrize("contract", WITH_STATE, ids=lambda contract: contract.family)
def test_every_family_has_the_same_envelope(contract: Contract[Any]) -> None:
    schema = SCHEMAS.latest(contract.subject).schema
    fields = {field["name"]: field for field in schema["fields"]}
    assert list(fields) == ENVELOPE_FIELDS
    reference = SCHEMAS.latest("orders.events-value").schema["fields"]
    assert [f["type"] for f in schema["fields"][:-1]] == [f["type"] for f in reference[:-1]]
    assert fields["event_id"]["type"] == {"type": "string", "logicalType": "uuid"}
    for name in ("occurred_at", "ingested_at"):
        assert fields[name]["type"] == {"type": "long", "logicalType": "timestamp-millis"}
    assert fields["causation_id"] == {**fields["causation_id"], "type": ["null", "string"]}
    assert fields["causation_id"]["default"] is None
    assert issubclass(contract.event_model, Envelope) or contract.family == "orders"
    assert set(contract.event_model.model_fields) == set(ENVELOPE_FIELDS)


@pytest.mark.parametrize("contract", WITH_STATE, ids=lambda contract: contract.family)
def test_the_payload_union_has_one_branch_per_payload_record(contract: Contract[Any]) -> None:
    branches = [f"{contract.namespace}.{branch['name']}" for branch in _payload_branches(contract)]
    wanted = {contract.payload_record(event_type) for event_type in contract.event_types}
    assert sorted(set(branches)) == sorted(wanted)
    assert len(branches) == len(set(branches))
    assert SCHEMAS.latest(contract.subject).schema["namespace"] == contract.namespace


@pytest.mark.parametrize("contract", WITH_STATE, ids=lambda contract: contract.family)
def test_each_record_has_the_fields_of_its_model(contract: Contract[Any]) -> None:
    records = _named_records(_payload_branches(contract), {})
    models: list[type[BaseModel]] = list(set(contract.payload_models.values()))
    checked: set[str] = set()
    while models:
        model = models.pop()
        if model.__name__ in checked:
            continue
        checked.add(model.__name__)
        avro = {field["name"]: field for field in records[model.__name__]["fields"]}
        assert list(avro) == list(model.model_fields), model.__name__
        for name, field in model.model_fields.items():
            nullable = isinstance(avro[name]["type"], list) and "null" in avro[name]["type"]
            assert nullable == _nullable(field.annotation), f"{model.__name__}.{name} nullability"
            assert ("default" in avro[name]) == (not field.is_required()), (
                f"{model.__name__}.{name}"
            )
            if "default" in avro[name]:
                assert avro[name]["default"] == field.get_default(call_default_factory=True), (
                    f"{model.__name__}.{name}"
                )
            models.extend(_nested_models(field.annotation))
    assert checked >= {model.__name__ for model in contract.payload_models.values()}


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _nested_models(arg)]


def test_every_event_type_belongs_to_exactly_one_family() -> None:
    everything = [event_type for contract in CONTRACTS for event_type in contract.event_types]
    assert len(everything) == len(set(everything)) == len(BY_EVENT_TYPE) == 5 + 7 + 6 + 4 + 2
    assert set(examples.PAYLOADS) == set(everything)


def test_envelope_models_find_their_contract() -> None:
    for contract in WITH_STATE:
        assert contract_for_model(contract.event_model) is contract
    with pytest.raises(KeyError):
        contract_for_model(BaseModel)


@pytest.mark.parametrize(
    ("event_type", "key"),
    [
        ("user.created", "usr_42"),
        ("auth.suspicious-login", "usr_42"),
        ("order.refunded", "ord_1001"),
        ("notification.requested", "usr_42"),
        ("notification.dispatch-requested", "ntf_7"),
        ("notification.status-changed", "ntf_7"),
        ("notification.receipt-received", "ntf_7"),
    ],
)
def test_record_keys(event_type: str, key: str) -> None:
    contract = BY_EVENT_TYPE[event_type]
    assert contract.key(examples.event(event_type)) == key


@pytest.mark.parametrize(
    ("family", "event_type", "key"),
    [
        ("users", "user.updated", "usr_42"),
        ("auth", "auth.logout", "usr_42"),
        ("orders", "order.paid", "ord_1001"),
    ],
)
def test_webhooks_become_envelopes_keyed_like_their_events(
    family: str, event_type: str, key: str
) -> None:
    contract = BY_FAMILY[family]
    assert contract.webhook is not None
    body = contract.webhook.body_model.model_validate(examples.webhook_body(event_type))
    assert contract.webhook.key(body) == key
    event_id = uuid.uuid4()
    now = datetime(2026, 11, 21, 9, 15, 2, tzinfo=UTC)
    event = event_from_webhook(contract, body, event_id=event_id, ingested_at=now, source="wh")
    assert type(event) is contract.event_model
    assert contract.key(event) == key
    assert event.event_type == event_type
    assert event.correlation_id == "corr-1"
    assert event.payload == getattr(body, contract.webhook.payload_field)


def test_the_correlation_id_defaults_to_the_event_id() -> None:
    contract = BY_FAMILY["users"]
    assert contract.webhook is not None
    raw = {**examples.webhook_body("user.deleted"), "correlation_id": None}
    body = contract.webhook.body_model.model_validate(raw)
    event_id = uuid.uuid4()
    now = datetime.now(UTC)
    event = event_from_webhook(contract, body, event_id=event_id, ingested_at=now, source="wh")
    assert event.correlation_id == str(event_id)


def test_a_body_of_another_family_is_refused() -> None:
    orders, users = BY_FAMILY["orders"], BY_FAMILY["users"]
    assert users.webhook is not None
    body = users.webhook.body_model.model_validate(examples.webhook_body("user.created"))
    with pytest.raises(TypeError):
        event_from_webhook(
            orders, body, event_id=uuid.uuid4(), ingested_at=datetime.now(UTC), source="x"
        )


def test_only_users_auth_and_orders_arrive_by_webhook() -> None:
    assert {c.family for c in CONTRACTS if c.webhook is not None} == {"users", "auth", "orders"}
    auth = BY_FAMILY["auth"]
    assert auth.webhook is not None
    assert set(auth.event_types) - set(auth.webhook.event_types) == {"auth.suspicious-login"}
