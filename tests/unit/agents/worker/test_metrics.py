"""The worker's Prometheus series, without Kafka: a Faust app that is built but never started."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust
import pytest
from faust.types import TP
from faust.types.tuples import Message
from prometheus_client.parser import text_string_to_metric_families

from agents.orders.materializer import MaterializerStats
from agents.worker.metrics import (
    TributaryMonitor,
    WorkerMetrics,
    install_worker_metrics,
    partition_lags,
)
from streams.runtime import Sample, create_faust_app
from streams.settings import WorkerProcessSettings

ORDERS = TP("orders.events", 0)


def samples(metrics: WorkerMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@pytest.fixture
def app() -> faust.App:
    return faust.App("unit", broker="kafka://127.0.0.1:1", store="memory://", autodiscover=False)


def test_lag_is_end_minus_committed_and_only_where_both_are_known() -> None:
    other = TP("orders.events", 1)
    unknown = TP("orders.events", 2)
    lags = partition_lags({ORDERS: 10, other: 5, unknown: 7}, {ORDERS: 4, other: 6})
    assert lags == {ORDERS: 6, other: 0}


def test_tracked_stats_become_dead_letter_and_retry_counters_once_each() -> None:
    metrics = WorkerMetrics()
    stats = MaterializerStats()
    metrics.track_stats("materialize_orders", stats)
    labels = (("agent", "materialize_orders"),)
    assert samples(metrics, "tributary_worker_dead_letters_total") == {labels: 0}

    stats.dead_letters, stats.retries = 2, 3
    assert samples(metrics, "tributary_worker_dead_letters_total") == {labels: 2}
    stats.dead_letters = 5
    assert samples(metrics, "tributary_worker_dead_letters_total") == {labels: 5}
    assert samples(metrics, "tributary_worker_retries_total") == {labels: 3}


def test_agents_without_stats_increment_the_counters_they_are_given() -> None:
    metrics = WorkerMetrics()
    metrics.dead_letters.labels(agent="dispatch_notifications").inc()
    metrics.retries.labels(agent="dispatch_notifications").inc(4)
    assert samples(metrics, "tributary_worker_retries_total") == {
        (("agent", "dispatch_notifications"),): 4
    }


def test_registries_are_per_worker_not_global() -> None:
    first, second = WorkerMetrics(), WorkerMetrics()
    first.dead_letters.labels(agent="a").inc()
    assert samples(second, "tributary_worker_dead_letters_total") == {}


async def test_the_monitor_counts_a_batchs_events_per_agent_when_it_is_acknowledged(
    app: faust.App,
) -> None:
    metrics = WorkerMetrics()
    monitor = install_worker_metrics(app, metrics)
    assert isinstance(app.monitor, TributaryMonitor)
    labels = (("agent", "materialize_orders"),)
    assert samples(metrics, "tributary_worker_events_total") == {}

    monitor.acknowledged("materialize_orders", 3, 0.3)
    assert samples(metrics, "tributary_worker_events_total") == {labels: 3}
    # Each event waited as long as its batch was held.
    assert samples(metrics, "tributary_worker_event_latency_seconds_count") == {labels: 3}
    assert samples(metrics, "tributary_worker_event_latency_seconds_sum") == {
        labels: pytest.approx(0.9)
    }
    assert samples(metrics, "tributary_worker_events_skipped_total") == {}

    monitor.skipped("materialize_orders", 2)
    assert samples(metrics, "tributary_worker_events_skipped_total") == {labels: 2}
    assert samples(metrics, "tributary_worker_events_total") == {labels: 3}


def test_installed_metrics_hear_of_the_apps_batches() -> None:
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"web_port": 6132}}))
    monitor = install_worker_metrics(app, WorkerMetrics())
    assert app.batch_sensor is monitor


async def test_the_exposition_has_faust_series_and_live_table_and_lag_gauges(
    app: faust.App,
) -> None:
    metrics = WorkerMetrics()
    monitor = install_worker_metrics(app, metrics)
    monitor.track_tp_end_offset(ORDERS, 12)
    monitor.on_tp_commit({ORDERS: 9})
    names = {
        family.name for family in text_string_to_metric_families(metrics.exposition().decode())
    }
    assert {"faust_messages_received", "tributary_worker_table_keys"} <= names
    assert samples(metrics, "tributary_worker_consumer_lag") == {
        (("partition", "0"), ("topic", "orders.events")): 3
    }


def test_the_stall_watchdogs_last_look_is_exported() -> None:
    metrics = WorkerMetrics()
    seen: list[Sample | None] = [None]
    metrics.watch_samples(lambda: seen[0])
    assert "tributary_worker_records_waiting 0.0" in metrics.exposition().decode()
    seen[0] = Sample(at_s=1.0, received=5, waiting=7, busy=True, rebalancing=False, unacked=3)
    text = metrics.exposition().decode()
    assert "tributary_worker_records_waiting 7.0" in text
    assert "tributary_worker_records_unacked 3.0" in text


async def test_fausts_per_event_and_table_series_are_not_kept(app: faust.App) -> None:
    """Called for every event and every table read and write, they cost more than the work
    they measure; the agents' own series count what was processed."""
    metrics = WorkerMetrics()
    monitor = install_worker_metrics(app, metrics)
    table: Any = app.Table("orders")
    monitor.on_table_get(table, b"o-1")
    monitor.on_table_set(table, b"o-1", {})
    monitor.on_table_del(table, b"o-1")
    monitor.acknowledged("materialize_orders", 1, 0.01)
    assert samples(metrics, "faust_table_operations_total") == {}
    assert samples(metrics, "faust_total_events_total") == {(): 0.0}
    assert samples(metrics, "faust_total_events_per_stream_total") == {}
    assert samples(metrics, "tributary_worker_events_total") == {
        (("agent", "materialize_orders"),): 1
    }


def test_a_published_batch_counts_each_of_its_records_as_sent() -> None:
    """Publishers bypass Faust's per-record send sensors; the app's `count_sent` hook, which
    the metrics install, keeps the `faust_` send series counting records."""
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"web_port": 6131}}))
    metrics = WorkerMetrics()
    install_worker_metrics(app, metrics)
    app.count_sent("p-notifications.status", 3)
    app.count_sent("p-notifications.status", 2)
    app.count_sent("p-notifications.dispatch", 1)
    assert samples(metrics, "faust_topic_messages_sent_total") == {
        (("topic", "topic.p-notifications.status"),): 5,
        (("topic", "topic.p-notifications.dispatch"),): 1,
    }
    assert samples(metrics, "faust_total_sent_messages_total") == {(): 6}


def test_received_records_count_per_topic_and_keep_the_last_offset_per_partition(
    app: faust.App,
) -> None:
    metrics = WorkerMetrics()
    monitor = install_worker_metrics(app, metrics)
    for offset in (7, 8):
        message = Message(ORDERS.topic, ORDERS.partition, offset, 0.0, 0, None, b"k", b"v", None)
        monitor.on_message_in(ORDERS, offset, message)
    other = TP("users.events", 3)
    monitor.on_message_in(other, 2, Message(other.topic, 3, 2, 0.0, 0, None, b"k", b"v", None))
    assert samples(metrics, "faust_messages_received_per_topic_total") == {
        (("topic", "orders.events"),): 2,
        (("topic", "users.events"),): 1,
    }
    assert samples(metrics, "faust_messages_received_per_topics_partition") == {
        (("partition", "0"), ("topic", "orders.events")): 8,
        (("partition", "3"), ("topic", "users.events")): 2,
    }
    assert samples(metrics, "faust_messages_received_total") == {(): 3}
    assert monitor.messages_received_by_topic[ORDERS.topic] == 2


def test_end_offsets_are_kept_per_partition_for_the_lag_and_the_gauge(app: faust.App) -> None:
    metrics = WorkerMetrics()
    monitor = install_worker_metrics(app, metrics)
    other = TP("users.events", 3)
    for tp, end in ((ORDERS, 9), (ORDERS, 12), (other, 4)):
        monitor.track_tp_end_offset(tp, end)
    assert samples(metrics, "faust_topic_partition_end_offset") == {
        (("partition", "0"), ("topic", "orders.events")): 12,
        (("partition", "3"), ("topic", "users.events")): 4,
    }
    assert monitor.tp_end_offsets == {ORDERS: 12, other: 4}


def test_the_trackers_rejected_receipts_are_a_counter() -> None:
    @dataclass
    class TrackerLike:
        dead_letters: int = 0
        retries: int = 0
        receipts_rejected: int = 0

    metrics = WorkerMetrics()
    stats = TrackerLike()
    metrics.track_stats("track_deliveries", stats)
    stats.receipts_rejected = 2
    metrics.sync_stats()
    stats.receipts_rejected = 3
    assert samples(metrics, "tributary_worker_receipts_rejected_total") == {
        (("agent", "track_deliveries"),): 3
    }


def receive(monitor: TributaryMonitor, offset: int) -> None:
    """A record of `ORDERS` at `offset`, as Faust's consumer reports it to the monitor."""
    message = Message(ORDERS.topic, ORDERS.partition, offset, 0.0, 0, None, b"k", b"v", None)
    monitor.on_message_in(ORDERS, offset, message)


def test_records_received_between_scrapes_are_counted_once_each(app: faust.App) -> None:
    """The received series are brought up to date when scraped, not with every record: a scrape
    adds what came in since the last one, and the active-message gauge follows."""
    metrics = WorkerMetrics()
    monitor = install_worker_metrics(app, metrics)

    receive(monitor, 1)
    receive(monitor, 2)
    assert samples(metrics, "faust_messages_received_total") == {(): 2}
    assert samples(metrics, "faust_messages_received_total") == {(): 2}
    receive(monitor, 3)
    monitor.track_tp_end_offset(ORDERS, 10)
    assert samples(metrics, "faust_messages_received_total") == {(): 3}
    assert samples(metrics, "faust_messages_received_per_topic_total") == {
        (("topic", "orders.events"),): 3
    }
    assert samples(metrics, "faust_messages_received_per_topics_partition") == {
        (("partition", "0"), ("topic", "orders.events")): 3
    }
    assert samples(metrics, "faust_active_messages") == {(): 3}
    assert samples(metrics, "faust_topic_partition_end_offset") == {
        (("partition", "0"), ("topic", "orders.events")): 10
    }


def test_the_series_faust_clears_at_a_rebalance_are_counted_again_after_it(app: faust.App) -> None:
    """Faust removes the per-topic and per-partition series when a rebalance starts and ends,
    and forgets the read offsets: records received before it are still counted, the scrape
    does not fail, and what is counted after it is in the series again."""
    metrics = WorkerMetrics()
    monitor = install_worker_metrics(app, metrics)

    receive(monitor, 1)
    monitor.count_sent("p-notifications.status", 2)
    monitor.track_tp_end_offset(ORDERS, 5)
    assert samples(metrics, "faust_messages_received_total") == {(): 1}
    receive(monitor, 2)
    monitor.on_rebalance_start(app)
    assert samples(metrics, "faust_messages_received_total") == {(): 2}
    monitor.on_rebalance_end(app, monitor.on_rebalance_start(app))

    receive(monitor, 3)
    monitor.count_sent("p-notifications.status", 4)
    monitor.track_tp_end_offset(ORDERS, 9)
    assert samples(metrics, "faust_messages_received_per_topics_partition") == {
        (("partition", "0"), ("topic", "orders.events")): 3
    }
    assert samples(metrics, "faust_messages_received_per_topic_total") == {
        (("topic", "orders.events"),): 1
    }
    assert samples(metrics, "faust_topic_messages_sent_total") == {
        (("topic", "topic.p-notifications.status"),): 4
    }
    assert samples(metrics, "faust_topic_partition_end_offset") == {
        (("partition", "0"), ("topic", "orders.events")): 9
    }
    assert samples(metrics, "faust_messages_received_total") == {(): 3}
