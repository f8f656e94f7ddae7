"""What the cluster says about topics: partitions, leaders, watermarks, group offsets, configs.

confluent-kafka's AdminClient is blocking, so every call runs in a worker thread. Each question is
asked once for all the partitions at hand (one ListOffsets, one OffsetFetch per group), not once
per partition: `topics list` covers a dozen topics of several partitions each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from typing import Any, TypeVar

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    OffsetSpec,
    ResourceType,
)

from streams.errors import ServiceUnavailableError
from streams.kafka.client_security import librdkafka_security
from streams.settings import KafkaSettings

SERVICE = "kafka"
DESCRIBED_CONFIGS = ("cleanup.policy", "retention.ms")
# Between two tries of a request the broker refused for a passing reason (a leader election).
RETRY_PAUSE_S = 0.1
# What a partition answers while its leader is being elected, or just was and the client's
# metadata is behind (librdkafka does not always flag these as retriable on admin results; the
# Kafka protocol documents them as retriable).
_PASSING_CODES = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.FENCED_LEADER_EPOCH,
    }
)


def is_passing(error: KafkaError) -> bool:
    return bool(error.retriable()) or error.code() in _PASSING_CODES


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PartitionState:
    partition: int
    leader: int
    low: int
    high: int
    # The group's committed offset (the next record it will read); None: it never committed.
    committed: int | None

    @property
    def lag(self) -> int:
        """Records the group has still to read; all that is retained if it never committed."""
        start = self.low if self.committed is None else max(self.low, self.committed)
        return self.high - start


@dataclass(frozen=True, slots=True)
class TopicState:
    name: str
    group: str
    partitions: tuple[PartitionState, ...]

    @property
    def end_offsets(self) -> int:
        return sum(partition.high for partition in self.partitions)

    @property
    def lag(self) -> int:
        return sum(partition.lag for partition in self.partitions)


class Cluster:
    """Read-only questions to the cluster; `ServiceUnavailableError("kafka")` when it is away."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._timeout_s = settings.request_timeout_s
        self._admin = AdminClient(
            {
                "bootstrap.servers": settings.bootstrap,
                "client.id": f"{settings.client_id}-cli",
                "socket.timeout.ms": int(self._timeout_s * 1000),
                **librdkafka_security(settings),
            }
        )

    async def partition_counts(self) -> dict[str, int]:
        """Every topic's partition count."""
        metadata = await asyncio.to_thread(self._metadata)
        return {name: len(topic.partitions) for name, topic in metadata.topics.items()}

    async def partitions(self, topic: str) -> tuple[int, ...]:
        """The topic's partition ids; empty when it does not exist."""
        metadata = await asyncio.to_thread(self._metadata)
        found = metadata.topics.get(topic)
        return () if found is None else tuple(sorted(found.partitions))

    async def topic_states(self, groups: Mapping[str, str]) -> dict[str, TopicState]:
        """The state of each existing topic of `groups` (topic -> the group whose lag counts)."""
        return await asyncio.to_thread(self._topic_states, groups)

    async def configs(self, topic: str, names: Sequence[str] = DESCRIBED_CONFIGS) -> dict[str, str]:
        return await asyncio.to_thread(self._configs, topic, names)

    def _metadata(self) -> Any:
        try:
            return self._admin.list_topics(timeout=self._timeout_s)
        except KafkaException as exc:
            raise ServiceUnavailableError(SERVICE, f"listing topics: {exc}") from exc

    def _topic_states(self, groups: Mapping[str, str]) -> dict[str, TopicState]:
        metadata = self._metadata()
        leaders = {
            TopicPartition(name, number): partition.leader
            for name in groups
            if name in metadata.topics
            for number, partition in metadata.topics[name].partitions.items()
        }
        if not leaders:
            return {}
        low = self._offsets(leaders, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        high = self._offsets(leaders, OffsetSpec.latest())  # type: ignore[no-untyped-call]
        committed: dict[tuple[str, int], int | None] = {}
        for group in set(groups.values()):
            mine = [tp for tp in leaders if groups[tp.topic] == group]
            committed.update(self._committed(group, mine))
        states: dict[str, TopicState] = {}
        for tp in sorted(leaders, key=lambda tp: (tp.topic, tp.partition)):
            key = (tp.topic, tp.partition)
            partition = PartitionState(
                tp.partition, leaders[tp], low[key], high[key], committed.get(key)
            )
            state = states.get(tp.topic) or TopicState(tp.topic, groups[tp.topic], ())
            states[tp.topic] = TopicState(state.name, state.group, (*state.partitions, partition))
        return states

    def _offsets(
        self, partitions: Iterable[TopicPartition], spec: Any
    ) -> dict[tuple[str, int], int]:
        """Retried while the broker answers with a retriable error: just after a topic is
        created its partitions answer NOT_LEADER_FOR_PARTITION until their leaders are elected."""
        request = {TopicPartition(tp.topic, tp.partition): spec for tp in partitions}
        deadline = time.monotonic() + self._timeout_s
        while True:
            futures = self._admin.list_offsets(request, request_timeout=self._timeout_s)
            try:
                return {
                    (tp.topic, tp.partition): int(future.result(timeout=self._timeout_s).offset)
                    for tp, future in futures.items()
                }
            except KafkaException as exc:
                if not is_passing(exc.args[0]) or time.monotonic() > deadline:
                    raise ServiceUnavailableError(SERVICE, f"listing offsets: {exc}") from exc
            except FutureTimeoutError as exc:
                raise ServiceUnavailableError(
                    SERVICE, f"listing offsets: no answer within {self._timeout_s:g} s"
                ) from exc
            time.sleep(RETRY_PAUSE_S)

    def _committed(
        self, group: str, partitions: list[TopicPartition]
    ) -> dict[tuple[str, int], int | None]:
        request = [ConsumerGroupTopicPartitions(group, partitions)]
        futures = self._admin.list_consumer_group_offsets(request, request_timeout=self._timeout_s)
        answer = self._result(futures[group], f"reading group {group}'s offsets")
        # A partition the group never committed comes back with a negative (invalid) offset.
        return {
            (tp.topic, tp.partition): tp.offset if tp.offset >= 0 else None
            for tp in answer.topic_partitions
        }

    def _configs(self, topic: str, names: Sequence[str]) -> dict[str, str]:
        resource = ConfigResource(ResourceType.TOPIC, topic)
        futures = self._admin.describe_configs([resource], request_timeout=self._timeout_s)
        entries = self._result(futures[resource], f"describing {topic}'s configs")
        return {name: str(entries[name].value) for name in names if name in entries}

    def _result(self, future: Future[T], doing: str) -> T:
        try:
            return future.result(timeout=self._timeout_s)
        except KafkaException as exc:
            raise ServiceUnavailableError(SERVICE, f"{doing}: {exc}") from exc
        except FutureTimeoutError as exc:
            raise ServiceUnavailableError(
                SERVICE, f"{doing}: no answer within {self._timeout_s:g} s"
            ) from exc
