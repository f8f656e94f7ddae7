"""The records a pipeline's plain logic reads and writes, free of Faust types.

A pipeline's batch logic takes `SourceRecord`s and hands `OutgoingRecord`s to a `RecordSink`; in
the worker the sink is a `TopicPublisher`, in unit tests a list. So the logic is tested without
Faust, and only the runtime converts between these and Faust's events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from streams.kafka.event_producer import Headers


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """Where a consumed record came from and its original bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def source_key(topic: str, partition: int) -> str:
    """How a source partition is named where it must be written down: "topic:partition"."""
    return f"{topic}:{partition}"


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


class RecordSink(Protocol):
    """Where a batch's records go: `send_all` returns once every record is acknowledged."""

    async def send_all(self, records: Sequence[OutgoingRecord]) -> None: ...
