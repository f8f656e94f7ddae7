"""Sends inside Faust's Kafka transactions, for `processing_guarantee="exactly_once"`.

With that guarantee Faust keeps one transactional producer per (topic group, partition) it is
assigned and commits offsets with `send_offsets_to_transaction`; a record must then go through
Faust's `TransactionManager.send`, which picks the transaction by the partition the record is
written to. Our one-batch-per-partition sends (`streams.runtime.partition_batches`) bypass it,
so in a transaction every record takes Faust's own per-record path instead.

This exists to measure Faust's guarantee beside ours, and the measurement is why it is not the
default (README, "Reliability"): with one worker it costs about a third more worker CPU per
notification and doubles the latency; with two it crashes, because Faust picks an output's
transaction by the partition the output goes to, and our outputs are re-keyed (a user's event
becomes notifications keyed by their own ids), so that transaction often belongs to the other
worker ("No transaction producer found"). Faust's design assumes every output co-partitioned
with its input. The pipelines make their effects exact under at-least-once instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import TopicPartition
from faust.types import AppT
from faust.types.enums import ProcessingGuarantee

from streams.runtime.records import OutgoingRecord


def exactly_once(app: AppT) -> bool:
    """Whether `app` runs in Kafka transactions; unlike Faust's `app.in_transaction` (a cached
    property, false until the worker has started) this holds from the app's creation."""
    guarantee: Any = app.conf.processing_guarantee
    return bool(guarantee is ProcessingGuarantee.EXACTLY_ONCE)


class TransactionalSends:
    """Sends records to one topic through Faust's transaction manager, one record at a time."""

    def __init__(self, app: AppT, topic: str) -> None:
        self._app = app
        self._topic = topic

    async def send(self, records: Sequence[OutgoingRecord]) -> list[asyncio.Future[Any]]:
        manager = await self._app.maybe_start_producer()
        deliveries: list[asyncio.Future[Any]] = []
        for record in records:
            sent = await manager.send(
                self._topic, record.key, record.value, None, None, list(record.headers)
            )
            deliveries.append(asyncio.ensure_future(sent))
        return deliveries


def convert_offsets_for_aiokafka(producer: Any) -> None:
    """faust-streaming 0.15.3 hands aiokafka's `send_offsets_to_transaction` its own `TP`
    tuples, which aiokafka 0.14 refuses ("Key should be TopicPartition instance"): every first
    commit crashes the worker. The offsets are converted on the way in."""
    commit_transactions = producer.commit_transactions

    async def converted(
        tid_to_offset_map: Any, group_id: str, start_new_transaction: bool = True
    ) -> None:
        await commit_transactions(
            {
                tid: {
                    TopicPartition(tp.topic, tp.partition): offset for tp, offset in offsets.items()
                }
                for tid, offsets in tid_to_offset_map.items()
            },
            group_id,
            start_new_transaction=start_new_transaction,
        )

    producer.commit_transactions = converted
