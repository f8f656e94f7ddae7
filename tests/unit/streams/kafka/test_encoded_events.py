"""The codec keeps what it encoded and hands it back when the process reads the same bytes: only
where decoding those bytes would give exactly that event, in value and in representation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import uuid4

import pytest
from pydantic import BaseModel

from schemas import examples
from schemas.auth import AuthEvent
from schemas.notifications import NotificationDispatchEvent, NotificationStatusEvent
from schemas.registry import SchemaSet
from schemas.users import UserEvent
from streams.kafka.wire import (
    RECENT_ENCODES,
    SchemaBook,
    UndecodableEventError,
    WireCodec,
    local_codec,
    round_trips,
    wire_now,
)

SCHEMAS = SchemaSet.load()
AT_MS = datetime(2026, 12, 6, 15, 30, 1, 123_000, tzinfo=UTC)


def codec(recent_encodes: int = RECENT_ENCODES) -> WireCodec:
    """A worker's codec (it keeps what it encodes)."""
    return WireCodec(SchemaBook.local(SCHEMAS), recent_encodes=recent_encodes)


def read_afresh(raw: bytes, model: type[BaseModel]) -> BaseModel:
    """What a process that never encoded `raw` decodes from it."""
    return codec().decode(raw, model)


def _utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, dict):
        return {key: _utc(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_utc(item) for item in value)
    return value


def in_utc(event: BaseModel) -> BaseModel:
    """`event` with every timestamp in UTC (the examples carry a +01:00 one)."""
    return type(event).model_validate(_utc(event.model_dump()))


@pytest.mark.parametrize("event_type", examples.EVENT_TYPES)
def test_what_the_codec_hands_back_is_what_a_decode_would_give(event_type: str) -> None:
    for event in (examples.event(event_type), in_utc(examples.event(event_type))):
        writer = codec()
        raw = writer.encode(event)
        kept = writer.decode(bytes(bytearray(raw)), type(event))  # the bytes as read back
        decoded = read_afresh(raw, type(event))
        assert kept == decoded
        assert kept.model_dump_json() == decoded.model_dump_json()


@pytest.mark.parametrize("model", [NotificationDispatchEvent, NotificationStatusEvent])
def test_the_notification_loops_events_are_read_back_without_decoding(
    model: type[BaseModel],
) -> None:
    event_type = next(t for t in examples.EVENT_TYPES if type(examples.event(t)) is model)
    event = in_utc(examples.event(event_type))
    writer = codec()
    raw = writer.encode(event)
    assert writer.decode(bytes(bytearray(raw)), model) is event


def test_a_timestamp_finer_than_the_wire_keeps_is_decoded() -> None:
    event = in_utc(examples.event("user.created"))
    fine = event.model_copy(update={"occurred_at": AT_MS + timedelta(microseconds=456)})
    writer = codec()
    read = writer.decode(writer.encode(fine), UserEvent)
    assert read is not fine
    assert read.occurred_at == AT_MS  # type: ignore[attr-defined]


def test_a_timestamp_in_another_zone_is_decoded_to_utc() -> None:
    event = in_utc(examples.event("user.created"))
    paris = AT_MS.astimezone(timezone(timedelta(hours=1)))
    writer = codec()
    read = writer.decode(writer.encode(event.model_copy(update={"occurred_at": paris})), UserEvent)
    assert read.occurred_at.utcoffset() == timedelta(0)  # type: ignore[attr-defined]


def test_the_same_bytes_read_as_another_model_are_decoded_as_that_model() -> None:
    writer = codec()
    raw = writer.encode(in_utc(examples.event("user.created")))
    with pytest.raises(UndecodableEventError):
        writer.decode(bytes(bytearray(raw)), AuthEvent)


def test_the_codec_keeps_two_generations_of_its_last_encodes() -> None:
    writer = codec(recent_encodes=2)
    base = in_utc(examples.event("user.created"))
    events = [base.model_copy(update={"event_id": uuid4()}) for _ in range(5)]
    raws = [writer.encode(event) for event in events]
    # Generations {1, 2}, then {3, 4} (the first dropped), then {5}: the last three are kept.
    pairs = zip(raws, events, strict=True)
    kept = [writer.decode(bytes(bytearray(raw)), UserEvent) is event for raw, event in pairs]
    assert kept == [False, False, True, True, True]


def test_a_codec_keeps_no_encodes_unless_told_to() -> None:
    """The API and the CLI never read back what they write: their codec keeps nothing."""
    event = in_utc(examples.event("user.created"))
    for writer in (WireCodec(SchemaBook.local(SCHEMAS)), local_codec()):
        assert writer.decode(writer.encode(event), UserEvent) is not event


class Colour(Enum):
    RED = "red"


@pytest.mark.parametrize(
    ("value", "exact"),
    [
        ({"a": "x", "b": 1, "c": True, "d": None, "e": b"\x00", "f": uuid4()}, True),
        ({"at": AT_MS, "nested": [{"at": AT_MS}], "pair": ("x", Colour.RED)}, True),
        ({"at": AT_MS + timedelta(microseconds=1)}, False),
        ({"at": AT_MS.astimezone(timezone(timedelta(hours=2)))}, False),
        ({"amount": Decimal("1.50")}, False),
        ({"ratio": 0.1}, False),
        ({"items": [{"at": AT_MS}, {"amount": Decimal("1")}]}, False),
    ],
)
def test_round_trips_accepts_only_values_avro_gives_back_exactly(value: Any, exact: bool) -> None:
    assert round_trips(value) is exact


def test_wire_now_is_utc_to_the_millisecond() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    now = wire_now()
    assert now.tzinfo is UTC
    assert now.microsecond % 1000 == 0
    assert before <= now <= datetime.now(UTC)
