from __future__ import annotations

from streams.cli.cluster import PartitionState, TopicState
from streams.cli.topics import create_line, describe_line, group_for, list_line
from streams.kafka.catalog import TopicCatalog
from streams.kafka.topic_admin import TopicCheck
from streams.settings import DispatchSettings, KafkaSettings, WorkerSettings

WORKER = WorkerSettings(app_id="worker-1")
CATALOG = TopicCatalog("t1-", KafkaSettings(), DispatchSettings().retry_delays_s)


def test_lag_counts_from_the_committed_offset_or_from_the_oldest_retained_record() -> None:
    assert PartitionState(0, 1, low=0, high=10, committed=4).lag == 6
    assert PartitionState(0, 1, low=3, high=10, committed=None).lag == 7
    # Records the group never read were deleted by retention: they are no longer lag.
    assert PartitionState(0, 1, low=8, high=10, committed=2).lag == 2
    assert PartitionState(0, 1, low=0, high=10, committed=10).lag == 0


def test_family_topics_count_the_workers_lag_and_dead_letters_the_redrive_groups() -> None:
    assert group_for(CATALOG, WORKER, "t1-orders.events") == "worker-1"
    assert group_for(CATALOG, WORKER, "t1-orders.events.dlq") == "worker-1-dlq-redrive"


def _state() -> TopicState:
    partitions = (
        PartitionState(0, 1, low=0, high=5, committed=5),
        PartitionState(1, 1, low=0, high=7, committed=None),
    )
    return TopicState("t1-orders.events", "worker-1", partitions)


def test_a_listed_topic_sums_end_offsets_and_lag() -> None:
    spec = CATALOG.orders_events
    assert list_line(spec, "worker-1", _state()) == {
        "topic": "t1-orders.events",
        "partitions": CATALOG.partitions,
        "exists": True,
        "group": "worker-1",
        "partitions_found": 2,
        "end_offsets": 12,
        "lag": 7,
    }
    missing = list_line(spec, "worker-1", None)
    assert (missing["exists"], missing["end_offsets"], missing["lag"]) == (False, None, None)


def test_a_described_topic_lists_every_partition_and_its_configs() -> None:
    line = describe_line(_state(), {"cleanup.policy": "delete", "retention.ms": "1000"})
    assert line["configs"] == {"cleanup.policy": "delete", "retention.ms": "1000"}
    assert line["partitions"][1] == {
        "partition": 1,
        "leader": 1,
        "low": 0,
        "high": 7,
        "committed": None,
        "lag": 7,
    }


def test_create_reports_each_topic_as_created_existing_or_mismatched() -> None:
    orders, users = CATALOG.orders_events, CATALOG.for_topic("users.events")
    mismatches = [
        "t1-orders.events: has 2 partitions, catalog says 6",
        "t1-orders.events.dlq: has retention.ms=1, catalog says 2592000000",
        "t1-orders.events: has cleanup.policy=compact, catalog says delete",
    ]
    check = TopicCheck(created=("t1-users.events.dlq",), mismatches=tuple(mismatches))
    line = create_line(orders, check)
    assert line["status"] == "mismatch"
    assert line["differences"] == [mismatches[0], mismatches[2]]
    assert create_line(users, check)["status"] == "exists"
    assert create_line(CATALOG.dead_letters(users), check)["status"] == "created"
