"""`tributary topics create|list|describe` against the real cluster."""

from __future__ import annotations

import json

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka.topic_admin import ensure_topics
from streams.settings import Settings
from tests.integration.cli.support import cli, new_order_id, order_body
from tests.integration.kafka_io import topic_catalog


def fresh(settings: Settings, suffix: str) -> Settings:
    """The test's settings on topics nobody created yet (still under the test's prefix,
    so the fixture deletes them afterwards)."""
    return settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}{suffix}-"})


async def test_create_makes_every_catalog_topic_and_list_shows_them(settings: Settings) -> None:
    mine = fresh(settings, "new")
    names = [spec.name for spec in topic_catalog(mine).all()]

    before = await cli(mine, "topics", "list")
    assert before.code == 0, before.stderr
    assert [(line["topic"], line["exists"]) for line in before.lines] == [
        (name, False) for name in names
    ]

    created = await cli(mine, "topics", "create")
    assert created.code == 0, created.stderr
    assert [(line["topic"], line["status"]) for line in created.lines] == [
        (name, "created") for name in names
    ]
    again = await cli(mine, "topics", "create")
    assert {line["status"] for line in again.lines} == {"exists"}

    listed = await cli(mine, "topics", "list")
    assert listed.code == 0, listed.stderr
    layout = {spec.name: spec.partitions for spec in topic_catalog(mine).all()}
    for line in listed.lines:
        assert line["exists"] is True
        assert line["partitions_found"] == line["partitions"] == layout[line["topic"]]
        assert (line["end_offsets"], line["lag"]) == (0, 0)


async def test_list_counts_end_offsets_and_the_workers_lag(settings: Settings) -> None:
    for _ in range(3):
        body = json.dumps(order_body(new_order_id()))
        produced = await cli(settings, "produce", "order.created", "--json", "-", stdin=body)
        assert produced.code == 0, produced.stderr
    listed = await cli(settings, "topics", "list")
    by_topic = {line["topic"]: line for line in listed.lines}
    orders = by_topic[topic_catalog(settings).orders_events.name]
    assert (orders["end_offsets"], orders["lag"], orders["group"]) == (
        3,
        3,
        settings.worker.app_id,
    )
    dead = by_topic[f"{settings.topic_prefix}orders.events.dlq"]
    assert dead["group"] == f"{settings.worker.app_id}-dlq-redrive"


async def test_describe_shows_partitions_committed_offsets_lag_and_configs(
    settings: Settings,
) -> None:
    body = json.dumps(order_body(new_order_id()))
    produced = await cli(settings, "produce", "order.created", "--json", "-", stdin=body)
    [receipt] = produced.lines
    await _commit(settings, receipt["topic"], receipt["partition"], receipt["offset"] + 1)
    body = json.dumps(order_body(new_order_id()))
    assert (await cli(settings, "produce", "order.created", "--json", "-", stdin=body)).code == 0

    described = await cli(settings, "topics", "describe", "orders.events")
    assert described.code == 0, described.stderr
    [line] = described.lines
    assert line["topic"] == receipt["topic"]
    assert line["group"] == settings.worker.app_id
    assert line["configs"] == {"cleanup.policy": "delete", "retention.ms": str(7 * 86_400_000)}
    partitions = line["partitions"]
    assert [p["partition"] for p in partitions] == list(range(settings.kafka.partitions))
    assert all(p["leader"] >= 0 for p in partitions)
    committed = partitions[receipt["partition"]]
    assert committed["committed"] == receipt["offset"] + 1
    assert committed["lag"] == committed["high"] - committed["committed"]
    assert sum(p["high"] for p in partitions) == 2
    assert sum(p["lag"] for p in partitions) == 1

    dead = await cli(settings, "topics", "describe", "orders.events.dlq")
    assert dead.lines[0]["configs"]["retention.ms"] == str(30 * 86_400_000)


async def test_describing_a_missing_topic_exits_2(settings: Settings) -> None:
    described = await cli(settings, "topics", "describe", "no-such.events")
    assert (described.code, described.lines) == (2, [])
    assert "'no-such.events' does not exist" in described.stderr


async def test_create_reports_a_topic_that_differs_from_the_catalog_and_exits_1(
    settings: Settings,
) -> None:
    mine = fresh(settings, "odd")
    orders = topic_catalog(mine).orders_events
    small = mine.model_copy(update={"kafka": mine.kafka.model_copy(update={"partitions": 1})})
    await ensure_topics(small.kafka, [topic_catalog(small).orders_events])

    created = await cli(mine, "topics", "create")

    assert created.code == 1
    by_topic = {line["topic"]: line for line in created.lines}
    assert by_topic[orders.name]["status"] == "mismatch"
    assert by_topic[orders.name]["differences"] == [
        f"{orders.name}: has 1 partitions, catalog says {orders.partitions}"
    ]
    assert {line["status"] for name, line in by_topic.items() if name != orders.name} == {"created"}
    assert f"differs from the catalog: {orders.name}" in created.stderr


async def _commit(settings: Settings, topic: str, partition: int, offset: int) -> None:
    """Commit as the worker's group would (independently of the CLI)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap,
        group_id=settings.worker.app_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        await consumer.commit({tp: offset})
    finally:
        await consumer.stop()
