"""The Faust application factory: one app per process, with the runtime's guards installed.

The guards (`UnskippableEvent`, `DurableTable`, the fetch and commit guards) are what make
`streams.runtime.checkpoint`'s commit order hold on faust-streaming 0.15. There is no
module-level app: each process (and each test) builds its own from its settings, which is also
what gives a test its own consumer group.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import faust
import uvloop
from faust.types import TP, AppT, ConsumerT, ProducerT
from faust.types.auth import CredentialsT

from streams.kafka.catalog import DAY_MS, TopicSpec
from streams.kafka.client_security import ssl_context
from streams.kafka.partitioner import KeyPartitioner
from streams.runtime.changelog_writes import ChangelogWrites, send_changes
from streams.runtime.commit_guard import HeldCommits, guard_commits
from streams.runtime.direct_delivery import direct_delivery
from streams.runtime.drain_loop import guard_draining
from streams.runtime.durable_table import DurableTable
from streams.runtime.fetch_positions import FetchPositions, guard_fetching
from streams.runtime.loop_consumer import LoopConsumer
from streams.runtime.partition_batches import app_producer
from streams.runtime.producer_ebb import lean_ebb
from streams.runtime.transactions import convert_offsets_for_aiokafka, exactly_once
from streams.settings import FaustAppConfig, KafkaSettings

log = logging.getLogger(__name__)

# Per partition and produce request; a 500-event batch of ~300-byte records fits in one.
PRODUCER_BATCH_BYTES = 256 * 1024


def broker_urls(bootstrap: str) -> list[str]:
    """`host1:9092,host2:9092` -> one `kafka://` URL per host, the form Faust accepts."""
    hosts = [host.strip() for host in bootstrap.split(",") if host.strip()]
    if not hosts:
        raise ValueError("kafka.bootstrap names no host")
    return [f"kafka://{host}" for host in hosts]


def broker_credentials(kafka: KafkaSettings) -> CredentialsT | None:
    """The Kafka settings' security as Faust's credentials (its consumer and producer)."""
    context = ssl_context(kafka)
    if kafka.security_protocol.startswith("SASL"):
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=password,
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def free_port(host: str) -> int:
    """A port the OS considers free right now; Faust cannot bind port 0 and report it back."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def worker_event_loop() -> asyncio.AbstractEventLoop:
    """The loop a worker runs on: uvloop's (libuv) rather than asyncio's own.

    A worker spends a large share of its CPU in the loop itself (scheduling callbacks, futures,
    socket reads and writes for Kafka, PostgreSQL and the providers), which uvloop does in C.
    Faust supports it (`faust[uvloop]`) and it is a drop-in `asyncio` loop. The policy is set
    too: Faust's consumer runs in a thread with a loop of its own, made by
    `asyncio.new_event_loop()`, and it fetches every record the worker consumes.
    """
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return asyncio.new_event_loop()


class UnskippableEvent(faust.Event):
    """An event that will not be acknowledged once the consumer has moved on from it.

    Faust's stream acknowledges, unprocessed, an event that reaches it from an earlier consumer
    generation or while the app's flow is suspended (a rebalance or a stop under way), so that
    lag does not grow; it counts on the seek to committed offsets after the rebalance to read it
    again. But an acknowledged offset goes out with the next commit, which can come first, and
    the event is then never processed: a survivor of the two-worker test was seen committed to
    the end of its partitions with orders it never applied. Refused, the offset stays
    uncommitted and the event is read and processed again after the seek (or by the next
    owner). An agent's own acknowledgement of an event it processed across a rebalance is
    refused the same way: it is processed twice (at-least-once, which every agent's idempotent
    state allows), never lost.
    """

    def ack(self) -> bool:
        if consumer_moved_on(self.app, self.message):
            return False
        return super().ack()


def consumer_moved_on(app: AppT, message: Any) -> bool:
    """Whether the consumer moved on from `message`: fetched in an earlier consumer generation,
    or the app's flow is suspended (a rebalance or a stop under way). Such a record is read again
    after the seek to committed offsets, so it is neither processed nor acknowledged here."""
    return bool(
        message.generation_id != app.consumer_generation_id or not app.flow_control.is_active()
    )


def _count_nothing(topic: str, records: int) -> None:
    return None


class BatchSensor(Protocol):
    """What the metrics hear of agents' batches (`streams.runtime.event_batches`): once per
    batch, where Faust's sensors hear of every event as it enters and leaves a stream."""

    def skipped(self, agent: str, events: int) -> None:
        """`events` taken for `agent` were dropped unprocessed: the consumer moved on from them
        (a rebalance), so they are read again after the seek to committed offsets."""

    def acknowledged(self, agent: str, events: int, held_s: float) -> None:
        """`agent` processed and acknowledged a batch of `events`, `held_s` after taking its
        first event (the batch's wait for more events included)."""


class _NoBatchSensor:
    def skipped(self, agent: str, events: int) -> None:
        return None

    def acknowledged(self, agent: str, events: int, held_s: float) -> None:
        return None


class TributaryApp(faust.App):
    """A Faust app with the state our guards around Faust need.

    - `batches_in_flight`: Faust counts records handed to agents and not acknowledged, but with
      batching that includes records merely gathered for the next batch; only a batch in an
      agent's hands (waiting on PostgreSQL, a provider, a retry's delay) means the worker is
      busy rather than stalled;
    - `changelog_writes`: table changes not yet in Kafka (`streams.runtime.changelog_writes`);
    - `held_commits`: partitions whose commit waits behind an unacknowledged record
      (`streams.runtime.commit_guard`);
    - `fetch_positions`: what the consumer really fetched from each source partition
      (`streams.runtime.fetch_positions`); both guards are installed on the consumer by
      `_new_consumer`;
    - `count_sent(topic, records)`: called once per published batch (`TopicPublisher`, which
      bypasses Faust's per-record send sensors); the worker's metrics count through it;
    - `batch_sensor`: told of every batch an agent takes and acknowledges (`BatchSensor`).
    """

    def __init__(self, *args: Any, changelog_flush_interval_s: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches_in_flight = 0
        self.changelog_writes = ChangelogWrites(
            partial(send_changes, lambda: app_producer(self), self._count_sent),
            flush_interval_s=changelog_flush_interval_s,
            on_failure=self._changelog_write_failed,
        )
        self.held_commits = HeldCommits()
        self.fetch_positions = FetchPositions()
        self.count_sent: Callable[[str, int], None] = _count_nothing
        self.batch_sensor: BatchSensor = _NoBatchSensor()
        self._event_type: Any = None
        self._changelog_crash: asyncio.Future[None] | None = None

    def create_event(self, key: Any, value: Any, headers: Any, message: Any) -> Any:
        """Faust looks its `Event` class up in the settings for every record consumed (0.8 % of
        a worker's py-spy samples); here it is looked up once."""
        event_type = self._event_type
        if event_type is None:
            event_type = self._event_type = self.conf.Event
        return event_type(self, key, value, headers, message)

    def _changelog_write_failed(self, failure: BaseException) -> None:
        """A table change may be missing from its changelog: stop the worker rather than go on
        with nothing acknowledged (the next owner reads the batches again)."""
        self._changelog_crash = asyncio.ensure_future(self.crash(failure))

    async def _on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Before Faust revokes anything, write the changes held for the flush interval.

        Until this worker rejoins the group nobody else owns its partitions, so these writes
        land before a next owner reads the changelogs; held past the rejoin, they could land
        after that owner's own newer writes of the same keys. Their batches' acknowledgements
        are refused (the flow is suspended by now): the next owner reads them again.
        """
        if not self.should_stop:
            try:
                await self.changelog_writes.written()
            except Exception as exc:  # noqa: BLE001 - Faust's own revocation crashes the same way
                await self.crash(exc)
                return
        await super()._on_partitions_revoked(revoked)

    def _on_rebalance_when_stopped(self) -> None:
        """A rebalance that reaches a stopping worker changes nothing here, and leaves the
        consumer to the stop.

        Faust closed the consumer's client and coordinator from inside the rebalance: the
        coordinator's next request (the rejoin) failed on the closed connection and marked it
        dead, so the stop's commit then retried forever against no coordinator (a worker hung
        in `Stopping...` until killed), and its `LeaveGroup` failed, so the group waited a whole
        session timeout for the member that was gone. Left alone, the rebalance completes
        (the assignment is ignored, as the revocation was) and the stop commits and leaves the
        group as it does outside a rebalance.
        """

    async def _stop_consumer(self) -> None:
        """A stopping worker writes the changes it holds while its producer still runs, and
        holds none back from here on (`ChangelogWrites.stop`)."""
        writes = self.changelog_writes
        writes.stop()
        try:
            await writes.written()
        except Exception as exc:  # noqa: BLE001 - stopping anyway: their batches stay unacknowledged
            log.warning("stopping with table changes not in their changelogs: %r", exc)
        await super()._stop_consumer()

    def _count_sent(self, topic: str, records: int) -> None:
        self.count_sent(topic, records)  # looked up at each call: the metrics replace it

    def _new_producer(self) -> ProducerT:
        producer = super()._new_producer()
        lean_ebb(producer.buffer)  # awaited before every record's delivery (`producer_ebb`)
        if exactly_once(self):
            convert_offsets_for_aiokafka(producer)
        return producer

    def _new_consumer(self) -> ConsumerT:
        """Faust's consumer on the worker's loop (`loop_consumer`), its fetching and commits
        guarded, its drain loop and its callback (`direct_delivery`) lighter."""
        consumer = LoopConsumer(
            self.transport,
            callback=direct_delivery(self.topics),
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
            loop=self.loop,
        )
        guard_fetching(consumer, self.fetch_positions, self._is_source)
        guard_commits(consumer, self.held_commits, self.fetch_positions)
        guard_draining(consumer)
        return consumer

    def _is_source(self, tp: TP) -> bool:
        """A partition agents consume and acknowledge (not a table's changelog)."""
        return bool(self.topics.acks_enabled_for(tp.topic))


def create_faust_app(settings: FaustAppConfig) -> TributaryApp:
    worker = settings.worker
    web_port = worker.web_port or free_port(worker.web_host)
    return TributaryApp(
        worker.app_id,
        broker=broker_urls(settings.kafka.bootstrap),
        broker_credentials=broker_credentials(settings.kafka),
        broker_client_id=settings.kafka.client_id,
        store=worker.store,
        # One directory per app id: two workers of different apps never share RocksDB files.
        datadir=str(Path(worker.data_dir) / worker.app_id),
        web_bind=worker.web_host,
        web_host=worker.web_host,
        web_port=web_port,
        # Other workers reach this one through this URL when a table request is routed here.
        canonical_url=worker.advertised_url or f"http://{worker.web_host}:{web_port}",
        # Our own `/tables/...` views replace the generic ones, which expose every table raw.
        web_tables_enabled=False,
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        # No `on_leader` tasks, so the leader topic would only be one more topic to create.
        topic_disable_leader=True,
        autodiscover=False,
        # Stopping or rebalancing must not wait for the batch in hand: while PostgreSQL is away
        # it never finishes. Unfinished batches are not acknowledged, so whoever owns the
        # partitions next processes them again, which the idempotent fold and upsert allow.
        stream_wait_empty=False,
        # Every agent awaits its sends batch by batch, so a few milliseconds of linger cost no
        # throughput and gather a batch's records into one produce request per partition
        # instead of a request per record (Faust's default is no linger): fewer socket writes
        # in the worker and far less broker CPU, which shares the machine's two cores.
        producer_linger=settings.kafka.linger_ms / 1000,
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        # A record Kafka will not take fails after this (Faust waits 20 minutes by default),
        # so agents retry with backoff and a stopping worker is not held by its flush.
        producer_request_timeout=worker.send_timeout_s,
        # Kafka's rule (murmur2 of the key) as aiokafka's default computes it, in less CPU.
        producer_partitioner=KeyPartitioner(),
        table_standby_replicas=worker.standby_replicas,
        processing_guarantee=worker.processing_guarantee,
        Event=UnskippableEvent,
        Table=DurableTable,
        changelog_flush_interval_s=worker.changelog_flush_interval_s,
    )


def changelog_specs(app: faust.App, kafka: KafkaSettings) -> list[TopicSpec]:
    """The changelog topics of the app's tables, to create before the worker starts.

    Faust creates them itself while it starts, a moment before its consumer joins the group;
    the consumer's metadata can then still show the new topic without partitions, and the first
    table write fails Faust's co-partitioning check ("changelog topic has 0 partitions").
    Created beforehand, they are settled by the time the consumer looks.
    """
    return [
        TopicSpec(
            name=table.changelog_topic.get_topic_name(),
            key=f"{table.name} table key",
            partitions=table.partitions or kafka.partitions,
            replication_factor=kafka.replication_factor,
            **_changelog_cleanup(getattr(table, "retention_s", None)),
        )
        for table in app.tables.values()
    ]


def _changelog_cleanup(retention_s: int | None) -> dict[str, Any]:
    """Compacted, and with a retention deleted by time too: Kafka deletes whole closed segments
    whose newest record is older than `retention.ms`, so a segment is closed at least daily
    (as often as the retention when it is shorter): a key unchanged for the retention is gone
    within a day (and Kafka's retention check) after."""
    if retention_s is None:
        return {"cleanup_policy": "compact", "retention_ms": -1}
    retention_ms = retention_s * 1000
    return {
        "cleanup_policy": "compact,delete",
        "retention_ms": retention_ms,
        "segment_ms": min(retention_ms, DAY_MS),
    }
