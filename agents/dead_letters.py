"""What a record that can never be processed becomes: its original bytes plus why and whence.

A poison record is set aside on the source topic's `.dlq` topic instead of blocking its partition
(a consumer cannot skip a record without losing its place) or being dropped (nobody could find
out what upstream sent). The headers carry enough to find the original and to replay it once the
cause is fixed: the error, and the source topic, partition and offset. Their names and format
live in `streams.kafka.dead_letters`, which the operator CLI reads them with.
"""

from __future__ import annotations

import logging

from streams.kafka.dead_letters import (
    HEADER_ERROR_MESSAGE,
    HEADER_ERROR_TYPE,
    HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TOPIC,
    MAX_ERROR_MESSAGE_CHARS,
    dead_letter_headers,
)
from streams.runtime import OutgoingRecord, SourceRecord

log = logging.getLogger(__name__)

__all__ = [
    "HEADER_ERROR_MESSAGE",
    "HEADER_ERROR_TYPE",
    "HEADER_SOURCE_OFFSET",
    "HEADER_SOURCE_PARTITION",
    "HEADER_SOURCE_TOPIC",
    "MAX_ERROR_MESSAGE_CHARS",
    "dead_letter",
    "set_aside",
]


def dead_letter(record: SourceRecord, error: Exception) -> OutgoingRecord:
    """The dead letter for `record`: same key and value bytes, headers naming error and source."""
    headers = dead_letter_headers(error, record.topic, record.partition, record.offset)
    return OutgoingRecord(key=record.key, value=record.value, headers=headers)


def set_aside(record: SourceRecord, error: Exception) -> OutgoingRecord:
    """`dead_letter`, with the warning that says which record went and why."""
    log.warning(
        "dead-lettering %s[%d]@%d: %s",
        record.topic,
        record.partition,
        record.offset,
        error,
        extra={"topic": record.topic, "partition": record.partition, "offset": record.offset},
    )
    return dead_letter(record, error)
