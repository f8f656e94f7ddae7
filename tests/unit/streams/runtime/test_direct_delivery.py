"""The consumer hands each record straight to the handler Faust's conductor built for its
partition, and waits for the conductor's lock only while a resubscription holds it."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from faust.types import TP

from streams.runtime.app import create_faust_app
from streams.runtime.direct_delivery import direct_delivery
from streams.settings import WorkerProcessSettings

ORDERS = TP("orders.events", 0)


class Message:
    tp = ORDERS


def app_with_handler(seen: list[str]) -> faust.App:
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"store": "memory://"}}))

    async def handler(message: Any) -> None:
        seen.append(f"handled {message.tp.topic}")

    app.topics._tp_to_callback[ORDERS] = handler
    return app


async def test_the_apps_consumer_hands_a_record_to_its_handler_without_the_lock() -> None:
    seen: list[str] = []
    app = app_with_handler(seen)
    delivery = app.consumer.callback(Message())
    assert not app.topics._tp_to_callback_lock.locked()
    assert type(delivery).__name__ == "coroutine"  # the handler's own, not Faust's on_message
    assert delivery.cr_code.co_name == "handler"
    await delivery
    assert seen == ["handled orders.events"]


async def test_a_record_goes_to_its_partitions_handler() -> None:
    seen: list[str] = []
    app = app_with_handler(seen)
    await direct_delivery(app.topics)(Message())
    assert seen == ["handled orders.events"]


async def test_while_a_resubscription_holds_the_lock_a_record_waits_for_it() -> None:
    seen: list[str] = []
    app = app_with_handler(seen)
    lock = app.topics._tp_to_callback_lock
    await lock.acquire()
    delivery = asyncio.ensure_future(direct_delivery(app.topics)(Message()))
    await asyncio.sleep(0)
    assert seen == []
    seen.append("resubscribed")
    lock.release()
    await delivery
    assert seen == ["resubscribed", "handled orders.events"]


async def test_a_record_of_a_partition_without_a_handler_raises_as_fausts_does() -> None:
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"store": "memory://"}}))
    with pytest.raises(KeyError):
        await direct_delivery(app.topics)(Message())
    with pytest.raises(KeyError):
        await app.topics.on_message(Message())
