"""`tributary topics list|create|describe`: the catalog's topics as the cluster has them.

Lag is counted for the group that consumes each topic: the worker's (`worker.app_id`) on family
topics, and on dead-letter topics the re-drive group, whose lag is the dead letters not yet
re-driven.
"""

from __future__ import annotations

from typing import Any

from streams.cli.cluster import Cluster, TopicState
from streams.cli.dlq import redrive_group
from streams.cli.errors import TopicNotFoundError
from streams.cli.output import Output
from streams.cli.topic_names import resolve_topic
from streams.kafka.catalog import TopicCatalog, TopicSpec
from streams.kafka.topic_admin import TopicCheck, ensure_topics
from streams.settings import KafkaSettings, WorkerSettings


def group_for(catalog: TopicCatalog, worker: WorkerSettings, topic: str) -> str:
    if any(topic == catalog.dead_letters(spec).name for spec in catalog.families()):
        return redrive_group(worker)
    return worker.app_id


def list_line(spec: TopicSpec, group: str, state: TopicState | None) -> dict[str, Any]:
    line: dict[str, Any] = {
        "topic": spec.name,
        "partitions": spec.partitions,
        "exists": state is not None,
        "group": group,
    }
    if state is None:
        return line | {"partitions_found": None, "end_offsets": None, "lag": None}
    return line | {
        "partitions_found": len(state.partitions),
        "end_offsets": state.end_offsets,
        "lag": state.lag,
    }


def describe_line(state: TopicState, configs: dict[str, str]) -> dict[str, Any]:
    return {
        "topic": state.name,
        "group": state.group,
        "configs": configs,
        "partitions": [
            {
                "partition": p.partition,
                "leader": p.leader,
                "low": p.low,
                "high": p.high,
                "committed": p.committed,
                "lag": p.lag,
            }
            for p in state.partitions
        ],
    }


def create_line(spec: TopicSpec, check: TopicCheck) -> dict[str, Any]:
    line: dict[str, Any] = {"topic": spec.name, "partitions": spec.partitions}
    differences = [m for m in check.mismatches if m.startswith(f"{spec.name}: ")]
    if differences:
        return line | {"status": "mismatch", "differences": differences}
    return line | {"status": "created" if spec.name in check.created else "exists"}


async def list_topics(
    catalog: TopicCatalog, kafka: KafkaSettings, worker: WorkerSettings, output: Output
) -> int:
    specs = catalog.all()
    groups = {spec.name: group_for(catalog, worker, spec.name) for spec in specs}
    states = await Cluster(kafka).topic_states(groups)
    for spec in specs:
        output.record(list_line(spec, groups[spec.name], states.get(spec.name)))
    return 0


async def create_topics(catalog: TopicCatalog, kafka: KafkaSettings, output: Output) -> int:
    """Exit 1 when an existing topic differs from the catalog: that needs an operator."""
    specs = catalog.all()
    check = await ensure_topics(kafka, specs)
    for spec in specs:
        output.record(create_line(spec, check))
    for mismatch in check.mismatches:
        output.note(f"differs from the catalog: {mismatch}")
    return 1 if check.mismatches else 0


async def describe_topic(
    catalog: TopicCatalog,
    kafka: KafkaSettings,
    worker: WorkerSettings,
    typed_topic: str,
    output: Output,
) -> int:
    topic = resolve_topic(catalog, catalog.prefix, typed_topic)
    cluster = Cluster(kafka)
    group = group_for(catalog, worker, topic.name)
    state = (await cluster.topic_states({topic.name: group})).get(topic.name)
    if state is None:
        raise TopicNotFoundError(topic.name)
    output.record(describe_line(state, await cluster.configs(topic.name)))
    return 0
