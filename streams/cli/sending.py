"""Producing many records at once without reordering any key's records.

Records of one key must reach their partition in input order (an `order.paid` before its
`order.created` would be stale on arrival), so each key's records are sent one after another,
while different keys are in flight together and share the producer's batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from streams.errors import ServiceUnavailableError
from streams.kafka.event_producer import Headers, RecordPosition


class RecordSink(Protocol):
    """`streams.kafka.event_producer.EventProducer`, or a fake."""

    async def send(
        self, topic: str, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> RecordPosition: ...


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes
    value: bytes
    headers: Headers = ()


# Per record: where it was stored, why it failed, or None when not sent because an earlier
# record of its key failed (sending it anyway would put it ahead of that one).
SendResult = RecordPosition | ServiceUnavailableError | None


async def send_in_key_order(sink: RecordSink, records: Sequence[Outgoing]) -> list[SendResult]:
    results: list[SendResult] = [None] * len(records)
    lanes: dict[tuple[str, bytes], list[int]] = {}
    for index, record in enumerate(records):
        lanes.setdefault((record.topic, record.key), []).append(index)

    async def send_lane(indexes: list[int]) -> None:
        for index in indexes:
            record = records[index]
            try:
                results[index] = await sink.send(
                    record.topic, record.key, record.value, record.headers
                )
            except ServiceUnavailableError as exc:
                results[index] = exc
                return

    await asyncio.gather(*(send_lane(indexes) for indexes in lanes.values()))
    return results


def first_failure(results: Sequence[SendResult]) -> ServiceUnavailableError | None:
    return next((r for r in results if isinstance(r, ServiceUnavailableError)), None)
