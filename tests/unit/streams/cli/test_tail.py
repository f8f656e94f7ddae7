from __future__ import annotations

import base64

import pytest

from schemas import examples
from schemas.contracts import BY_EVENT_TYPE
from streams.cli.errors import UsageError
from streams.cli.reader import KafkaRecord
from streams.cli.tail import record_line, start_offsets, timestamp
from streams.cli.topic_names import resolve_family, resolve_topic
from streams.kafka.catalog import TopicCatalog
from streams.kafka.wire import local_codec
from streams.settings import DispatchSettings, KafkaSettings

PREFIX = "t1-"
CATALOG = TopicCatalog(PREFIX, KafkaSettings(), DispatchSettings().retry_delays_s)
T_MS = 1_795_000_000_123


def record(topic: str, value: bytes | None, key: bytes | None = b"ord_1001") -> KafkaRecord:
    return KafkaRecord(topic, 2, 40, T_MS, key, value, (("dlq.error.type", b"ValueError"),))


@pytest.mark.parametrize("typed", ["orders.events", "t1-orders.events"])
def test_a_topic_is_found_by_its_base_or_prefixed_name(typed: str) -> None:
    topic = resolve_topic(CATALOG, PREFIX, typed)
    assert (topic.name, topic.spec) == ("t1-orders.events", CATALOG.orders_events)
    assert topic.contract is not None
    assert topic.contract.topic == "orders.events"


def test_a_dead_letter_topic_has_no_contract_and_an_unknown_topic_is_taken_literally() -> None:
    dead = resolve_topic(CATALOG, PREFIX, "orders.events.dlq")
    assert (dead.name, dead.contract) == ("t1-orders.events.dlq", None)
    other = resolve_topic(CATALOG, PREFIX, "tributary-orders-changelog")
    assert (other.name, other.spec, other.contract) == ("tributary-orders-changelog", None, None)


@pytest.mark.parametrize("typed", ["users.events", "t1-users.events", "users.events.dlq"])
def test_dlq_commands_take_the_family_topic(typed: str) -> None:
    assert resolve_family(CATALOG, PREFIX, typed).name == "t1-users.events"


def test_a_dlq_command_on_an_unknown_family_lists_the_known_ones() -> None:
    with pytest.raises(UsageError, match=r"'payments.events'.*orders\.events"):
        resolve_family(CATALOG, PREFIX, "payments.events")


@pytest.mark.parametrize("event_type", examples.EVENT_TYPES)
def test_a_decodable_record_prints_its_envelope_as_json(event_type: str) -> None:
    event = examples.event(event_type)
    topic = resolve_topic(CATALOG, PREFIX, BY_EVENT_TYPE[event_type].topic)
    line = record_line(record(topic.name, local_codec().encode(event)), topic, local_codec())
    value = line.pop("value")
    assert line == {
        "topic": topic.name,
        "partition": 2,
        "offset": 40,
        "key": "ord_1001",
        "timestamp": "2026-11-18T11:06:40.123Z",
    }
    assert value["event_type"] == event_type
    assert type(event).model_validate(value) == event


def test_an_undecodable_record_prints_the_error_instead_of_crashing() -> None:
    topic = resolve_topic(CATALOG, PREFIX, "orders.events")
    line = record_line(record(topic.name, b"\xffjunk"), topic, local_codec())
    assert "value" not in line
    assert line["error"].startswith("BadMagicByteError: first byte is 0xff")
    assert record_line(record(topic.name, None), topic, local_codec())["error"] == (
        "TruncatedRecordError: record has no value"
    )


def test_a_dead_letter_prints_its_headers_and_its_value_in_base64() -> None:
    topic = resolve_topic(CATALOG, PREFIX, "orders.events.dlq")
    line = record_line(record(topic.name, b"\xffjunk", key=None), topic, local_codec())
    assert line["key"] is None
    assert line["headers"] == {"dlq.error.type": "ValueError"}
    assert base64.b64decode(line["value_base64"]) == b"\xffjunk"


def test_without_from_beginning_a_tail_starts_at_the_end() -> None:
    watermarks = {0: (3, 10), 1: (0, 0)}
    assert start_offsets(watermarks, from_beginning=True) == ({0: 3, 1: 0}, {0: 10, 1: 0})
    assert start_offsets(watermarks, from_beginning=False) == ({0: 10, 1: 0}, {0: 10, 1: 0})


def test_timestamps_are_utc_iso_8601_with_milliseconds() -> None:
    assert timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert timestamp(T_MS) == "2026-11-18T11:06:40.123Z"
