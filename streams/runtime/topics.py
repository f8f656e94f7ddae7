"""Topics as the pipelines declare them, and the one way records are published to them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol, cast

import faust
from aiokafka.errors import KafkaError
from faust.exceptions import NotReady
from faust.types import TopicT

from streams.errors import ServiceUnavailableError
from streams.runtime.app import TributaryApp
from streams.runtime.partition_batches import PartitionBatches, all_delivered, app_producer
from streams.runtime.records import OutgoingRecord
from streams.runtime.transactions import TransactionalSends, exactly_once
from streams.runtime.undecoded import Undecoded


def raw_topic(app: faust.App, *names: str) -> TopicT:
    """A topic of plain bytes (or several, read by one agent): no Faust model, so no `__faust`
    metadata in or out, and records handed over as Kafka holds them (`RawBytes`).

    The topic itself is created by `streams.kafka.topic_admin.ensure_topics`, with the partition
    count the catalog declares; Faust only declares its own internal topics (table changelogs).
    """
    return app.topic(*names, schema=RawBytes())


class RawBytes(Undecoded):
    """Keys and values as the bytes Kafka holds, in and out.

    Faust would pass every record's key and value through its serializer registry even with the
    "raw" codec, to return the same bytes (`streams.runtime.undecoded`).
    """

    def __init__(self) -> None:
        super().__init__(
            key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )


class BatchSender(Protocol):
    """Queues records on the producer; each future resolves when Kafka acknowledged its part."""

    async def send(self, records: Sequence[OutgoingRecord]) -> list[asyncio.Future[Any]]: ...


class TopicPublisher:
    """Sends records to one topic through the app's own producer (one producer per process),
    one record batch per partition (`streams.runtime.partition_batches`) unless given another
    `sender`."""

    def __init__(self, topic: TopicT, sender: BatchSender | None = None) -> None:
        app = cast(TributaryApp, topic.app)
        self._app = app
        self._name = topic.get_topic_name()
        self._sender = sender or (
            TransactionalSends(app, self._name)
            if exactly_once(app)
            else PartitionBatches(lambda: app_producer(app), self._name)
        )

    async def send_all(self, records: Sequence[OutgoingRecord]) -> None:
        """Send every record and return once the broker has acknowledged all of them."""
        if not records:
            return
        try:
            await all_delivered(await self._sender.send(records))
        except (KafkaError, NotReady) as exc:  # NotReady: the producer is not started (yet)
            raise ServiceUnavailableError("kafka", f"{type(exc).__name__}: {exc}") from exc
        self._app.count_sent(self._name, len(records))
