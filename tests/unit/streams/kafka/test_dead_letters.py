from __future__ import annotations

import pytest

from streams.kafka.dead_letters import (
    HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_TOPIC,
    MAX_ERROR_MESSAGE_CHARS,
    DeadLetter,
    ForeignDeadLetterError,
    MalformedDeadLetterError,
    dead_letter_headers,
    original_headers,
    read_dead_letter,
    redrive_record,
)
from streams.kafka.wire import BadMagicByteError


def test_the_headers_name_the_error_and_the_source_and_read_back_the_same() -> None:
    headers = dead_letter_headers(BadMagicByteError("first byte is 0xff"), "p-orders.events", 4, 9)
    assert dict(headers) == {
        "dlq.error.type": b"BadMagicByteError",
        "dlq.error.message": b"first byte is 0xff",
        "dlq.source.topic": b"p-orders.events",
        "dlq.source.partition": b"4",
        "dlq.source.offset": b"9",
    }
    assert read_dead_letter(headers) == DeadLetter(
        "BadMagicByteError", "first byte is 0xff", "p-orders.events", 4, 9
    )


def test_a_long_error_message_is_cut_short() -> None:
    headers = dead_letter_headers(ValueError("x" * 5000), "t", 0, 0)
    assert len(dict(headers)["dlq.error.message"]) == MAX_ERROR_MESSAGE_CHARS


def test_reading_names_every_missing_or_bad_header() -> None:
    headers = [
        ("dlq.error.type", b"ValueError"),
        ("dlq.error.message", b"\xff\xfe"),
        (HEADER_SOURCE_TOPIC, b"t"),
        (HEADER_SOURCE_OFFSET, b"-3"),
    ]
    with pytest.raises(MalformedDeadLetterError) as caught:
        read_dead_letter(headers)
    message = str(caught.value)
    assert "dlq.error.message is not UTF-8" in message
    assert "dlq.source.partition is missing" in message
    assert "dlq.source.offset is '-3', not a non-negative integer" in message
    assert "dlq.error.type" not in message


def test_the_original_headers_are_kept_without_the_dead_letter_ones() -> None:
    headers = (("event_id", b"e1"), *dead_letter_headers(ValueError("bad"), "t", 0, 1))
    assert original_headers(headers) == (("event_id", b"e1"),)


def test_a_redrive_record_is_the_original_bytes_back_on_the_source_topic() -> None:
    headers = (("trace", b"abc"), *dead_letter_headers(ValueError("bad"), "p-orders.events", 2, 7))
    record = redrive_record(headers, b"ord-1", b"\x00raw", "p-orders.events")
    assert (record.topic, record.key, record.value) == ("p-orders.events", b"ord-1", b"\x00raw")
    assert record.headers == (("trace", b"abc"),)


def test_a_dead_letter_from_another_topic_is_not_redriven_to_this_one() -> None:
    headers = dead_letter_headers(ValueError("bad"), "other-orders.events", 2, 7)
    with pytest.raises(ForeignDeadLetterError, match=r"other-orders\.events"):
        redrive_record(headers, b"k", b"v", "p-orders.events")
