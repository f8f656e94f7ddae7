from __future__ import annotations

import pytest

from streams.cli.dlq import (
    RecordId,
    RedriveItem,
    commit_offsets,
    item_line,
    letter_line,
    parse_offset,
    plan_redrive,
    redrive_group,
)
from streams.cli.errors import UsageError
from streams.cli.reader import KafkaRecord
from streams.cli.sending import Outgoing
from streams.errors import ServiceUnavailableError
from streams.kafka.dead_letters import dead_letter_headers
from streams.kafka.event_producer import RecordPosition
from streams.kafka.wire import BadMagicByteError
from streams.settings import WorkerSettings

SOURCE = "t1-orders.events"
DLQ = "t1-orders.events.dlq"


def letter(
    offset: int,
    partition: int = 0,
    key: bytes | None = b"ord-1",
    value: bytes | None = b"\xffraw",
    source: str = SOURCE,
) -> KafkaRecord:
    headers = (
        ("trace", b"t-1"),
        *dead_letter_headers(BadMagicByteError("first byte is 0xff"), source, 3, 100 + offset),
    )
    return KafkaRecord(DLQ, partition, offset, 0, key, value, headers)


def test_the_redrive_group_is_the_workers_with_a_suffix() -> None:
    assert redrive_group(WorkerSettings(app_id="tributary-prod")) == "tributary-prod-dlq-redrive"


@pytest.mark.parametrize(("text", "parsed"), [("3:42", RecordId(3, 42)), ("7", RecordId(None, 7))])
def test_offsets_name_a_partition_and_an_offset(text: str, parsed: RecordId) -> None:
    assert parse_offset(text) == parsed


@pytest.mark.parametrize("text", ["", "a:1", "1:", "-1", "1:2:3"])
def test_a_malformed_offset_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="PARTITION:OFFSET"):
        parse_offset(text)


def test_a_listed_dead_letter_shows_error_source_key_and_whether_it_was_redriven() -> None:
    line = letter_line(letter(5, partition=1), committed=6)
    assert line == {
        "dlq_partition": 1,
        "dlq_offset": 5,
        "timestamp": "1970-01-01T00:00:00.000Z",
        "key": "ord-1",
        "error_type": "BadMagicByteError",
        "error_message": "first byte is 0xff",
        "source_topic": SOURCE,
        "source_partition": 3,
        "source_offset": 105,
        "redriven": True,
    }
    assert letter_line(letter(6), committed=6)["redriven"] is False
    assert letter_line(letter(0), committed=None)["redriven"] is False


def test_a_record_without_dead_letter_headers_is_listed_with_what_is_wrong() -> None:
    bare = KafkaRecord(DLQ, 0, 9, 0, b"k", b"v", ())
    line = letter_line(bare, committed=None)
    assert line["dlq_offset"] == 9
    assert "dlq.source.topic is missing" in line["error"]


def test_the_plan_redrives_original_bytes_and_refuses_what_cannot_go_back() -> None:
    letters = [
        letter(0),
        letter(1, source="t2-orders.events"),
        letter(2, key=None),
        letter(3, value=None),
        KafkaRecord(DLQ, 0, 4, 0, b"k", b"v", ()),
    ]
    items = plan_redrive(letters, SOURCE)
    assert items[0] == RedriveItem(
        letters[0], Outgoing(SOURCE, b"ord-1", b"\xffraw", (("trace", b"t-1"),))
    )
    refusals = [item.refusal or "" for item in items[1:]]
    assert all(item.outgoing is None for item in items[1:])
    assert "t2-orders.events" in refusals[0]
    assert refusals[1:3] == ["has no key", "has no value"]
    assert "dlq.source.topic is missing" in refusals[3]


def _position(offset: int) -> RecordPosition:
    return RecordPosition(SOURCE, 3, offset)


def test_after_a_full_redrive_every_partition_is_committed_to_its_end() -> None:
    items = plan_redrive([letter(0), letter(1, source="elsewhere"), letter(4, partition=1)], SOURCE)
    results = {0: _position(10), 2: _position(11)}
    assert commit_offsets(items, results, ends={0: 2, 1: 5, 2: 0}) == {0: 2, 1: 5, 2: 0}


def test_a_failed_record_stops_its_partition_so_the_next_run_starts_with_it() -> None:
    items = plan_redrive([letter(0), letter(1), letter(2), letter(7, partition=1)], SOURCE)
    failure = ServiceUnavailableError("kafka", "timed out")
    results = {0: _position(10), 1: failure, 2: None, 3: _position(12)}
    assert commit_offsets(items, results, ends={0: 3, 1: 8}) == {0: 1, 1: 8}


def test_each_item_reports_what_happened_to_it() -> None:
    sent, refused, failed, held = plan_redrive(
        [letter(0), letter(1, source="x"), letter(2), letter(3)], SOURCE
    )
    assert item_line(sent, _position(10)) == {
        "dlq_partition": 0,
        "dlq_offset": 0,
        "status": "redriven",
        "topic": SOURCE,
        "partition": 3,
        "offset": 10,
    }
    assert item_line(refused, None)["status"] == "refused"
    failure = ServiceUnavailableError("kafka", "timed out")
    assert item_line(failed, failure) == {
        "dlq_partition": 0,
        "dlq_offset": 2,
        "status": "failed",
        "reason": "kafka unavailable: timed out",
    }
    assert item_line(held, None)["reason"].startswith("held back")
