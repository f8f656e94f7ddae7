"""The dead-letter record format, shared by the worker that writes it and the CLI that reads it.

A poison record is set aside on its topic's `.dlq` topic with its original key and value bytes
and headers naming the error and where it came from (source topic, partition and offset). This
module owns those header names, so that the agents (which write dead letters) and the operator
CLI (which lists and re-drives them, and may not import `agents`) cannot drift apart.

Re-driving puts the original bytes back on the source topic once the cause is fixed; the
`dlq.*` headers are dropped on the way, since the re-driven record is no longer a dead letter.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from streams.errors import PoisonError
from streams.kafka.event_producer import Headers

# Long enough to name every failing field of a contract violation, short enough for a header.
MAX_ERROR_MESSAGE_CHARS = 1000

HEADER_PREFIX = "dlq."
HEADER_ERROR_TYPE = "dlq.error.type"
HEADER_ERROR_MESSAGE = "dlq.error.message"
HEADER_SOURCE_TOPIC = "dlq.source.topic"
HEADER_SOURCE_PARTITION = "dlq.source.partition"
HEADER_SOURCE_OFFSET = "dlq.source.offset"


class MalformedDeadLetterError(PoisonError):
    """A record on a `.dlq` topic without the headers this module writes (or with bad ones)."""


class ForeignDeadLetterError(PoisonError):
    """A dead letter whose source is not the topic it would be re-driven to."""


def dead_letter_headers(error: Exception, topic: str, partition: int, offset: int) -> Headers:
    """The headers of the dead letter for the record at `topic`/`partition`/`offset`."""
    return (
        (HEADER_ERROR_TYPE, type(error).__name__.encode()),
        (HEADER_ERROR_MESSAGE, str(error)[:MAX_ERROR_MESSAGE_CHARS].encode()),
        (HEADER_SOURCE_TOPIC, topic.encode()),
        (HEADER_SOURCE_PARTITION, str(partition).encode()),
        (HEADER_SOURCE_OFFSET, str(offset).encode()),
    )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why a record was set aside and where it came from, as read back from its headers."""

    error_type: str
    error_message: str
    source_topic: str
    source_partition: int
    source_offset: int


def read_dead_letter(headers: Sequence[tuple[str, bytes]]) -> DeadLetter:
    """The dead letter's provenance; `MalformedDeadLetterError` names every missing/bad header."""
    found = {name: value for name, value in headers if name.startswith(HEADER_PREFIX)}
    problems: list[str] = []

    def text(name: str) -> str:
        raw = found.get(name)
        if raw is None:
            problems.append(f"{name} is missing")
            return ""
        try:
            return raw.decode()
        except UnicodeDecodeError:
            problems.append(f"{name} is not UTF-8")
            return ""

    def number(name: str) -> int:
        value = text(name)
        if value and not value.isdecimal():
            problems.append(f"{name} is {value!r}, not a non-negative integer")
        return int(value) if value.isdecimal() else -1

    letter = DeadLetter(
        error_type=text(HEADER_ERROR_TYPE),
        error_message=text(HEADER_ERROR_MESSAGE),
        source_topic=text(HEADER_SOURCE_TOPIC),
        source_partition=number(HEADER_SOURCE_PARTITION),
        source_offset=number(HEADER_SOURCE_OFFSET),
    )
    if problems:
        raise MalformedDeadLetterError("not a dead letter: " + "; ".join(problems))
    return letter


def original_headers(headers: Sequence[tuple[str, bytes]]) -> Headers:
    """The headers the record had before it was dead-lettered (every `dlq.*` one removed)."""
    return tuple((name, value) for name, value in headers if not name.startswith(HEADER_PREFIX))


@dataclass(frozen=True, slots=True)
class RedriveRecord:
    """What re-driving one dead letter produces: the original bytes, back on their topic."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers


def redrive_record(
    headers: Sequence[tuple[str, bytes]],
    key: bytes | None,
    value: bytes | None,
    source_topic: str,
    also_from: Collection[str] = (),
) -> RedriveRecord:
    """The record that re-drives a dead letter to `source_topic`.

    The dead letter must name `source_topic` itself (the deployment's prefixed name), or one of
    `also_from` (the topics that share its dead letters: `notifications.dispatch`'s retry
    topics): a letter from another deployment's or another family's topic would otherwise be
    injected into a topic whose consumers never saw it fail.
    """
    letter = read_dead_letter(headers)
    if letter.source_topic != source_topic and letter.source_topic not in also_from:
        raise ForeignDeadLetterError(
            f"dead letter comes from {letter.source_topic!r}, not from {source_topic!r}"
        )
    return RedriveRecord(source_topic, key, value, original_headers(headers))
