"""Every topic the pipeline reads or writes, declared once.

Names are prefixed with `Settings.topic_prefix`, so that a test (or a tenant) can run the whole
pipeline on its own set of topics in a shared cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.settings import Settings

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    key: str
    partitions: int
    replication_factor: int
    cleanup_policy: str = "delete"
    retention_ms: int = 7 * DAY_MS

    @property
    def configs(self) -> dict[str, str]:
        return {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}


class TopicCatalog:
    """The topic names and layouts for one deployment (one `Settings`)."""

    def __init__(self, settings: Settings) -> None:
        self._prefix = settings.topic_prefix
        self._partitions = settings.kafka.partitions
        self._replication = settings.kafka.replication_factor

    def _spec(self, base: str, key: str, retention_ms: int = 7 * DAY_MS) -> TopicSpec:
        return TopicSpec(
            name=f"{self._prefix}{base}",
            key=key,
            partitions=self._partitions,
            replication_factor=self._replication,
            retention_ms=retention_ms,
        )

    @property
    def orders_events(self) -> TopicSpec:
        return self._spec("orders.events", key="order id")

    def dead_letters(self, source: TopicSpec) -> TopicSpec:
        return self._spec(
            f"{source.name.removeprefix(self._prefix)}.dlq",
            key=source.key,
            retention_ms=30 * DAY_MS,
        )

    def all(self) -> list[TopicSpec]:
        inputs = [self.orders_events]
        return inputs + [self.dead_letters(spec) for spec in inputs]
