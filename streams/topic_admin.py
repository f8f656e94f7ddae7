"""Creating and checking the catalog's topics with Kafka's admin API.

The admin client is blocking, so its calls run in a worker thread; they happen at start-up only,
never on a hot path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from streams.catalog import TopicSpec
from streams.errors import ServiceUnavailableError
from streams.settings import Settings

log = logging.getLogger(__name__)


def _admin(settings: Settings) -> AdminClient:
    return AdminClient(
        {
            "bootstrap.servers": settings.kafka.bootstrap,
            "client.id": f"{settings.kafka.client_id}-admin",
            "socket.timeout.ms": int(settings.kafka.request_timeout_s * 1000),
        }
    )


def _existing_partitions(admin: AdminClient, timeout_s: float) -> dict[str, int]:
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise ServiceUnavailableError("kafka", str(exc)) from exc
    return {name: len(topic.partitions) for name, topic in metadata.topics.items()}


def _create(admin: AdminClient, specs: Sequence[TopicSpec], timeout_s: float) -> None:
    new = [
        NewTopic(
            s.name,
            num_partitions=s.partitions,
            replication_factor=s.replication_factor,
            config=s.configs,
        )
        for s in specs
    ]
    for name, future in admin.create_topics(new, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise ServiceUnavailableError("kafka", f"creating {name}: {exc}") from exc
        log.info("created topic %s", name)


def ensure_topics_blocking(settings: Settings, specs: Sequence[TopicSpec]) -> list[str]:
    """Create the missing topics; return a description of every existing one that differs
    from its spec (partitions can only grow, so a mismatch needs an operator, not a retry)."""
    admin = _admin(settings)
    timeout_s = settings.kafka.request_timeout_s
    existing = _existing_partitions(admin, timeout_s)
    missing = [spec for spec in specs if spec.name not in existing]
    if missing:
        _create(admin, missing, timeout_s)
    mismatches = [
        f"{spec.name}: has {existing[spec.name]} partitions, catalog says {spec.partitions}"
        for spec in specs
        if spec.name in existing and existing[spec.name] != spec.partitions
    ]
    for mismatch in mismatches:
        log.warning("topic differs from the catalog: %s", mismatch)
    return mismatches


async def ensure_topics(settings: Settings, specs: Sequence[TopicSpec]) -> list[str]:
    return await asyncio.to_thread(ensure_topics_blocking, settings, specs)


def delete_topics_blocking(settings: Settings, prefixes: Sequence[str]) -> list[str]:
    """Delete every topic whose name starts with one of `prefixes` (test clean-up, tooling)."""
    admin = _admin(settings)
    timeout_s = settings.kafka.request_timeout_s
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
