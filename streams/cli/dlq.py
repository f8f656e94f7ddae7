"""`tributary dlq list|redrive <topic>`: the dead letters of a family topic, and their replay.

Re-driving produces each dead letter's ORIGINAL key, value and headers (minus `dlq.*`) to the
topic it came from, so that after a fix the worker simply processes them like new records.

`redrive --all` remembers how far it got by committing offsets of the consumer group
`<worker app id>-dlq-redrive` on the `.dlq` topic, once the records are acknowledged: a second run
continues after the last re-driven record instead of duplicating everything. (A crash between
the produce and the commit re-drives those records again; consumers dedupe on `event_id`.)
`redrive --offset P:N` re-drives the named records whatever was done before and moves nothing.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from streams.cli.errors import UsageError
from streams.cli.output import Output
from streams.cli.reader import KafkaRecord, TopicReader
from streams.cli.sending import Outgoing, SendResult, first_failure, send_in_key_order
from streams.cli.tail import BOUNDED_IDLE_TIMEOUT_S, text_or_none, timestamp
from streams.cli.topic_names import resolve_dead_letters
from streams.errors import PoisonError, ServiceUnavailableError
from streams.kafka.catalog import TopicCatalog
from streams.kafka.dead_letters import MalformedDeadLetterError, read_dead_letter, redrive_record
from streams.kafka.event_producer import EventProducer, RecordPosition
from streams.settings import KafkaSettings, WorkerSettings

_OFFSET = re.compile(r"^(?:(\d+):)?(\d+)$")


def redrive_group(worker: WorkerSettings) -> str:
    """The consumer group whose offsets on a `.dlq` topic mark what was already re-driven."""
    return f"{worker.app_id}-dlq-redrive"


@dataclass(frozen=True, slots=True)
class RecordId:
    partition: int | None
    offset: int


def parse_offset(text: str) -> RecordId:
    """`P:N` (partition P, offset N) or a bare `N` (only for a one-partition topic)."""
    match = _OFFSET.match(text.strip())
    if match is None:
        raise UsageError(f"--offset {text!r}: expected PARTITION:OFFSET, such as 3:42")
    partition = None if match.group(1) is None else int(match.group(1))
    return RecordId(partition, int(match.group(2)))


def letter_line(record: KafkaRecord, committed: int | None) -> dict[str, Any]:
    """`dlq list`'s line for a dead letter; `redriven` once `redrive --all` went past it."""
    line: dict[str, Any] = {
        "dlq_partition": record.partition,
        "dlq_offset": record.offset,
        "timestamp": timestamp(record.timestamp_ms),
        "key": text_or_none(record.key),
    }
    try:
        letter = read_dead_letter(record.headers)
    except MalformedDeadLetterError as exc:
        line["error"] = str(exc)
        return line
    line |= {
        "error_type": letter.error_type,
        "error_message": letter.error_message,
        "source_topic": letter.source_topic,
        "source_partition": letter.source_partition,
        "source_offset": letter.source_offset,
        "redriven": committed is not None and record.offset < committed,
    }
    return line


@dataclass(frozen=True, slots=True)
class RedriveItem:
    """One dead letter, with the record that re-drives it or why it will not be re-driven."""

    letter: KafkaRecord
    outgoing: Outgoing | None
    refusal: str | None = None


def plan_redrive(
    letters: Sequence[KafkaRecord], source_topic: str, also_from: Collection[str] = ()
) -> list[RedriveItem]:
    items = []
    for letter in letters:
        try:
            record = redrive_record(
                letter.headers, letter.key, letter.value, source_topic, also_from
            )
        except PoisonError as exc:
            items.append(RedriveItem(letter, None, str(exc)))
            continue
        if record.key is None or record.value is None:
            # Kept in the DLQ (still listed, and visible to whoever looks): our topics are keyed,
            # and a record without a value has nothing to re-drive.
            refusal = f"has no {'key' if record.key is None else 'value'}"
            items.append(RedriveItem(letter, None, refusal))
            continue
        outgoing = Outgoing(record.topic, record.key, record.value, record.headers)
        items.append(RedriveItem(letter, outgoing))
    return items


def commit_offsets(
    items: Sequence[RedriveItem], results: Mapping[int, SendResult], ends: Mapping[int, int]
) -> dict[int, int]:
    """Per `.dlq` partition, the offset up to which every dead letter is dealt with.

    `results` is keyed by the item's index. Refused letters count as dealt with (they were
    reported and stay listed); the first one that failed or was held back stops its partition
    there, so the next run starts with it.
    """
    offsets = dict(ends)
    for index, item in sorted(enumerate(items), key=lambda pair: pair[1].letter.offset):
        partition = item.letter.partition
        if item.outgoing is not None and not isinstance(results.get(index), RecordPosition):
            offsets[partition] = min(offsets[partition], item.letter.offset)
    return offsets


def item_line(item: RedriveItem, result: SendResult) -> dict[str, Any]:
    line: dict[str, Any] = {
        "dlq_partition": item.letter.partition,
        "dlq_offset": item.letter.offset,
    }
    if item.refusal is not None:
        return line | {"status": "refused", "reason": item.refusal}
    if isinstance(result, RecordPosition):
        position = {"topic": result.topic, "partition": result.partition, "offset": result.offset}
        return line | {"status": "redriven"} | position
    reason = str(result) if result is not None else "held back: an earlier record of its key failed"
    return line | {"status": "failed", "reason": reason}


async def list_dead_letters(
    catalog: TopicCatalog,
    kafka: KafkaSettings,
    worker: WorkerSettings,
    typed_topic: str,
    output: Output,
) -> int:
    dead_letters = resolve_dead_letters(catalog, catalog.prefix, typed_topic).dead_letters
    async with TopicReader(kafka, dead_letters.name, redrive_group(worker)) as reader:
        committed = await reader.committed()
        watermarks = await reader.watermarks()
        starts = {p: low for p, (low, _high) in watermarks.items()}
        ends = {p: high for p, (_low, high) in watermarks.items()}
        count = 0
        async with aclosing(reader.read(starts, ends, BOUNDED_IDLE_TIMEOUT_S)) as records:
            async for record in records:
                output.record(letter_line(record, committed[record.partition]))
                count += 1
    output.note(f"{count} dead letters on {dead_letters.name}")
    return 0


async def redrive(
    catalog: TopicCatalog,
    kafka: KafkaSettings,
    worker: WorkerSettings,
    typed_topic: str,
    offsets: Sequence[str],
    output: Output,
) -> int:
    """Exit 0 when every selected dead letter was re-driven, 2 when some were refused."""
    route = resolve_dead_letters(catalog, catalog.prefix, typed_topic)
    source, dead_letters = route.source, route.dead_letters
    wanted = [parse_offset(text) for text in offsets]
    async with TopicReader(kafka, dead_letters.name, redrive_group(worker)) as reader:
        watermarks = await reader.watermarks()
        if wanted:
            letters, ends = await _chosen(reader, watermarks, wanted), None
        else:
            letters, ends = await _pending(reader, watermarks)
        items = plan_redrive(letters, source.name, route.also_from)
        results = await _send(kafka, items)
        for index, item in enumerate(items):
            output.record(item_line(item, results.get(index)))
        if ends is not None:
            await reader.commit(commit_offsets(items, results, ends))
    redriven = sum(isinstance(result, RecordPosition) for result in results.values())
    refused = sum(item.refusal is not None for item in items)
    output.note(
        f"re-drove {redriven} of {len(items)} dead letters from {dead_letters.name} "
        f"to {source.name}; {refused} refused"
    )
    failure = first_failure(list(results.values()))
    if failure is not None:
        raise ServiceUnavailableError(failure.service, failure.detail) from failure
    return 2 if refused else 0


async def _send(kafka: KafkaSettings, items: Sequence[RedriveItem]) -> dict[int, SendResult]:
    """Each sendable item's result, by the item's index."""
    sendable = [(index, item.outgoing) for index, item in enumerate(items) if item.outgoing]
    if not sendable:
        return {}
    async with EventProducer(kafka) as producer:
        sent = await send_in_key_order(producer, [record for _index, record in sendable])
    return {index: result for (index, _record), result in zip(sendable, sent, strict=True)}


async def _pending(
    reader: TopicReader, watermarks: Mapping[int, tuple[int, int]]
) -> tuple[list[KafkaRecord], dict[int, int]]:
    """The dead letters after the group's committed offsets, up to the ends taken now."""
    committed = await reader.committed()
    starts = {p: max(low, committed[p] or 0) for p, (low, _high) in watermarks.items()}
    ends = {p: high for p, (_low, high) in watermarks.items()}
    return await _read(reader, starts, ends), ends


async def _chosen(
    reader: TopicReader, watermarks: Mapping[int, tuple[int, int]], wanted: Sequence[RecordId]
) -> list[KafkaRecord]:
    by_partition: dict[int, set[int]] = {}
    for record_id in wanted:
        partition = _partition_of(record_id, reader)
        low, high = watermarks[partition]
        if not low <= record_id.offset < high:
            raise UsageError(
                f"no dead letter at {partition}:{record_id.offset} on {reader.topic} "
                f"(partition {partition} holds offsets {low} to {high - 1})"
            )
        by_partition.setdefault(partition, set()).add(record_id.offset)
    starts = {p: min(chosen) for p, chosen in by_partition.items()}
    ends = {p: max(chosen) + 1 for p, chosen in by_partition.items()}
    found = [
        record
        for record in await _read(reader, starts, ends)
        if record.offset in by_partition[record.partition]
    ]
    missing = sum(len(chosen) for chosen in by_partition.values()) - len(found)
    if missing:
        raise UsageError(f"{missing} of the chosen offsets hold no record on {reader.topic}")
    return sorted(found, key=lambda record: (record.partition, record.offset))


def _partition_of(record_id: RecordId, reader: TopicReader) -> int:
    if record_id.partition is None:
        if len(reader.partitions) != 1:
            raise UsageError(
                f"{reader.topic} has {len(reader.partitions)} partitions: "
                f"name one, as in --offset PARTITION:{record_id.offset}"
            )
        return reader.partitions[0]
    if record_id.partition not in reader.partitions:
        raise UsageError(f"{reader.topic} has no partition {record_id.partition}")
    return record_id.partition


async def _read(
    reader: TopicReader, starts: Mapping[int, int], ends: Mapping[int, int]
) -> list[KafkaRecord]:
    busy = {p: start for p, start in starts.items() if start < ends[p]}
    if not busy:
        return []
    async with aclosing(reader.read(busy, ends, BOUNDED_IDLE_TIMEOUT_S)) as records:
        return [record async for record in records]
