"""Creating and checking the catalog's topics on the real broker."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # type: ignore[attr-defined]

from streams.kafka.catalog import TopicSpec
from streams.kafka.topic_admin import (
    TopicCheck,
    align_topic_configs_blocking,
    check_topics_blocking,
    delete_topics_blocking,
    ensure_topics_blocking,
)
from streams.settings import Settings
from tests.integration.kafka_io import topic_catalog


def _fresh(settings: Settings) -> Settings:
    return settings.model_copy(update={"topic_prefix": f"adm{uuid.uuid4().hex[:8]}-"})


def _described(admin: AdminClient, name: str, deadline_s: float = 15.0) -> Any:
    """The topic's metadata once this client sees it: a new topic reaches the metadata of
    other clients a moment after its creation is acknowledged."""
    deadline = time.monotonic() + deadline_s
    while (topic := admin.list_topics(timeout=10).topics.get(name)) is None:
        assert time.monotonic() < deadline, f"{name} never appeared in the metadata"
        time.sleep(0.1)
    return topic


def test_missing_topics_are_created_with_the_catalog_layout(settings: Settings) -> None:
    fresh = _fresh(settings)
    try:
        specs = topic_catalog(fresh).all()
        first = ensure_topics_blocking(fresh.kafka, specs)
        assert first.created == tuple(spec.name for spec in specs)
        assert first.mismatches == ()
        spec = topic_catalog(fresh).orders_events
        admin = AdminClient({"bootstrap.servers": fresh.kafka.bootstrap})
        topic = _described(admin, spec.name)
        assert len(topic.partitions) == spec.partitions
        resource = ConfigResource("topic", spec.name)
        configs = admin.describe_configs([resource])[resource].result(timeout=10)
        assert configs["retention.ms"].value == str(spec.retention_ms)
        assert ensure_topics_blocking(fresh.kafka, specs) == TopicCheck(created=(), mismatches=())
    finally:
        delete_topics_blocking(fresh.kafka, [fresh.topic_prefix])


def test_an_existing_topic_that_differs_is_reported(settings: Settings) -> None:
    fresh = _fresh(settings)
    spec = topic_catalog(fresh).orders_events
    admin = AdminClient({"bootstrap.servers": fresh.kafka.bootstrap})
    odd = NewTopic(
        spec.name, num_partitions=2, replication_factor=1, config={"retention.ms": "60000"}
    )
    admin.create_topics([odd])[spec.name].result(timeout=10)
    try:
        check = ensure_topics_blocking(fresh.kafka, [spec])
        assert check.created == ()
        mismatches = check.mismatches
        assert len(mismatches) == 2, mismatches
        assert any("partitions" in m and "2" in m for m in mismatches)
        assert any("retention.ms" in m and "60000" in m for m in mismatches)
    finally:
        delete_topics_blocking(fresh.kafka, [fresh.topic_prefix])


def test_topics_are_created_durable_and_a_weaker_one_is_reported(settings: Settings) -> None:
    """min.insync.replicas (2 from a replication factor of 3) and no unclean leader election."""
    fresh = _fresh(settings)
    spec = topic_catalog(fresh).orders_events
    admin = AdminClient({"bootstrap.servers": fresh.kafka.bootstrap})
    try:
        ensure_topics_blocking(fresh.kafka, [spec])
        _described(admin, spec.name)
        resource = ConfigResource("topic", spec.name)
        configs = admin.describe_configs([resource])[resource].result(timeout=10)
        assert configs["unclean.leader.election.enable"].value == "false"
        assert configs["min.insync.replicas"].value == "1"  # the local broker: a factor of 1
        weak = topic_catalog(fresh).for_topic("users.events")
        odd = NewTopic(
            weak.name,
            num_partitions=weak.partitions,
            replication_factor=1,
            config=weak.configs | {"unclean.leader.election.enable": "true"},
        )
        admin.create_topics([odd])[weak.name].result(timeout=10)
        _described(admin, weak.name)
        mismatches = check_topics_blocking(fresh.kafka, [spec, weak])
        assert mismatches == [
            f"{weak.name}: has unclean.leader.election.enable=true, catalog says false"
        ]
    finally:
        delete_topics_blocking(fresh.kafka, [fresh.topic_prefix])


def test_aligning_sets_the_configs_an_existing_topic_has_otherwise(settings: Settings) -> None:
    """A worker's changelog made compacted only (an earlier version, retention off) gets the
    retention its table now has; one without the topic is left to `ensure_topics`."""
    fresh = _fresh(settings)
    name = f"{fresh.topic_prefix}app-sends-changelog"
    compacted = TopicSpec(name, "sends table key", 2, 1, cleanup_policy="compact", retention_ms=-1)
    expiring = TopicSpec(
        name,
        "sends table key",
        2,
        1,
        cleanup_policy="compact,delete",
        retention_ms=14 * 24 * 3600 * 1000,
        segment_ms=24 * 3600 * 1000,
    )
    missing = TopicSpec(f"{fresh.topic_prefix}app-other-changelog", "key", 2, 1)
    admin = AdminClient({"bootstrap.servers": fresh.kafka.bootstrap})
    try:
        ensure_topics_blocking(fresh.kafka, [compacted])
        _described(admin, name)

        changed = align_topic_configs_blocking(fresh.kafka, [expiring, missing])

        assert changed == {
            name: {
                "cleanup.policy": ("compact", "compact,delete"),
                "retention.ms": ("-1", str(14 * 24 * 3600 * 1000)),
                "segment.ms": (str(7 * 24 * 3600 * 1000), str(24 * 3600 * 1000)),
            }
        }
        resource = ConfigResource("topic", name)
        configs = admin.describe_configs([resource])[resource].result(timeout=10)
        assert {key: configs[key].value for key in expiring.configs} == expiring.configs
        assert missing.name not in admin.list_topics(timeout=10).topics
        assert align_topic_configs_blocking(fresh.kafka, [expiring]) == {}
        assert ensure_topics_blocking(fresh.kafka, [expiring]).mismatches == ()
    finally:
        delete_topics_blocking(fresh.kafka, [fresh.topic_prefix])
