"""`tributary tail <topic>`: a topic's records as JSON lines, decoded from the wire format.

A record that does not decode is printed with the error instead of the value (a tail that
crashes on the first poison record would be useless exactly when it is needed). Dead-letter
topics and topics outside the catalog hold bytes of unknown shape: they print their headers and
the value in base64.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from streams.cli.output import Output
from streams.cli.reader import KafkaRecord, TopicReader
from streams.cli.topic_names import TopicRef, resolve_topic
from streams.errors import PoisonError
from streams.kafka.catalog import TopicCatalog
from streams.kafka.codec import wire_codec
from streams.kafka.wire import WireCodec
from streams.settings import KafkaProcessSettings

# Without --follow, how long the broker may stay silent before the end offsets are reached.
BOUNDED_IDLE_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class TailOptions:
    from_beginning: bool = False
    follow: bool = False
    max_records: int | None = None
    timeout_s: float | None = None


def text_or_none(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="backslashreplace")


def timestamp(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_line(record: KafkaRecord, topic: TopicRef, codec: WireCodec) -> dict[str, Any]:
    """The JSON line for one record: its decoded envelope, its error, or its raw bytes."""
    line: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": text_or_none(record.key),
        "timestamp": timestamp(record.timestamp_ms),
    }
    contract = topic.contract
    if contract is None:
        line["headers"] = {name: text_or_none(value) for name, value in record.headers}
        line["value_base64"] = (
            None if record.value is None else base64.b64encode(record.value).decode()
        )
        return line
    try:
        event = codec.decode(record.value, contract.event_model)
    except PoisonError as exc:
        line["error"] = f"{type(exc).__name__}: {exc}"
        return line
    line["value"] = event.model_dump(mode="json")
    return line


def start_offsets(
    watermarks: Mapping[int, tuple[int, int]], from_beginning: bool
) -> tuple[dict[int, int], dict[int, int]]:
    """Where to start per partition, and the ends taken now (where a bounded tail stops)."""
    starts = {p: (low if from_beginning else high) for p, (low, high) in watermarks.items()}
    ends = {p: high for p, (_low, high) in watermarks.items()}
    return starts, ends


async def tail(
    settings: KafkaProcessSettings,
    catalog: TopicCatalog,
    typed_topic: str,
    options: TailOptions,
    output: Output,
) -> int:
    """`settings`: the brokers, and the Schema Registry (if any) whose ids to read."""
    topic = resolve_topic(catalog, catalog.prefix, typed_topic)
    codec = await wire_codec(settings)
    if not (options.from_beginning or options.follow):
        output.note("from the end without --follow: nothing to print (add --from-beginning)")
    printed = 0
    async with TopicReader(settings.kafka, topic.name) as reader:
        starts, ends = start_offsets(await reader.watermarks(), options.from_beginning)
        if options.follow:
            bounded, idle_timeout_s = None, options.timeout_s
        else:
            bounded, idle_timeout_s = ends, options.timeout_s or BOUNDED_IDLE_TIMEOUT_S
        async with aclosing(reader.read(starts, bounded, idle_timeout_s)) as records:
            async for record in records:
                output.record(record_line(record, topic, codec))
                printed += 1
                if options.max_records is not None and printed >= options.max_records:
                    break
    return 0
