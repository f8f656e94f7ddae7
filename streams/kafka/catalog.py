"""Every topic the pipeline reads or writes, declared once.

Names are prefixed with the settings' `topic_prefix`, so that a test (or a tenant) can run the whole
pipeline on its own set of topics in a shared cluster. Code that starts from a contract of
`schemas.contracts` (which knows base names only) finds the deployment's topic with `for_topic`.

Every family topic is `delete`, not `compact`: its records are events (a `user.updated` carries
only what changed), so keeping just the latest record per key would lose state, not compress it.
The current state per entity lives in the agents' tables and in PostgreSQL instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from schemas.contracts import ANALYTICS_CONTRACTS, BY_TOPIC, TEMPLATES_CONTRACT
from streams.settings import KafkaSettings

DAY_MS = 24 * 3600 * 1000
DEAD_LETTER_SUFFIX = ".dlq"
# Long enough for an operator to notice, fix and re-drive after a holiday weekend.
DEAD_LETTER_RETENTION_MS = 30 * DAY_MS
# Closed windows are small and final: a month of them lets a consumer rebuild its dashboards.
ANALYTICS_RETENTION_MS = 30 * DAY_MS
ANALYTICS_KEY = "window kind:size_s:start:dimension"
# Notifications that failed to send go to delayed retry topics, then to one dead-letter topic.
NOTIFICATIONS_DISPATCH = "notifications.dispatch"
NOTIFICATIONS_DLQ = "notifications.dlq"
# The providers' circuit breakers: each worker's reports (compacted), the operators' commands.
NOTIFICATIONS_PROVIDERS = "notifications.providers"
NOTIFICATIONS_PROVIDER_COMMANDS = "notifications.provider-commands"


def notification_retry_base(delay_s: float) -> str:
    """`notifications.dispatch.retry-5s` (`-0.2s` for a fraction): the delay is in the name."""
    return f"{NOTIFICATIONS_DISPATCH}.retry-{delay_s:g}s"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    key: str
    partitions: int
    replication_factor: int
    cleanup_policy: str = "delete"
    retention_ms: int = 7 * DAY_MS
    # When a segment is closed even if not full (Kafka deletes or compacts only closed ones);
    # None: the broker's default (7 days).
    segment_ms: int | None = None
    # Schema Registry subject of the values (TopicNameStrategy on the base name); None for a
    # dead-letter topic, whose values are whatever bytes failed, kept as they came.
    value_subject: str | None = None

    @property
    def min_insync_replicas(self) -> int:
        """2 from a replication factor of 3: an acknowledged write (acks=all) then survives the
        loss of a broker, and one broker can be down without refusing writes."""
        return 2 if self.replication_factor >= 3 else 1

    @property
    def configs(self) -> dict[str, str]:
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            "min.insync.replicas": str(self.min_insync_replicas),
            # A replica that missed acknowledged writes never becomes leader (no silent loss).
            "unclean.leader.election.enable": "false",
        } | ({} if self.segment_ms is None else {"segment.ms": str(self.segment_ms)})


@dataclass(frozen=True, slots=True)
class _Family:
    base: str
    key: str
    retention_ms: int


# The family topics of issue 3, each with a dead-letter topic of its own.
_FAMILIES: tuple[_Family, ...] = (
    # Personal data: kept no longer than needed to rebuild state, so an erased user's events
    # (user.deleted) do not linger in Kafka for long after downstream state has dropped them.
    _Family("users.events", key="user id", retention_ms=14 * DAY_MS),
    _Family("auth.events", key="user id", retention_ms=7 * DAY_MS),
    _Family("orders.events", key="order id", retention_ms=7 * DAY_MS),
    _Family("notifications.requests", key="user id", retention_ms=7 * DAY_MS),
    _Family("notifications.dispatch", key="notification id", retention_ms=7 * DAY_MS),
    _Family("notifications.status", key="notification id", retention_ms=7 * DAY_MS),
    _Family("notifications.receipts", key="notification id", retention_ms=7 * DAY_MS),
    _Family("notifications.suppressions", key="user id", retention_ms=7 * DAY_MS),
)


class TopicCatalog:
    """The topic names and layouts for one deployment: its topic prefix, the partitions and
    replication of `kafka`, and the dispatch retry delays (`DispatchSettings.retry_delays_s`),
    which name the notification retry topics. A process that never touches those (the API) builds
    its catalog without them; asking it for them is then an error, not an empty list.
    """

    def __init__(
        self,
        prefix: str,
        kafka: KafkaSettings,
        retry_delays_s: Sequence[float] | None = None,
    ) -> None:
        self._prefix = prefix
        self._partitions = kafka.partitions
        self._replication = kafka.replication_factor
        self._retry_delays_s = None if retry_delays_s is None else tuple(retry_delays_s)
        self._families: Mapping[str, TopicSpec] = {
            family.base: self._spec(
                family.base,
                key=family.key,
                retention_ms=family.retention_ms,
                value_subject=BY_TOPIC[family.base].subject,
            )
            for family in _FAMILIES
        }

    def _spec(
        self, base: str, key: str, retention_ms: int, value_subject: str | None = None
    ) -> TopicSpec:
        return TopicSpec(
            name=f"{self._prefix}{base}",
            key=key,
            partitions=self._partitions,
            replication_factor=self._replication,
            retention_ms=retention_ms,
            value_subject=value_subject,
        )

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def partitions(self) -> int:
        """Of every topic but `metrics_partials`; a table fed by one is co-partitioned with it."""
        return self._partitions

    @property
    def replication_factor(self) -> int:
        return self._replication

    @property
    def orders_events(self) -> TopicSpec:
        return self._families["orders.events"]

    def for_topic(self, base: str) -> TopicSpec:
        """The spec of a family topic by its base name (`users.events`), as contracts name it."""
        try:
            return self._families[base]
        except KeyError:
            raise KeyError(f"no family topic {base!r} in the catalog") from None

    def families(self) -> list[TopicSpec]:
        """The family topics, without their dead letters."""
        return list(self._families.values())

    def dead_letters(self, source: TopicSpec) -> TopicSpec:
        return self._spec(
            f"{source.name.removeprefix(self._prefix)}{DEAD_LETTER_SUFFIX}",
            key=source.key,
            retention_ms=DEAD_LETTER_RETENTION_MS,
        )

    def analytics(self) -> list[TopicSpec]:
        """The metrics agent's outputs (closed windows, Avro) and its internal partials topic."""
        outputs = [
            self._spec(
                contract.topic,
                key=ANALYTICS_KEY,
                retention_ms=ANALYTICS_RETENTION_MS,
                value_subject=contract.subject,
            )
            for contract in ANALYTICS_CONTRACTS
        ]
        return [*outputs, self.metrics_partials]

    def analytics_output(self, base: str) -> TopicSpec:
        """An output topic by base name (`analytics.orders`)."""
        return next(spec for spec in self.analytics() if spec.name == f"{self._prefix}{base}")

    @property
    def metrics_partials(self) -> TopicSpec:
        """Per-batch partial aggregates (JSON) from every partition, folded by one consumer.

        ONE partition: a window's result needs the events of every input partition, so all the
        partials meet in one table partition (they are a few records per batch, not per event).
        """
        spec = self._spec("analytics.partials", key="none", retention_ms=7 * DAY_MS)
        return replace(spec, partitions=1)

    def notification_retries(self) -> list[TopicSpec]:
        """The delayed retry topics of `notifications.dispatch`, shortest delay first."""
        if self._retry_delays_s is None:
            raise LookupError("this catalog was built without the dispatch retry delays")
        subject = self._families[NOTIFICATIONS_DISPATCH].value_subject
        return [
            self._spec(
                notification_retry_base(delay_s),
                key="notification id",
                retention_ms=7 * DAY_MS,
                value_subject=subject,
            )
            for delay_s in self._retry_delays_s
        ]

    @property
    def notifications_dlq(self) -> TopicSpec:
        """Where notifications that can never be sent, or ran out of attempts, are set aside."""
        return self._spec(
            NOTIFICATIONS_DLQ, key="notification id", retention_ms=DEAD_LETTER_RETENTION_MS
        )

    @property
    def notifications_providers(self) -> TopicSpec:
        """Each worker's report of each provider's circuit breaker (`schemas.providers`, JSON),
        keyed `<provider>/<worker>` and compacted: the latest report of every pair stays, and the
        materializer writes it to PostgreSQL. One partition: a few records a second at most."""
        spec = self._spec(NOTIFICATIONS_PROVIDERS, key="provider/worker", retention_ms=7 * DAY_MS)
        return replace(spec, partitions=1, cleanup_policy="compact")

    @property
    def notifications_provider_commands(self) -> TopicSpec:
        """Operators' commands to the breakers (a reset), keyed by provider. Every worker reads
        every partition of it, outside the consumer group: a reset must reach each of them."""
        spec = self._spec(NOTIFICATIONS_PROVIDER_COMMANDS, key="provider", retention_ms=7 * DAY_MS)
        return replace(spec, partitions=1)

    @property
    def templates(self) -> TopicSpec:
        """`notifications.templates`: compacted, so the latest record of every template version
        is kept for good (the topic is the catalogue: read from the start, it is complete).

        One partition: the files' first versions go out as one record batch, which a reader
        sees whole or not at all, and a reader at the end has every version of a template (the
        API numbers a new one from the highest it read). Templates are few and small."""
        spec = self._spec(
            TEMPLATES_CONTRACT.topic,
            key="template name/version",
            retention_ms=-1,
            value_subject=TEMPLATES_CONTRACT.subject,
        )
        return replace(spec, cleanup_policy="compact", partitions=1)

    def all(self) -> list[TopicSpec]:
        inputs = self.families()
        notifications = [*self.notification_retries(), self.notifications_dlq, self.templates]
        notifications += [self.notifications_providers, self.notifications_provider_commands]
        dead_letters = [self.dead_letters(spec) for spec in inputs]
        return inputs + dead_letters + notifications + self.analytics()
