from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from schemas import examples
from schemas.contracts import BY_EVENT_TYPE
from schemas.registry import SchemaSet
from schemas.users import UserEvent
from streams.errors import ConfigurationError, ServiceUnavailableError
from streams.kafka.schema_registry import (
    INVALID_VERSION,
    SCHEMA_NOT_FOUND,
    SUBJECT_NOT_FOUND,
    VERSION_NOT_FOUND,
    RegistryLookupError,
    RegistryViews,
    connect_client,
    registered_book,
)
from streams.kafka.wire import UnknownSchemaIdError, WireCodec, encode

SCHEMAS = SchemaSet.load()


def _lookup_error(call: Any, *args: Any) -> RegistryLookupError:
    with pytest.raises(RegistryLookupError) as caught:
        call(*args)
    return caught.value


def test_subjects_are_the_deployments_prefixed_topic_subjects() -> None:
    views = RegistryViews(SCHEMAS, "t123-")
    assert views.subjects() == [f"t123-{subject}" for subject in SCHEMAS.subjects]
    assert "t123-orders.events-value" in views.subjects()
    assert RegistryViews(SCHEMAS, "").subjects() == SCHEMAS.subjects


def test_a_schema_by_id_is_its_json_text() -> None:
    latest = SCHEMAS.latest("orders.events-value")
    answer = RegistryViews(SCHEMAS, "t1-").schema(latest.id)
    assert set(answer) == {"schema"}
    assert json.loads(answer["schema"]) == latest.schema


def test_versions_and_version_answers_have_the_registrys_shape() -> None:
    views = RegistryViews(SCHEMAS, "t1-")
    latest = SCHEMAS.latest("orders.events-value")
    assert views.versions("t1-orders.events-value") == [1]
    for version in ("1", "latest", "-1"):
        assert views.version("t1-orders.events-value", version) == {
            "subject": "t1-orders.events-value",
            "version": 1,
            "id": latest.id,
            "schema": latest.text,
        }


def test_unknown_names_get_the_registrys_error_codes() -> None:
    views = RegistryViews(SCHEMAS, "t1-")
    missing_schema = _lookup_error(views.schema, 9999)
    assert (missing_schema.http_status, missing_schema.error_code) == (404, SCHEMA_NOT_FOUND)
    assert missing_schema.body == {
        "error_code": SCHEMA_NOT_FOUND,
        "message": "Schema 9999 not found",
    }
    for subject in ("t1-nope-value", "orders.events-value", "t2-orders.events-value"):
        assert _lookup_error(views.versions, subject).error_code == SUBJECT_NOT_FOUND
    assert _lookup_error(views.version, "t1-orders.events-value", "2").error_code == (
        VERSION_NOT_FOUND
    )
    for version in ("0", "two", "1.0", "-2"):
        invalid = _lookup_error(views.version, "t1-orders.events-value", version)
        assert (invalid.http_status, invalid.error_code) == (422, INVALID_VERSION)


class _Registry:
    """A registry that keeps schemas in a dict, as Confluent's does: one id per schema text."""

    def __init__(self, first_id: int = 100) -> None:
        self.texts: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = {}
        self.fetched: list[int] = []
        self.next_id = first_id
        self.fail_with: Exception | None = None

    def register_schema(self, subject_name: str, schema: Schema) -> int:
        if self.fail_with is not None:
            raise self.fail_with
        assert schema.schema_str is not None
        found = [i for i, text in self.texts.items() if text == schema.schema_str]
        schema_id = found[0] if found else self.next_id
        if not found:
            self.texts[schema_id] = schema.schema_str
            self.next_id += 1
        self.subjects.setdefault(subject_name, []).append(schema_id)
        return schema_id

    def get_schema(self, schema_id: int) -> Schema:
        self.fetched.append(schema_id)
        if self.fail_with is not None:
            raise self.fail_with
        if schema_id not in self.texts:
            raise SchemaRegistryError(404, SCHEMA_NOT_FOUND, "Schema not found")
        return Schema(self.texts[schema_id], "AVRO")


async def test_with_a_registry_the_current_schemas_are_registered_and_its_ids_written() -> None:
    registry = _Registry()
    codec = WireCodec(await registered_book(registry, SCHEMAS, "t9-"))
    assert set(registry.subjects) == {f"t9-{subject}" for subject in SCHEMAS.subjects}
    event = examples.event("user.created")
    raw = codec.encode(event)
    registered_id = registry.subjects["t9-users.events-value"][0]
    assert registered_id >= 100
    assert int.from_bytes(raw[1:5], "big") == registered_id
    assert codec.decode(raw, UserEvent) == event
    assert registry.fetched == []  # our own ids need no lookup


async def test_another_producers_schema_id_is_fetched_once_and_resolved() -> None:
    registry = _Registry()
    codec = WireCodec(await registered_book(registry, SCHEMAS, ""))
    # Someone registered the same users schema under another id space: only the id differs.
    foreign_id = 7
    registry.texts[foreign_id] = SCHEMAS.latest("users.events-value").text
    raw = b"\x00" + foreign_id.to_bytes(4, "big") + encode(examples.event("user.deleted"))[5:]
    for _ in range(3):
        assert codec.decode(raw, UserEvent) == examples.event("user.deleted")
    assert registry.fetched == [foreign_id]


async def test_an_id_the_registry_does_not_know_is_poison() -> None:
    codec = WireCodec(await registered_book(_Registry(), SCHEMAS, ""))
    with pytest.raises(UnknownSchemaIdError):
        codec.decode(b"\x00\x00\x00\x00\x05\x00", UserEvent)


FAILURES = [
    (httpx2.ConnectError("connection refused"), ServiceUnavailableError),
    (ConnectionRefusedError("refused"), ServiceUnavailableError),
    (SchemaRegistryError(503, 50003, "Error while forwarding"), ServiceUnavailableError),
    (SchemaRegistryError(409, 409, "Schema being registered is incompatible"), ConfigurationError),
    (SchemaRegistryError(401, 401, "Unauthorized"), ConfigurationError),
]


@pytest.mark.parametrize(("failure", "translated"), FAILURES)
async def test_registration_failures_are_translated(
    failure: Exception, translated: type[Exception]
) -> None:
    registry = _Registry()
    registry.fail_with = failure
    with pytest.raises(translated) as caught:
        await registered_book(registry, SCHEMAS, "")
    assert caught.value.__cause__ is failure


@pytest.mark.parametrize(("failure", "translated"), FAILURES)
async def test_lookup_failures_are_translated(
    failure: Exception, translated: type[Exception]
) -> None:
    registry = _Registry()
    codec = WireCodec(await registered_book(registry, SCHEMAS, ""))
    registry.fail_with = failure
    with pytest.raises(translated):
        codec.decode(b"\x00\x00\x00\x00\x05\x00", UserEvent)


@pytest.mark.parametrize("event_type", examples.EVENT_TYPES)
def test_confluents_own_deserializer_reads_our_records(event_type: str) -> None:
    views = RegistryViews(SCHEMAS, "t5-")

    class ViewsClient:
        """What an `AvroDeserializer` asks of its registry, answered from the views (no HTTP)."""

        def get_associations_by_resource_name(self, **_query: Any) -> list[Any]:
            return views.associations()

        def get_schema(self, schema_id: int, *_args: Any, **_kwargs: Any) -> Schema:
            return Schema(views.schema(schema_id)["schema"], "AVRO")

    event = examples.event(event_type)
    topic = f"t5-{BY_EVENT_TYPE[event_type].topic}"
    deserializer = AvroDeserializer(ViewsClient())
    record = deserializer(encode(event), SerializationContext(topic, MessageField.VALUE))
    assert record["event_id"] == event.event_id  # type: ignore[attr-defined]
    assert record["event_type"] == event_type
    assert type(event).model_validate(record) == event


def test_a_real_client_is_built_without_talking_to_the_registry() -> None:
    client = connect_client("http://127.0.0.1:8081", timeout_s=2.0)
    assert callable(client.register_schema)
    assert callable(client.get_schema)
