"""Creating and checking the catalog's topics with Kafka's admin API.

The admin client is blocking, so its calls run in a worker thread; they happen at start-up only,
never on a hot path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from streams.errors import ServiceUnavailableError
from streams.kafka.catalog import TopicSpec
from streams.kafka.client_security import librdkafka_security
from streams.settings import KafkaSettings

log = logging.getLogger(__name__)


def _admin(kafka: KafkaSettings) -> AdminClient:
    return AdminClient(
        {
            "bootstrap.servers": kafka.bootstrap,
            "client.id": f"{kafka.client_id}-admin",
            "socket.timeout.ms": int(kafka.request_timeout_s * 1000),
            **librdkafka_security(kafka),
        }
    )


def _existing_partitions(admin: AdminClient, timeout_s: float) -> dict[str, int]:
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise ServiceUnavailableError("kafka", str(exc)) from exc
    return {name: len(topic.partitions) for name, topic in metadata.topics.items()}


def _create(admin: AdminClient, specs: Sequence[TopicSpec], timeout_s: float) -> list[str]:
    """Create the topics; return those that turned out to exist already (created meanwhile by
    someone else, or not yet in the metadata this client had)."""
    new = [
        NewTopic(
            s.name,
            num_partitions=s.partitions,
            replication_factor=s.replication_factor,
            config=s.configs,
        )
        for s in specs
    ]
    already: list[str] = []
    for name, future in admin.create_topics(new, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
            log.info("created topic %s", name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise ServiceUnavailableError("kafka", f"creating {name}: {exc}") from exc
            already.append(name)
    return already


def _served_partitions(admin: AdminClient, timeout_s: float) -> dict[str, int]:
    """Per topic, the partitions that have a leader: those a client can use right now."""
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise ServiceUnavailableError("kafka", str(exc)) from exc
    return {
        name: sum(1 for partition in topic.partitions.values() if partition.leader >= 0)
        for name, topic in metadata.topics.items()
    }


def _partitions_once_served(
    admin: AdminClient, specs: Sequence[TopicSpec], timeout_s: float
) -> dict[str, int]:
    """Partition counts of new topics, once the broker's metadata shows each with a leader for
    every partition: a topic the controller has created may take a moment to be served, and a
    client told "created" must not then be told "unknown topic" (or see fewer partitions)."""
    deadline = time.monotonic() + timeout_s
    while True:
        served = _served_partitions(admin, timeout_s)
        ready = all(served.get(spec.name, 0) >= spec.partitions for spec in specs)
        if ready or time.monotonic() > deadline:
            return {spec.name: served[spec.name] for spec in specs if spec.name in served}
        time.sleep(0.1)


def _config_differences(
    admin: AdminClient, specs: Sequence[TopicSpec], timeout_s: float
) -> dict[str, dict[str, tuple[str, str]]]:
    """Per topic of `specs`, each config it has otherwise than its spec: (has, spec says)."""
    if not specs:
        return {}
    resources = {spec.name: ConfigResource("topic", spec.name) for spec in specs}
    futures = admin.describe_configs(list(resources.values()), request_timeout=timeout_s)
    differences: dict[str, dict[str, tuple[str, str]]] = {}
    for spec in specs:
        try:
            actual = futures[resources[spec.name]].result(timeout=timeout_s)
        except KafkaException as exc:
            raise ServiceUnavailableError("kafka", f"describing {spec.name}: {exc}") from exc
        differing = {
            key: (actual[key].value, wanted)
            for key, wanted in spec.configs.items()
            if key in actual and actual[key].value != wanted
        }
        if differing:
            differences[spec.name] = differing
    return differences


def _config_mismatches(
    admin: AdminClient, specs: Sequence[TopicSpec], timeout_s: float
) -> list[str]:
    return [
        f"{name}: has {key}={has}, catalog says {wanted}"
        for name, differing in _config_differences(admin, specs, timeout_s).items()
        for key, (has, wanted) in differing.items()
    ]


def align_topic_configs_blocking(
    kafka: KafkaSettings, specs: Sequence[TopicSpec]
) -> dict[str, dict[str, tuple[str, str]]]:
    """Set the configs of the existing topics of `specs` that differ from them; return what
    changed (per topic, each config: what it had, what it has now). Only for topics a process
    owns whole, whose specs are its own settings (a worker's table changelogs: their retention
    is the tables' retention); the catalog's topics are never altered (`ensure_topics`)."""
    admin = _admin(kafka)
    timeout_s = kafka.request_timeout_s
    existing = _existing_partitions(admin, timeout_s)
    present = [spec for spec in specs if spec.name in existing]
    differences = _config_differences(admin, present, timeout_s)
    if not differences:
        return {}
    resources = [
        ConfigResource(
            "topic",
            name,
            incremental_configs=[
                ConfigEntry(key, wanted, incremental_operation=AlterConfigOpType.SET)
                for key, (_, wanted) in differing.items()
            ],
        )
        for name, differing in differences.items()
    ]
    futures = admin.incremental_alter_configs(resources, request_timeout=timeout_s)
    for resource, future in futures.items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            raise ServiceUnavailableError("kafka", f"altering {resource.name}: {exc}") from exc
    for name, differing in differences.items():
        for key, (has, wanted) in differing.items():
            log.warning("topic %s: %s was %s, set to %s", name, key, has, wanted)
    return differences


@dataclass(frozen=True, slots=True)
class TopicCheck:
    """What `ensure_topics` did: the topics it created, and every way an existing one differs
    from its spec."""

    created: tuple[str, ...]
    mismatches: tuple[str, ...]


def ensure_topics_blocking(kafka: KafkaSettings, specs: Sequence[TopicSpec]) -> TopicCheck:
    """Create the missing topics and compare the existing ones with their specs. Nothing is
    altered: partitions can only grow (which moves keys between partitions) and retention
    decides what data is kept, so a difference needs an operator."""
    admin = _admin(kafka)
    timeout_s = kafka.request_timeout_s
    existing = _existing_partitions(admin, timeout_s)
    missing = [spec for spec in specs if spec.name not in existing]
    already = _create(admin, missing, timeout_s) if missing else []
    if missing:
        existing |= _partitions_once_served(admin, missing, timeout_s)
    created = tuple(spec.name for spec in missing if spec.name not in already)
    mismatches = _differences(admin, specs, existing, timeout_s)
    return TopicCheck(created=created, mismatches=tuple(mismatches))


def _differences(
    admin: AdminClient, specs: Sequence[TopicSpec], existing: dict[str, int], timeout_s: float
) -> list[str]:
    """How the existing topics of `specs` differ from them (partitions, configs), logged."""
    present = [spec for spec in specs if spec.name in existing]
    mismatches = [
        f"{spec.name}: has {existing[spec.name]} partitions, catalog says {spec.partitions}"
        for spec in present
        if existing[spec.name] != spec.partitions
    ] + _config_mismatches(admin, present, timeout_s)
    for mismatch in mismatches:
        log.warning("topic differs from the catalog: %s", mismatch)
    return mismatches


def check_topics_blocking(kafka: KafkaSettings, specs: Sequence[TopicSpec]) -> list[str]:
    """How the topics differ from their specs (missing, partitions, configs), changing nothing:
    for processes that must not create topics (the API), logged as warnings."""
    admin = _admin(kafka)
    timeout_s = kafka.request_timeout_s
    existing = _existing_partitions(admin, timeout_s)
    missing = [f"{spec.name}: missing" for spec in specs if spec.name not in existing]
    for mismatch in missing:
        log.warning("topic differs from the catalog: %s", mismatch)
    return missing + _differences(admin, specs, existing, timeout_s)


async def check_topics(kafka: KafkaSettings, specs: Sequence[TopicSpec]) -> list[str]:
    return await asyncio.to_thread(check_topics_blocking, kafka, specs)


async def ensure_topics(kafka: KafkaSettings, specs: Sequence[TopicSpec]) -> TopicCheck:
    return await asyncio.to_thread(ensure_topics_blocking, kafka, specs)


async def align_topic_configs(
    kafka: KafkaSettings, specs: Sequence[TopicSpec]
) -> dict[str, dict[str, tuple[str, str]]]:
    return await asyncio.to_thread(align_topic_configs_blocking, kafka, specs)


def topic_partitions_blocking(kafka: KafkaSettings, prefixes: Sequence[str]) -> dict[str, int]:
    """Partition counts of the topics whose name starts with one of `prefixes` (tooling)."""
    existing = _existing_partitions(_admin(kafka), kafka.request_timeout_s)
    return {name: n for name, n in existing.items() if name.startswith(tuple(prefixes))}


def delete_topics_blocking(kafka: KafkaSettings, prefixes: Sequence[str]) -> list[str]:
    """Delete every topic whose name starts with one of `prefixes` (test clean-up, tooling)."""
    admin = _admin(kafka)
    timeout_s = kafka.request_timeout_s
    doomed = [
        name
        for name in _existing_partitions(admin, timeout_s)
        if any(name.startswith(prefix) for prefix in prefixes)
    ]
    if not doomed:
        return []
    for name, future in admin.delete_topics(doomed, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            raise ServiceUnavailableError("kafka", f"deleting {name}: {exc}") from exc
    return doomed
