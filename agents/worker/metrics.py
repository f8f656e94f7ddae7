"""Prometheus metrics of one worker, served at `GET /metrics` on the worker's web server.

Faust's own `PrometheusMonitor` (faust.sensors.prometheus) supplies the generic series, under
the prefix `faust_`: messages received, producer sends, commits, rebalances, web requests. It
misses what operators of this pipeline ask first, so `TributaryMonitor` adds (prefix
`tributary_worker_`):

- events processed and processing latency per agent: our agents take batches and acknowledge
  them themselves (`streams.runtime.event_batches`), which Faust's runtime histogram never sees.
  Latency here is from the moment the agent took the first event of a batch to the batch's
  acknowledgement, the batch's wait for more events included: what a record waits for once
  its agent takes it.
- consumer lag per partition (end offset - committed offset), computed when scraped;
- table sizes per partition (keys in the partitions this worker actively owns), when scraped;
- dead letters and retries per agent: a `Counter` each, which agents increment through the
  `WorkerMetrics` they are given (`metrics.dead_letters.labels(agent=...).inc()`); agents that
  keep their own counters (`MaterializerStats`) register them with `track_stats` instead.

Every app gets its own `CollectorRegistry` (tests run several apps in one process).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, cast

import faust
from aiohttp import web
from faust.sensors.monitor import Monitor
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.types import TP, CollectionT, Message
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from agents.worker.batch_latency import BatchLatency
from agents.worker.table_sizes import local_partition_sizes
from streams.runtime import Sample, TributaryApp

log = logging.getLogger(__name__)

PREFIX = "tributary_worker"
FAUST_PREFIX = "faust"
# From 1 ms to a minute: a batch waits up to its window (0.2 s by default), PostgreSQL outages
# and retries stretch it to seconds.
LATENCY_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)


class AgentCounts(Protocol):
    """What `MaterializerStats` (and any agent's own stats) offers: running totals."""

    dead_letters: int
    retries: int


@dataclass
class WorkerMetrics:
    """The worker's own series; pass it to whatever counts dead letters and retries."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    events: Counter = field(init=False)
    skipped: Counter = field(init=False)
    latency: BatchLatency = field(init=False)
    dead_letters: Counter = field(init=False)
    retries: Counter = field(init=False)
    stall_recoveries: Counter = field(init=False)
    receipts_rejected: Counter = field(init=False)
    _stats: dict[str, AgentCounts] = field(init=False, default_factory=dict)
    _seen: dict[tuple[str, str], int] = field(init=False, default_factory=dict)
    _before_scrape: list[Callable[[], None]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.events = Counter(
            f"{PREFIX}_events",
            "Events an agent processed (acknowledged), by agent",
            ["agent"],
            registry=self.registry,
        )
        self.skipped = Counter(
            f"{PREFIX}_events_skipped",
            "Events taken for an agent and dropped unprocessed (those of an earlier consumer"
            " generation or taken while its flow is suspended; read again later), by agent",
            ["agent"],
            registry=self.registry,
        )
        self.latency = BatchLatency(
            f"{PREFIX}_event_latency_seconds",
            "From the agent taking a batch's first event to the batch's acknowledgement, by agent",
            "agent",
            LATENCY_BUCKETS_S,
            self.registry,
        )
        self.dead_letters = Counter(
            f"{PREFIX}_dead_letters",
            "Records an agent sent to a dead-letter topic, by agent",
            ["agent"],
            registry=self.registry,
        )
        self.retries = Counter(
            f"{PREFIX}_retries",
            "Retries of a failed step (or records sent to a retry topic), by agent",
            ["agent"],
            registry=self.registry,
        )
        self.receipts_rejected = Counter(
            f"{PREFIX}_receipts_rejected",
            "Provider receipts ignored because they name no send of their notification",
            ["agent"],
            registry=self.registry,
        )
        self.stall_recoveries = Counter(
            f"{PREFIX}_stall_recoveries",
            "Steps the stall watchdog took to get a stalled worker going (fetcher restart, rejoin)",
            registry=self.registry,
        )

    def watch_samples(self, latest: Callable[[], Sample | None]) -> None:
        """The stall watchdog's last look, as gauges: what it saw when a stall goes unseen."""
        for name, doc, read in (
            (
                "records_waiting",
                "Records on owned partitions past their committed offsets",
                "waiting",
            ),
            ("records_unacked", "Records handed to the agents, not acknowledged", "unacked"),
        ):
            gauge = Gauge(f"{PREFIX}_{name}", f"{doc} (stall watchdog)", registry=self.registry)
            gauge.set_function(partial(_sampled, latest, read))

    def track_stats(self, agent: str, stats: AgentCounts) -> None:
        """Report an agent's own running totals as its dead-letter and retry counts."""
        self._stats[agent] = stats
        self.dead_letters.labels(agent=agent)
        self.retries.labels(agent=agent)

    def sync_stats(self) -> None:
        """Bring the counters up to the tracked totals; called before every scrape."""
        for agent, stats in self._stats.items():
            for name, counter, total in (
                ("dead_letters", self.dead_letters, stats.dead_letters),
                ("retries", self.retries, stats.retries),
                # Only the delivery tracker keeps this one.
                (
                    "receipts_rejected",
                    self.receipts_rejected,
                    getattr(stats, "receipts_rejected", 0),
                ),
            ):
                delta = total - self._seen.get((agent, name), 0)
                if delta > 0:
                    counter.labels(agent=agent).inc(delta)
                    self._seen[(agent, name)] = total

    def before_scrape(self, bring_up_to_date: Callable[[], None]) -> None:
        """Have `bring_up_to_date` run before every scrape (series kept up lazily)."""
        self._before_scrape.append(bring_up_to_date)

    def exposition(self) -> bytes:
        self.sync_stats()
        for bring_up_to_date in self._before_scrape:
            bring_up_to_date()
        return generate_latest(self.registry)


def _sampled(latest: Callable[[], Sample | None], field_name: str) -> float:
    sample = latest()
    return float(getattr(sample, field_name)) if sample is not None else 0.0


class TributaryMonitor(PrometheusMonitor):
    """Faust's Prometheus monitor plus per-agent counts and latency (see the module doc)."""

    def __init__(self, faust_metrics: FaustMetrics, metrics: WorkerMetrics, **kwargs: Any) -> None:
        super().__init__(metrics=faust_metrics, **kwargs)
        self.worker_metrics = metrics
        self.faust_series = faust_metrics
        # The labelled children per agent: `labels()` hashes and locks on every call, which
        # costs more than the increment itself on a path taken once per event.
        self._per_agent: dict[str, Counter] = {}
        # Records received per partition since the last scrape: the `faust_` received series
        # are brought up to date when scraped (`series_up_to_date`), not with every record.
        self._received_since: dict[TP, int] = {}
        metrics.before_scrape(self.series_up_to_date)

    # Faust's own per-event bookkeeping (Monitor's and PrometheusMonitor's: the `faust_events*`
    # and `faust_table_operations` series) is not kept: our agents take their batches from the
    # queue rather than through Faust's stream (`streams.runtime.event_batches`), so its stream
    # callbacks are never made, and its table callbacks, made for every table read and write,
    # cost more than the work they measure (about 3 % of a worker's CPU at 400 notifications/s).
    # The agents' events and latency are `tributary_worker_events` and `_event_latency_seconds`,
    # counted once per batch (`BatchSensor`); messages received and sent, commits and rebalances
    # stay Faust's.

    def acknowledged(self, agent: str, events: int, held_s: float) -> None:
        self._agent_events(agent).inc(events)
        self.worker_metrics.latency.observe(agent, held_s, events)

    def skipped(self, agent: str, events: int) -> None:
        self.worker_metrics.skipped.labels(agent=agent).inc(events)
        log.warning(
            "%d events taken for %s were dropped unprocessed: the consumer moved on from them (an"
            " earlier consumer generation, or its flow suspended), so they are read again after"
            " the seek to committed offsets",
            events,
            agent,
        )

    def _agent_events(self, agent: str) -> Counter:
        events = self._per_agent.get(agent)
        if events is None:
            events = self._per_agent[agent] = self.worker_metrics.events.labels(agent=agent)
        return events

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        """Faust's bookkeeping for a received record; its `faust_` series are brought up to date
        when scraped (`series_up_to_date`): a counter's and a gauge's lock per record were about
        1 % of a worker's CPU at 400 notifications/s."""
        Monitor.on_message_in(self, tp, offset, message)
        self._received_since[tp] = self._received_since.get(tp, 0) + 1

    def track_tp_end_offset(self, tp: TP, offset: int) -> None:
        """The partition's end offset, for the lag and `faust_topic_partition_end_offset` (set
        when scraped); Faust reports it with every record it consumes."""
        self.tp_end_offsets[tp] = offset

    def series_up_to_date(self) -> None:
        """The `faust_` received and end-offset series as if updated with every record.

        Their labelled children are looked up at each scrape, not kept: Faust removes them when
        a rebalance starts and ends (and forgets the read offsets), and a kept child would be
        counted on after it left the series."""
        received, self._received_since = self._received_since, {}
        series = self.faust_series
        total = sum(received.values())
        series.messages_received.inc(total)
        series.active_messages.inc(total)
        for tp, records in received.items():
            series.messages_received_per_topics.labels(topic=tp.topic).inc(records)
            read = self.tp_read_offsets.get(tp)
            if read is not None:
                series.messages_received_per_topics_partition.labels(
                    topic=tp.topic, partition=tp.partition
                ).set(read)
        for tp, offset in self.tp_end_offsets.items():
            series.topic_partition_end_offset.labels(topic=tp.topic, partition=tp.partition).set(
                offset
            )

    def count_sent(self, topic: str, records: int) -> None:
        """A published batch (`TributaryApp.count_sent`): the `faust_` send series, per batch.

        Our publishers bypass Faust's `Topic.send`, whose per-record `on_send_initiated` fed
        these series; the counts stay the same, made once per batch."""
        self.messages_sent += records
        self.messages_sent_by_topic[topic] += records
        # Looked up for each batch: Faust removes the child at every rebalance.
        self.faust_series.topic_messages_sent.labels(topic=f"topic.{topic}").inc(records)
        self.faust_series.total_sent_messages.inc(records)

    def on_table_get(self, table: CollectionT, key: Any) -> None:
        return None

    def on_table_set(self, table: CollectionT, key: Any, value: Any) -> None:
        return None

    def on_table_del(self, table: CollectionT, key: Any) -> None:
        return None


def partition_lags(
    end_offsets: Mapping[TP, int], committed_offsets: Mapping[TP, int]
) -> dict[TP, int]:
    """Records not yet committed per partition; Faust commits the next offset to read."""
    return {
        tp: max(end - committed_offsets[tp], 0)
        for tp, end in end_offsets.items()
        if tp in committed_offsets
    }


class LiveCollector(Collector):
    """Gauges computed when scraped: consumer lag and table sizes per partition."""

    def __init__(self, app: faust.App, monitor: TributaryMonitor) -> None:
        self.app = app
        self.monitor = monitor

    def collect(self) -> Iterable[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            f"{PREFIX}_consumer_lag",
            "Records behind the end of the partition (end offset - committed offset)",
            labels=["topic", "partition"],
        )
        lags = partition_lags(self.monitor.tp_end_offsets, self.monitor.tp_committed_offsets)
        for tp, records in sorted(lags.items()):
            lag.add_metric([tp.topic, str(tp.partition)], records)
        sizes = GaugeMetricFamily(
            f"{PREFIX}_table_keys",
            "Keys in a table partition this worker actively owns",
            labels=["table", "partition"],
        )
        for table, partition, size in self._table_sizes():
            sizes.add_metric([table, str(partition)], size)
        yield lag
        yield sizes

    def _table_sizes(self) -> Iterator[tuple[str, int, int]]:
        actives = active_partitions(self.app)
        for table in self.app.tables.values():
            for partition, size in local_partition_sizes(table, actives).items():
                yield table.name, partition, size


def active_partitions(app: faust.App) -> set[TP]:
    """The table changelog partitions this worker owns (not standbys); empty before assignment."""
    assignor = app.assignor
    return set(assignor.assigned_actives())


def install_worker_metrics(app: faust.App, metrics: WorkerMetrics) -> TributaryMonitor:
    """Make `metrics` the app's monitor and serve it at `GET /metrics`; call before start."""
    monitor = TributaryMonitor(FaustMetrics.create(metrics.registry, FAUST_PREFIX), metrics)
    app.monitor = monitor
    if isinstance(app, TributaryApp):
        app.count_sent = monitor.count_sent
        app.batch_sensor = monitor
    metrics.registry.register(LiveCollector(app, monitor))

    @app.page("/metrics", name="metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            # Not `self.bytes`: aiohttp refuses a content type with a charset in that argument.
            response = web.Response(
                body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
            )
            return cast(Response, response)

    return monitor
