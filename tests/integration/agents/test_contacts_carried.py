"""Contacts an earlier version kept in the `contacts` table carried over on a real worker: the
worker starts with a contact in that table's changelog (as a deploy of this version finds it),
routes the user's notifications to it, moves it into the user's `notification_routing` entry
with the first write, and erases it with the user."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from agents.routing.pipeline import CONTACTS_TABLE, ROUTING_TABLE
from schemas.notifications import NotificationDispatchEvent
from schemas.orders import OrderEvent
from schemas.users import UserEvent
from streams.kafka.wire import decode, encode
from streams.settings import Settings
from tests.integration.kafka_io import records_to_end, topic_catalog
from tests.integration.worker_process import (
    OPERATOR_HEADERS,
    WorkerProcess,
    eventually,
    worker_recovering,
)

CARRIED = f"u-carried-{uuid.uuid4().hex[:8]}"
# As earlier versions wrote it (`Contact.to_table()`), keyed by the user id.
OLD_CONTACT = {
    "user_id": CARRIED,
    "email": f"{CARRIED}@example.com",
    "locale": "en",
    "time_zone": "UTC",
}


@pytest.fixture(scope="module")
def worker(
    worker_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """A worker that recovers the old contact when it starts."""
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with worker_recovering(
        worker_settings, log_path, CONTACTS_TABLE, CARRIED, OLD_CONTACT
    ) as process:
        yield process


def event(model: type[Any], event_type: str, payload: dict[str, Any]) -> Any:
    now = datetime.now(UTC)
    event_id = uuid.uuid4()
    return model.model_validate(
        {
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": now,
            "ingested_at": now,
            "source": "test",
            "correlation_id": str(event_id),
            "payload": payload,
        }
    )


async def table_entry(worker: WorkerProcess, table: str, key: str) -> dict[str, Any] | None:
    url = f"{worker.web_url}/v1/tables/{table}/{key}"
    async with (
        aiohttp.ClientSession(headers=OPERATOR_HEADERS) as http,
        http.get(url) as response,
    ):
        if response.status == 404:
            return None
        assert response.status == 200, await response.text()
        value: dict[str, Any] = (await response.json())["value"]
        return value


async def test_an_old_contact_is_routed_to_taken_over_and_erased(
    worker: WorkerProcess, producer: AIOKafkaProducer, worker_settings: Settings
) -> None:
    catalog = topic_catalog(worker_settings)
    assert await table_entry(worker, CONTACTS_TABLE, CARRIED) == OLD_CONTACT
    # No user.created: the only contact the worker has for the user is the old table's.
    order_id = f"o-{uuid.uuid4()}"
    order = {
        "id": order_id,
        "user_id": CARRIED,
        "status": "paid",
        "currency": "EUR",
        "total_minor": 4998,
        "items": [{"sku": "BOOK-1", "quantity": 2, "unit_price_minor": 2499}],
    }
    paid = encode(event(OrderEvent, "order.paid", order))
    await producer.send_and_wait(catalog.orders_events.name, paid, key=order_id.encode())

    async def dispatched() -> list[str] | None:
        dispatch_topic = catalog.for_topic("notifications.dispatch").name
        found = [
            decode(record.value, NotificationDispatchEvent).payload
            for record in await records_to_end(worker_settings, dispatch_topic)
        ]
        recipients = [d.recipient for d in found if d.user_id == CARRIED]
        return recipients or None

    recipients = await eventually(dispatched, what="the order's confirmation", worker=worker)
    assert recipients == [OLD_CONTACT["email"]]

    async def taken_over() -> dict[str, Any] | None:
        entry = await table_entry(worker, ROUTING_TABLE, CARRIED)
        gone = await table_entry(worker, CONTACTS_TABLE, CARRIED) is None
        return entry if entry is not None and gone else None

    entry = await eventually(taken_over, what="the contact in the routing entry", worker=worker)
    assert entry["contact"] == OLD_CONTACT
    assert len(entry["seen"]) == 1  # the confirmation, routed once

    deleted = event(UserEvent, "user.deleted", {"user_id": CARRIED, "reason": "user request"})
    users = catalog.for_topic("users.events").name
    await producer.send_and_wait(users, encode(deleted), key=CARRIED.encode())

    async def erased() -> bool | None:
        return True if await table_entry(worker, ROUTING_TABLE, CARRIED) is None else None

    await eventually(erased, what="the user's routing entry erased", worker=worker)
    assert await table_entry(worker, CONTACTS_TABLE, CARRIED) is None
