"""Reading one topic's records by offset range, with aiokafka, for `tail` and `dlq`.

Partitions are assigned by hand rather than by joining a consumer group: an operator reading a
topic must never trigger a rebalance of (or steal partitions from) the workers that consume it.
A group id is still given when offsets are committed (`dlq redrive` remembers its position), and
Kafka accepts commits from such "simple" group members as long as nobody joined the group.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streams.cli.cluster import Cluster
from streams.cli.errors import TopicNotFoundError
from streams.errors import ServiceUnavailableError
from streams.kafka.client_security import aiokafka_security
from streams.kafka.consumer_stop import stop_consumer
from streams.settings import KafkaSettings

SERVICE = "kafka"
POLL_MS = 200


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """A consumed record, free of the client library's types."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


class TopicReader:
    """Every partition of one topic; driver errors become `ServiceUnavailableError("kafka")`."""

    def __init__(self, settings: KafkaSettings, topic: str, group_id: str | None = None) -> None:
        self.topic = topic
        self._settings = settings
        self._group_id = group_id
        self._timeout_s = settings.request_timeout_s
        self._consumer: Any = None
        self.partitions: tuple[int, ...] = ()

    async def __aenter__(self) -> TopicReader:
        # Asked of the admin client: aiokafka's consumer would only learn a topic's partitions
        # by asking for (and so auto-creating) that very topic.
        self.partitions = await Cluster(self._settings).partitions(self.topic)
        if not self.partitions:
            raise TopicNotFoundError(self.topic)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.bootstrap,
            client_id=f"{self._settings.client_id}-cli",
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **aiokafka_security(self._settings),
        )
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._consumer.start()
        except (KafkaError, OSError, TimeoutError) as exc:
            await stop_consumer(self._consumer)
            raise ServiceUnavailableError(SERVICE, f"cannot read {self.topic}: {exc!r}") from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await stop_consumer(self._consumer)

    def _tps(self, partitions: Iterable[int] | None = None) -> list[TopicPartition]:
        chosen = self.partitions if partitions is None else partitions
        return [TopicPartition(self.topic, partition) for partition in chosen]

    async def watermarks(self) -> dict[int, tuple[int, int]]:
        """Per partition, the first retained offset and the offset the next record will get."""
        tps = self._tps()
        try:
            async with asyncio.timeout(self._timeout_s):
                low = await self._consumer.beginning_offsets(tps)
                high = await self._consumer.end_offsets(tps)
        except (KafkaError, TimeoutError) as exc:
            raise ServiceUnavailableError(SERVICE, f"offsets of {self.topic}: {exc!r}") from exc
        return {tp.partition: (int(low[tp]), int(high[tp])) for tp in tps}

    async def offsets_at(self, timestamp_ms: int) -> dict[int, int]:
        """Per partition, the first offset whose record is at or after `timestamp_ms` (the end
        offset where none is)."""
        tps = self._tps()
        try:
            async with asyncio.timeout(self._timeout_s):
                found = await self._consumer.offsets_for_times({tp: timestamp_ms for tp in tps})
                high = await self._consumer.end_offsets(tps)
        except (KafkaError, TimeoutError) as exc:
            raise ServiceUnavailableError(SERVICE, f"offsets of {self.topic}: {exc!r}") from exc
        return {
            tp.partition: int(high[tp]) if found[tp] is None else int(found[tp].offset)
            for tp in tps
        }

    async def committed(self) -> dict[int, int | None]:
        """The group's committed offset per partition; None where it never committed."""
        self._consumer.assign(self._tps())
        found: dict[int, int | None] = {}
        try:
            async with asyncio.timeout(self._timeout_s):
                for tp in self._tps():
                    offset = await self._consumer.committed(tp)
                    found[tp.partition] = None if offset is None or offset < 0 else int(offset)
        except (KafkaError, TimeoutError) as exc:
            raise ServiceUnavailableError(SERVICE, f"committed offsets: {exc!r}") from exc
        return found

    async def commit(self, offsets: Mapping[int, int]) -> None:
        """Record `offsets` (per partition, the next offset to read) as the group's position."""
        if not offsets:
            return
        self._consumer.assign(self._tps())
        commits = {TopicPartition(self.topic, p): offset for p, offset in offsets.items()}
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._consumer.commit(commits)
        except (KafkaError, TimeoutError) as exc:
            raise ServiceUnavailableError(SERVICE, f"committing offsets: {exc!r}") from exc

    async def read(
        self,
        starts: Mapping[int, int],
        ends: Mapping[int, int] | None,
        idle_timeout_s: float | None,
    ) -> AsyncGenerator[KafkaRecord, None]:
        """Records from `starts` (per partition) up to `ends` (exclusive), or forever if None.

        Bounded reading must reach the ends: a broker silent for `idle_timeout_s` before then is
        an error. Unbounded reading (follow) simply stops once idle that long.
        """
        tps = self._tps(sorted(starts))
        self._consumer.assign(tps)
        for tp in tps:
            self._consumer.seek(tp, starts[tp.partition])
        last_record_s = time.monotonic()
        try:
            while True:
                if ends is not None and not await self._unfinished(tps, ends):
                    return
                batches = await self._consumer.getmany(*tps, timeout_ms=POLL_MS)
                records = [record for batch in batches.values() for record in batch]
                if records:
                    last_record_s = time.monotonic()
                idle_s = time.monotonic() - last_record_s
                if idle_timeout_s is not None and idle_s > idle_timeout_s:
                    if ends is None:
                        return
                    raise ServiceUnavailableError(
                        SERVICE, f"{self.topic}: no records for {idle_timeout_s:g} s before its end"
                    )
                for record in records:
                    if ends is None or record.offset < ends[record.partition]:
                        yield _record(record)
        except KafkaError as exc:
            raise ServiceUnavailableError(SERVICE, f"reading {self.topic}: {exc!r}") from exc

    async def _unfinished(self, tps: list[TopicPartition], ends: Mapping[int, int]) -> bool:
        unfinished = False
        for tp in tps:
            if await self._consumer.position(tp) < ends[tp.partition]:
                unfinished = True
            else:
                self._consumer.pause(tp)
        return unfinished


def _record(record: Any) -> KafkaRecord:
    return KafkaRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp,
        key=record.key,
        value=record.value,
        headers=tuple((name, bytes(value)) for name, value in record.headers or ()),
    )
