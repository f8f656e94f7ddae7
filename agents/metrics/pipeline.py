"""Wiring of the metrics pipeline into a Faust app: two agents, two tables and a timer.

`collect_metrics` reads users/auth/orders events (every partition, shared by the workers of the
group) and reduces each batch to partials (`metrics_collector`), sent to the single-partition
`analytics.partials` topic. Delivery metrics come the same way from `track_deliveries`, which
hands each batch's new transitions to `MetricsPipeline.publish_transitions`.
`aggregate_metrics` (whichever worker owns that partition) folds them into the `metrics_panes`
table and publishes each closed window on `analytics.*` (`metrics_aggregation`,
`metrics_windows`). Both tables have changelogs, so
open windows, the watermark and what was already published survive restarts and rebalances.
The timer sends a tick through the same topic, so that windows of a quiet stream close too,
from inside the agent (the only place the tables may be written).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import AgentT, EventT, TableT

from agents.metrics.aggregation import MetricsAggregation
from agents.metrics.collector import INPUT_MODELS, MetricsCollector, transition_partials
from agents.metrics.windows import Aggregate, MetricsPartial, WindowAggregator, WindowConfig
from agents.retry import Backoff, retry_retriable
from agents.tracking.pipeline import INPUT_TOPICS as TRACKER_INPUTS
from agents.tracking.tracker import Transitions, TransitionsSink
from streams.errors import ServiceUnavailableError
from streams.kafka.catalog import TopicCatalog
from streams.kafka.wire import WireCodec, local_codec
from streams.runtime import (
    Batch,
    OutgoingRecord,
    TopicPublisher,
    batch_agent,
    batch_size,
    describe_event,
    event_scope,
    raw_topic,
    reading_progress,
)
from streams.settings import MetricsSettings, WorkerSettings

log = logging.getLogger(__name__)

COLLECT_AGENT = "collect_metrics"
AGGREGATE_AGENT = "aggregate_metrics"
PANES_TABLE = "metrics_panes"
CLOCK_TABLE = "metrics_clock"
# Base topic -> the family name the analytics records use.
INPUT_TOPICS = {
    "users.events": "users",
    "auth.events": "auth",
    "orders.events": "orders",
}


@dataclass(frozen=True, slots=True)
class MetricsPipeline:
    collector: MetricsCollector
    aggregation: MetricsAggregation[EventT[bytes]]
    panes: TableT[str, Aggregate]
    clock: TableT[str, dict[str, Any]]
    collect_agent: AgentT[Any]
    aggregate_agent: AgentT[Any]
    publish_transitions: TransitionsSink


def window_config(metrics: MetricsSettings) -> WindowConfig:
    return WindowConfig.of(
        tumbling_s=metrics.tumbling_s,
        hopping_s=metrics.hopping_s,
        step_s=metrics.hopping_step_s,
        grace_s=metrics.grace_s,
        idle_s=metrics.idle_s,
        max_future_s=metrics.max_future_s or None,
        stall_s=metrics.source_stall_s or None,
        # Three ticks: a report stands until two more of the same worker could have come; never
        # longer than the grace, or a dead worker's last report could let the watermark pass
        # events it left unread.
        report_ttl_s=min(3 * metrics.tick_s, metrics.grace_s),
    )


def register_metrics(
    app: faust.App,
    catalog: TopicCatalog,
    worker: WorkerSettings,
    metrics: MetricsSettings,
    *,
    codec: WireCodec | None = None,
    backoff: Backoff | None = None,
) -> MetricsPipeline:
    wire = codec or local_codec()
    retry = backoff or Backoff()
    config = window_config(metrics)
    families = {catalog.for_topic(base).name: family for base, family in INPUT_TOPICS.items()}
    inputs = raw_topic(app, *families)
    partials_topic = raw_topic(app, catalog.metrics_partials.name)
    partials_out = TopicPublisher(partials_topic)

    def decode(topic: str, raw: bytes | None) -> tuple[str, Any]:
        family = families[topic]
        return family, wire.decode(raw, INPUT_MODELS[family])

    collector = MetricsCollector(config, decode)
    # One partition, like `analytics.partials`: every window's panes in one place.
    panes: TableT[str, Aggregate] = app.Table(
        PANES_TABLE,
        partitions=1,
        key_type=str,
        help="Metrics of open windows per pane (epoch ms of the pane start): counters by section.",
    )
    clock: TableT[str, dict[str, Any]] = app.Table(
        CLOCK_TABLE,
        partitions=1,
        key_type=str,
        help="Metrics watermark: latest event time, windows closed up to, late drops, offsets.",
    )
    aggregation: MetricsAggregation[EventT[bytes]] = MetricsAggregation(
        aggregator=WindowAggregator(config, panes, clock),
        outputs={
            spec.name.removeprefix(catalog.prefix): TopicPublisher(raw_topic(app, spec.name))
            for spec in catalog.analytics()
            if spec.value_subject is not None
        },
        encode=wire.encode,
        describe=describe_event,
        scope=event_scope,
        backoff=retry,
    )

    async def send_partials(records: list[OutgoingRecord]) -> None:
        await retry_retriable(
            lambda: partials_out.send_all(records), backoff=retry, what="sending metrics partials"
        )

    async def collect_metrics(events: Batch) -> None:
        found = collector.partials([describe_event(e) for e in events], time.time())
        await send_partials([_partial_record(partial) for partial in found])

    size = batch_size(worker)
    collect_agent = batch_agent(app, inputs, COLLECT_AGENT, collect_metrics, size)
    aggregate_agent = batch_agent(app, partials_topic, AGGREGATE_AGENT, aggregation.process, size)

    # The partitions the workers report on: the collector's inputs and the tracker's, whose
    # transitions come as partials too. Reports on others would only grow the clock.
    watched = {*families, *(catalog.for_topic(base).name for base in TRACKER_INPUTS)}

    async def tick_metrics() -> None:
        caught_up = reading_progress(app, watched)
        tick = MetricsPartial(wall_s=time.time(), caught_up=caught_up)
        try:
            await partials_out.send_all([_partial_record(tick)])
        except ServiceUnavailableError as exc:  # the next tick will do; batches close too
            log.warning("metrics tick not sent: %s", exc)

    app.timer(interval=metrics.tick_s, name="tick_metrics")(tick_metrics)

    async def publish_transitions(transitions: Transitions) -> None:
        found = transition_partials(config, transitions, time.time())
        await partials_out.send_all([_partial_record(partial) for partial in found])

    return MetricsPipeline(
        collector,
        aggregation,
        panes,
        clock,
        collect_agent,
        aggregate_agent,
        publish_transitions,
    )


def _partial_record(partial: MetricsPartial) -> OutgoingRecord:
    return OutgoingRecord(key=None, value=partial.model_dump_json().encode())
