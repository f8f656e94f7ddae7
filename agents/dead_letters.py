"""What a record that can never be processed becomes: its original bytes plus why and whence.

A poison record is set aside on the source topic's `.dlq` topic instead of blocking its partition
(a consumer cannot skip a record without losing its place) or being dropped (nobody could find
out what upstream sent). The headers carry enough to find the original and to replay it once the
cause is fixed: the error, and the source topic, partition and offset.
"""

from __future__ import annotations

from streams.faust_app import OutgoingRecord, SourceRecord

# Long enough to name every failing field of a contract violation, short enough for a header.
MAX_ERROR_MESSAGE_CHARS = 1000

HEADER_ERROR_TYPE = "dlq.error.type"
HEADER_ERROR_MESSAGE = "dlq.error.message"
HEADER_SOURCE_TOPIC = "dlq.source.topic"
HEADER_SOURCE_PARTITION = "dlq.source.partition"
HEADER_SOURCE_OFFSET = "dlq.source.offset"


def dead_letter(record: SourceRecord, error: Exception) -> OutgoingRecord:
    """The dead letter for `record`: same key and value bytes, headers naming error and source."""
    headers = (
        (HEADER_ERROR_TYPE, type(error).__name__.encode()),
        (HEADER_ERROR_MESSAGE, str(error)[:MAX_ERROR_MESSAGE_CHARS].encode()),
        (HEADER_SOURCE_TOPIC, record.topic.encode()),
        (HEADER_SOURCE_PARTITION, str(record.partition).encode()),
        (HEADER_SOURCE_OFFSET, str(record.offset).encode()),
    )
    return OutgoingRecord(key=record.key, value=record.value, headers=headers)
