"""Faust's Kafka transactions, kept measurable: offsets reach aiokafka in its own type, sends go
through Faust's transaction manager, and the guarantee is known before the worker starts."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from aiokafka import TopicPartition
from faust.types import TP, AppT

from streams.runtime.app import create_faust_app
from streams.runtime.records import OutgoingRecord
from streams.runtime.topics import TopicPublisher, raw_topic
from streams.runtime.transactions import (
    TransactionalSends,
    convert_offsets_for_aiokafka,
    exactly_once,
)
from streams.settings import WorkerProcessSettings


class FakeTransactionProducer:
    def __init__(self) -> None:
        self.commits: list[tuple[Any, str, bool]] = []

    async def commit_transactions(
        self, tid_to_offset_map: Any, group_id: str, start_new_transaction: bool = True
    ) -> None:
        self.commits.append((tid_to_offset_map, group_id, start_new_transaction))


async def test_offsets_reach_aiokafka_as_its_topic_partitions() -> None:
    producer = FakeTransactionProducer()
    convert_offsets_for_aiokafka(producer)
    await producer.commit_transactions(
        {"app-0-1": {TP("orders", 1): 42, TP("users", 1): 7}}, "app", start_new_transaction=False
    )
    [(offsets, group_id, start_new)] = producer.commits
    assert offsets == {"app-0-1": {TopicPartition("orders", 1): 42, TopicPartition("users", 1): 7}}
    assert all(type(tp) is TopicPartition for tp in offsets["app-0-1"])
    assert (group_id, start_new) == ("app", False)


class FakeManager:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    async def send(self, *args: Any) -> asyncio.Future[Any]:
        self.sent.append(args)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(len(self.sent))
        return future


class FakeApp:
    def __init__(self) -> None:
        self.manager = FakeManager()

    async def maybe_start_producer(self) -> FakeManager:
        return self.manager


async def test_in_a_transaction_each_record_goes_through_fausts_manager() -> None:
    app = FakeApp()
    sends = TransactionalSends(cast(AppT, app), "p-notifications.status")
    records = [OutgoingRecord(b"k1", b"v1", (("h", b"1"),)), OutgoingRecord(b"k2", None)]
    deliveries = await sends.send(records)
    assert [await delivery for delivery in deliveries] == [1, 2]
    assert app.manager.sent == [
        ("p-notifications.status", b"k1", b"v1", None, None, [("h", b"1")]),
        ("p-notifications.status", b"k2", None, None, None, []),
    ]


def _app(guarantee: str) -> AppT:
    settings = WorkerProcessSettings.model_validate(
        {"worker": {"store": "memory://", "processing_guarantee": guarantee}}
    )
    return create_faust_app(settings)


def test_the_guarantee_is_known_before_the_worker_starts() -> None:
    transactional, plain = _app("exactly_once"), _app("at_least_once")
    assert exactly_once(transactional)
    assert not exactly_once(plain)
    # Faust's own answer is false until a worker runs the app (and then cached).
    assert not transactional.in_worker


def test_publishers_pick_the_path_of_the_guarantee() -> None:
    transactional = TopicPublisher(raw_topic(_app("exactly_once"), "p-users.events"))
    plain = TopicPublisher(raw_topic(_app("at_least_once"), "p-users.events"))
    assert isinstance(transactional._sender, TransactionalSends)
    assert not isinstance(plain._sender, TransactionalSends)
