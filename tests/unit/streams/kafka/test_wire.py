from __future__ import annotations

import io
import json
import random
import struct
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from pydantic import BaseModel

from schemas import examples
from schemas.auth import AuthEvent
from schemas.contracts import BY_EVENT_TYPE, BY_SUBJECT
from schemas.orders import OrderEvent
from schemas.registry import RegisteredSchema, SchemaSet, compact_json
from schemas.users import UserEvent, UserUpdated
from streams.errors import PoisonError
from streams.kafka.wire import (
    BadMagicByteError,
    ContractViolationError,
    ModelT,
    SchemaBook,
    SchemaMismatchError,
    TruncatedRecordError,
    UndecodableEventError,
    UnencodableEventError,
    UnknownSchemaIdError,
    WireCodec,
    decode,
    encode,
    local_codec,
)

SCHEMAS = SchemaSet.load()


def _raw(schema_id: int, schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    """A record framed by hand, as a producer in another language would write it."""
    buffer = io.BytesIO()
    buffer.write(struct.pack(">bI", 0, schema_id))
    schemaless_writer(buffer, parse_schema(schema), record)
    return buffer.getvalue()


def _afresh(raw: bytes, model: type[ModelT]) -> ModelT:
    """Decoded by a codec that never encoded `raw` (one that did may hand its event back)."""
    return WireCodec(SchemaBook.local(SCHEMAS)).decode(raw, model)


def _avro_record(event: BaseModel, payload_record: str) -> dict[str, Any]:
    record = event.model_dump()
    record["payload"] = (payload_record, record["payload"])
    return record


@pytest.mark.parametrize("event_type", examples.EVENT_TYPES)
def test_every_event_type_round_trips(event_type: str) -> None:
    event = examples.event(event_type)
    decoded = _afresh(encode(event), type(event))
    assert decoded == event
    assert type(decoded.payload) is type(event.payload)  # type: ignore[attr-defined]


@pytest.mark.parametrize("event_type", examples.EVENT_TYPES)
def test_the_header_is_the_confluent_one_with_the_subjects_current_id(event_type: str) -> None:
    raw = encode(examples.event(event_type))
    subject = BY_EVENT_TYPE[event_type].subject
    assert raw[0] == 0
    assert int.from_bytes(raw[1:5], "big") == SCHEMAS.latest(subject).id


@pytest.mark.parametrize("event_type", examples.EVENT_TYPES)
def test_the_body_is_plain_avro_readable_with_the_served_schema_text(event_type: str) -> None:
    event = examples.event(event_type)
    raw = encode(event)
    served = json.loads(SCHEMAS.by_id(int.from_bytes(raw[1:5], "big")).text)  # type: ignore[union-attr]
    body = io.BytesIO(raw[5:])
    record: Any = schemaless_reader(body, parse_schema(served), None)
    assert body.tell() == len(raw) - 5
    assert record["event_id"] == event.event_id  # type: ignore[attr-defined]
    assert record["event_type"] == event_type


def test_timestamps_travel_as_utc_milliseconds() -> None:
    example = examples.event("order.paid")
    assert isinstance(example, OrderEvent)
    event = example.model_copy(
        update={"ingested_at": datetime(2026, 11, 21, 9, 0, 0, 123_456, tzinfo=UTC)}
    )
    decoded = _afresh(encode(event), OrderEvent)
    assert decoded.ingested_at == datetime(2026, 11, 21, 9, 0, 0, 123_000, tzinfo=UTC)
    assert decoded.occurred_at == event.occurred_at  # same instant, offset normalized to UTC
    assert decoded.occurred_at.utcoffset() is not None


def test_module_functions_use_the_local_schema_set() -> None:
    event = examples.event("auth.logout")
    assert encode(event) == local_codec().encode(event)
    assert local_codec() is local_codec()


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (None, TruncatedRecordError),
        (b"", TruncatedRecordError),
        (b"\x00\x00\x00", TruncatedRecordError),
        (b'{"event_id": "x"}', BadMagicByteError),
        (b"\x01\x00\x00\x00\x05\x00", BadMagicByteError),
        (b"\x00\x00\x00\x03\xe7\x00", UnknownSchemaIdError),
    ],
)
def test_bad_framing_is_poison(raw: bytes | None, error: type[UndecodableEventError]) -> None:
    with pytest.raises(error) as caught:
        decode(raw, OrderEvent)
    assert isinstance(caught.value, PoisonError)


def test_a_record_cut_short_anywhere_is_poison() -> None:
    raw = encode(examples.event("user.preferences-updated"))
    for length in range(len(raw)):
        with pytest.raises(UndecodableEventError):
            decode(raw[:length], UserEvent)


def test_the_error_says_what_is_wrong() -> None:
    raw = encode(examples.event("order.paid"))
    with pytest.raises(TruncatedRecordError, match="ends early for schema id"):
        decode(raw[:-3], OrderEvent)
    with pytest.raises(BadMagicByteError, match="0x7b"):
        decode(b'{"a": 1}', OrderEvent)


def test_trailing_bytes_are_a_schema_mismatch() -> None:
    raw = encode(examples.event("order.paid"))
    with pytest.raises(SchemaMismatchError, match="2 bytes left"):
        decode(raw + b"\x00\x00", OrderEvent)


def test_another_topics_schema_id_is_a_schema_mismatch() -> None:
    raw = encode(examples.event("order.paid"))
    with pytest.raises(SchemaMismatchError, match=r"orders\.events-value"):
        decode(raw, UserEvent)


def test_a_payload_branch_that_contradicts_the_event_type_is_a_schema_mismatch() -> None:
    contract = BY_SUBJECT["users.events-value"]
    event = examples.event("user.deleted").model_copy(update={"event_type": "user.verified"})
    latest = SCHEMAS.latest(contract.subject)
    record = _avro_record(event, contract.payload_record("user.deleted"))
    with pytest.raises(SchemaMismatchError, match=r"user\.verified carries a"):
        decode(_raw(latest.id, dict(latest.schema), record), UserEvent)


def test_an_event_breaking_its_contract_is_a_contract_violation() -> None:
    # Avro cannot say "ISO 4217 code"; a foreign producer can write any string.
    latest = SCHEMAS.latest("orders.events-value")
    record = _avro_record(examples.event("order.paid"), "io.tributary.events.orders.Order")
    record["payload"][1]["currency"] = "XYZ"
    record["event_type"] = "order.exploded"
    with pytest.raises(ContractViolationError) as caught:
        decode(_raw(latest.id, dict(latest.schema), record), OrderEvent)
    assert "payload.currency" in str(caught.value)
    assert "event_type" in str(caught.value)


def test_random_bytes_after_a_valid_header_are_poison_not_crashes() -> None:
    header = struct.pack(">bI", 0, SCHEMAS.latest("auth.events-value").id)
    rng = random.Random(20261121)
    for _ in range(2000):
        garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
        try:
            decode(header + garbage, AuthEvent)
        except UndecodableEventError:
            continue


def test_data_written_with_an_older_version_is_read_through_the_current_schema() -> None:
    current = SCHEMAS.latest("users.events-value")
    older = _without_field(dict(current.schema), "UserUpdated", "phone_removed")
    book = SchemaBook.local(
        SchemaSet(
            [
                RegisteredSchema("users.events-value", 1, 41, older, compact_json(older)),
                RegisteredSchema("users.events-value", 2, 42, current.schema, current.text),
            ]
        )
    )
    record = {
        **_avro_record(examples.event("user.updated"), "io.tributary.events.users.UserUpdated"),
    }
    record["payload"][1].pop("phone_removed")
    record["payload"][1]["phone"] = "+33600000000"
    decoded = WireCodec(book).decode(_raw(41, older, record), UserEvent)
    assert isinstance(decoded.payload, UserUpdated)
    assert decoded.payload.phone == "+33600000000"
    assert decoded.payload.phone_removed is False  # the default of the newer field
    assert WireCodec(book).encode(decoded)[1:5] == (42).to_bytes(4, "big")


def test_an_event_that_does_not_fit_its_schema_cannot_be_encoded() -> None:
    valid = examples.event("order.paid")
    order = valid.payload.model_construct(**{**dict(valid.payload), "total_minor": 2**70})  # type: ignore[attr-defined]
    broken = valid.model_copy(update={"payload": order})
    with pytest.raises(UnencodableEventError):
        encode(broken)


def test_only_envelope_models_have_a_wire_format() -> None:
    with pytest.raises(TypeError):
        encode(UserUpdated(user_id="u", locale="fr"))
    with pytest.raises(TypeError):
        _afresh(encode(examples.event("order.paid")), UserUpdated)


def test_event_ids_survive_as_uuids() -> None:
    event = examples.event("order.created").model_copy(update={"event_id": uuid.uuid4()})
    assert _afresh(encode(event), OrderEvent).event_id == event.event_id  # type: ignore[attr-defined]


def _without_field(schema: dict[str, Any], record_name: str, field: str) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(schema))
    payload = next(f for f in copy["fields"] if f["name"] == "payload")
    record = next(branch for branch in payload["type"] if branch["name"] == record_name)
    record["fields"] = [f for f in record["fields"] if f["name"] != field]
    return copy


def test_one_record_decoded_by_several_agents_is_read_once() -> None:
    codec = WireCodec(SchemaBook.local(SCHEMAS))
    raw = encode(examples.event("user.created"))
    first = codec.decode(raw, UserEvent)
    assert codec.decode(raw, UserEvent) is first
    copy = bytes(bytearray(raw))  # equal bytes, another record
    assert codec.decode(copy, UserEvent) is not first
    assert codec.decode(bytes(bytearray(raw)), UserEvent) == first


def test_a_record_decoded_as_another_model_is_read_again() -> None:
    codec = WireCodec(SchemaBook.local(SCHEMAS))
    raw = encode(examples.event("user.created"))
    codec.decode(raw, UserEvent)
    with pytest.raises(UndecodableEventError):
        codec.decode(raw, AuthEvent)


def test_the_codec_keeps_only_its_last_decodes() -> None:
    codec = WireCodec(SchemaBook.local(SCHEMAS), recent_decodes=2)
    records = [encode(examples.event("user.created")) for _ in range(3)]
    first = codec.decode(records[0], UserEvent)
    for raw in records[1:]:
        codec.decode(raw, UserEvent)
    assert codec.decode(records[0], UserEvent) is not first
    assert codec.decode(records[0], UserEvent) == first


def test_a_negative_enum_index_is_a_schema_mismatch_not_the_last_symbol() -> None:
    """fastavro's reader takes index -1 as the last symbol; the codec's reader refuses it."""
    paid = examples.event("order.paid")
    assert isinstance(paid, OrderEvent)
    pending = paid.model_copy(
        update={"payload": paid.payload.model_copy(update={"status": "pending"})}
    )
    raw, other = encode(paid), encode(pending)
    (at,) = [i for i, (a, b) in enumerate(zip(raw, other, strict=True)) if a != b]
    with pytest.raises(SchemaMismatchError, match="enum index -1"):
        _afresh(raw[:at] + b"\x01" + raw[at + 1 :], OrderEvent)
