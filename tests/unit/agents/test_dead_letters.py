from __future__ import annotations

from agents.dead_letters import MAX_ERROR_MESSAGE_CHARS, dead_letter
from streams.kafka.wire import ContractViolationError
from streams.runtime import SourceRecord


def test_a_dead_letter_keeps_the_bytes_and_names_the_error_and_the_source() -> None:
    record = SourceRecord(topic="p-orders.events", partition=2, offset=17, key=b"o-1", value=b"?")
    letter = dead_letter(record, ContractViolationError("not a valid OrderEvent: payload"))
    assert (letter.key, letter.value) == (b"o-1", b"?")
    assert dict(letter.headers) == {
        "dlq.error.type": b"ContractViolationError",
        "dlq.error.message": b"not a valid OrderEvent: payload",
        "dlq.source.topic": b"p-orders.events",
        "dlq.source.partition": b"2",
        "dlq.source.offset": b"17",
    }


def test_a_long_error_message_is_cut_short() -> None:
    record = SourceRecord(topic="t", partition=0, offset=0, key=None, value=None)
    letter = dead_letter(record, ContractViolationError("x" * 5000))
    assert len(dict(letter.headers)["dlq.error.message"]) == MAX_ERROR_MESSAGE_CHARS
