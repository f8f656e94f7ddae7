"""track_deliveries in a real worker: status + receipts out of order -> table, topic, PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from pytest_aiohttp import AiohttpClient

from agents.deliverability.reports import REPORT_NAMESPACE
from agents.tracking.state import fold, receipt_step, status_step, to_entry
from api.app import create_app
from schemas.notifications import NotificationReceiptEvent, NotificationStatusEvent
from schemas.suppressions import SuppressionEvent
from streams.kafka.wire import decode, encode
from streams.providers.receipts import FORM
from streams.settings import Settings
from streams.stores.delivery_store import DeliveryStore
from tests.integration.api.support import signed, topic_records
from tests.integration.kafka_io import topic_catalog
from tests.integration.worker_process import OPERATOR_HEADERS, WorkerProcess, eventually
from tests.unit.agents.delivery_factories import T0, at, receipt_event, status_event

Event = NotificationStatusEvent | NotificationReceiptEvent


@pytest.fixture(scope="module")
async def deliveries(worker_settings: Settings) -> AsyncIterator[DeliveryStore]:
    store = DeliveryStore.from_settings(worker_settings.database)
    yield store
    await store.close()


async def produce(producer: AIOKafkaProducer, settings: Settings, event: Event) -> None:
    base = "notifications.receipts"
    if isinstance(event, NotificationStatusEvent):
        base = "notifications.status"
    topic = topic_catalog(settings).for_topic(base).name
    key = event.payload.notification_id.encode()
    await producer.send_and_wait(topic, encode(event), key=key)


def expected_entry(events: list[Event]) -> dict[str, Any]:
    delivery = None
    for event in events:
        found = (
            status_step(event)
            if isinstance(event, NotificationStatusEvent)
            else receipt_step(event)
        )
        assert found is not None
        delivery, _ = fold(delivery, event.payload.notification_id, *found)
    assert delivery is not None
    return to_entry(delivery)


async def test_out_of_order_status_and_receipts_converge_in_table_and_postgresql(
    worker: WorkerProcess,
    worker_settings: Settings,
    producer: AIOKafkaProducer,
    deliveries: DeliveryStore,
) -> None:
    n = f"n-{uuid.uuid4()}"
    events: list[Event] = [
        receipt_event(n, "delivered", 5),
        status_event(n, "sending", 1, attempt=1),
        status_event(n, "sent", 2, attempt=1, provider="sendgrid", provider_message_id=f"msg-{n}"),
        status_event(n, "queued", 0),
        receipt_event(n, "delivered", 5),  # the provider's retry of the same receipt
        # Behind the retry on the same partition: once it is tracked, so is the retry. Older
        # than the delivery, so it is in the timeline without changing the state.
        receipt_event(n, "bounced", 4),
    ]
    for event in events:
        await produce(producer, worker_settings, event)

    async def converged() -> Any:
        found = await deliveries.get(n)
        if found is None or len(found[1]) < 5:
            return None
        return found

    row, timeline = await eventually(converged, what=f"{n} tracked in PostgreSQL", worker=worker)
    assert (row.state, row.queued_at, row.delivered_at, row.attempts) == ("delivered", T0, at(5), 1)
    assert (row.user_id, row.channel, row.provider) == ("user-1", "email", "sendgrid")
    assert [s.state for s in timeline] == ["queued", "sending", "sent", "bounced", "delivered"]

    url = f"{worker.web_url}/v1/tables/deliveries/{n}"
    async with aiohttp.ClientSession(headers=OPERATOR_HEADERS) as http, http.get(url) as response:
        assert response.status == 200
        assert (await response.json())["value"] == expected_entry(events[:4] + events[5:])

    # The receipt's transition is on notifications.status, once per receipt, never looped back.
    async def published() -> list[NotificationStatusEvent] | None:
        records = await topic_records(worker_settings, "notifications.status")
        mine = [decode(r.value, NotificationStatusEvent) for r in records if r.key == n.encode()]
        derived = [e for e in mine if e.source == "agent:track_deliveries"]
        return derived if len(derived) >= 2 else None

    derived = await eventually(published, what="receipt-derived status", worker=worker)
    # Each once, though the provider sent "delivered" twice, and with the user the statuses name:
    # a receipt tracked before any status (the two topics are consumed in no set order relative
    # to each other) is published once a status has named the user.
    assert sorted((e.payload.state, e.occurred_at) for e in derived) == [
        ("bounced", at(4)),
        ("delivered", at(5)),
    ]
    assert {(e.payload.user_id, e.payload.category) for e in derived} == {("user-1", "account")}


async def test_a_late_bounce_after_delivery_moves_it_on_but_a_late_sending_does_not(
    worker: WorkerProcess,
    worker_settings: Settings,
    producer: AIOKafkaProducer,
    deliveries: DeliveryStore,
) -> None:
    n = f"n-{uuid.uuid4()}"
    sent = status_event(n, "sent", 2, provider="sendgrid", provider_message_id=f"msg-{n}")
    await produce(producer, worker_settings, sent)
    await produce(producer, worker_settings, receipt_event(n, "delivered", 5))

    async def state_is(state: str, steps: int) -> Any:
        found = await deliveries.get(n)
        return found if found and found[0].state == state and len(found[1]) == steps else None

    await eventually(lambda: state_is("delivered", 2), what=f"{n} delivered", worker=worker)
    await produce(producer, worker_settings, status_event(n, "sending", 9))
    await produce(producer, worker_settings, receipt_event(n, "bounced", 7, reason="mailbox full"))
    row, _ = await eventually(lambda: state_is("bounced", 4), what=f"{n} bounced", worker=worker)
    assert (row.last_error, row.delivered_at) == ("mailbox full", at(5))


async def test_a_receipt_for_a_message_never_sent_is_ignored(
    worker: WorkerProcess,
    worker_settings: Settings,
    producer: AIOKafkaProducer,
    deliveries: DeliveryStore,
) -> None:
    """A bounce naming another message (forged, or a provider's mix-up) changes nothing; the
    receipt that names the send, behind it on the same partition, is applied."""
    n = f"n-{uuid.uuid4()}"
    sent = status_event(n, "sent", 2, provider="sendgrid", provider_message_id=f"msg-{n}")
    forged = receipt_event(n, "bounced", 4, reason="forged")
    forged = forged.model_copy(
        update={"payload": forged.payload.model_copy(update={"provider_message_id": "msg-other"})}
    )
    for event in (sent, forged, receipt_event(n, "delivered", 5)):
        await produce(producer, worker_settings, event)

    async def delivered() -> Any:
        found = await deliveries.get(n)
        return found if found and found[0].state == "delivered" else None

    row, timeline = await eventually(delivered, what=f"{n} delivered", worker=worker)
    assert [step.state for step in timeline] == ["sent", "delivered"]
    assert row.last_error is None


async def test_signed_receipts_through_the_api_are_tracked_and_served_back(
    worker: WorkerProcess,
    worker_settings: Settings,
    producer: AIOKafkaProducer,
    aiohttp_client: AiohttpClient,
    api_headers: dict[str, str],
) -> None:
    n, user = f"n-{uuid.uuid4()}", f"u-{uuid.uuid4()}"
    # Sent a minute ago: Twilio's callback carries no time, so the receipt's is its arrival.
    minute_ago_s = (datetime.now(UTC) - T0).total_seconds() - 60
    sent = status_event(n, "sent", minute_ago_s, provider="twilio", user_id=user, channel="sms")
    await produce(producer, worker_settings, sent)
    client = await aiohttp_client(create_app(worker_settings), headers=api_headers)
    # Twilio's own status callback: a form, posted to the send's StatusCallback URL.
    sid = f"SM{uuid.uuid4().hex}"
    # Relayed with a Standard Webhooks signature, which covers the body only: the id is in it.
    raw = f"MessageSid={sid}&MessageStatus=delivered&To=%2B33612345678&notification_id={n}"
    headers = signed(worker_settings, raw.encode(), family="providers", content_type=FORM)
    path = "/v1/webhooks/providers/twilio"
    response = await client.post(path, data=raw.encode(), headers=headers)
    assert response.status == 202, await response.text()

    async def served() -> dict[str, Any] | None:
        answer = await client.get(f"/v1/notifications/{n}")
        found: dict[str, Any] = await answer.json()
        return found if answer.status == 200 and found["state"] == "delivered" else None

    view = await eventually(served, what=f"{n} delivered through the API", worker=worker)
    assert [s["state"] for s in view["timeline"]] == ["sent", "delivered"]
    assert (view["user_id"], view["provider"], view["channel"]) == (user, "twilio", "sms")
    assert view["provider_message_id"] == sid
    listed = await client.get(f"/v1/users/{user}/notifications?status=delivered&channel=sms")
    assert [item["notification_id"] for item in (await listed.json())["items"]] == [n]


async def test_a_bounce_is_reported_by_user_with_its_transition_and_an_earlier_versions_too(
    worker: WorkerProcess,
    worker_settings: Settings,
    producer: AIOKafkaProducer,
    deliveries: DeliveryStore,
) -> None:
    """The tracker publishes a bounce's transition and its suppression report; a transition an
    earlier version published (its own source header, no `reports` header), read back, is
    reported too: that version left its reports to a separate agent."""
    n, user = f"n-{uuid.uuid4()}", f"u-{uuid.uuid4().hex[:12]}"
    sent = status_event(
        n, "sent", 2, user_id=user, provider="sendgrid", provider_message_id=f"msg-{n}"
    )
    await produce(producer, worker_settings, sent)
    reason = "550 5.1.1 mailbox does not exist"
    await produce(producer, worker_settings, receipt_event(n, "bounced", 5, reason=reason))
    row, _ = await eventually(
        lambda: bounced_row(deliveries, n), what=f"{n} bounced", worker=worker
    )
    assert row.user_id == user
    status_records = await topic_records(worker_settings, "notifications.status")
    [transition] = [
        r
        for r in status_records
        if r.key == n.encode() and ("reports", b"inline") in list(r.headers)
    ]
    published = decode(transition.value, NotificationStatusEvent)
    earlier = published.model_copy(
        update={"event_id": uuid.uuid4(), "occurred_at": at(6), "correlation_id": "earlier"}
    )
    topic = topic_catalog(worker_settings).for_topic("notifications.status").name
    own_source = [("source", b"agent:track_deliveries")]
    await producer.send_and_wait(topic, encode(earlier), key=n.encode(), headers=own_source)

    async def reports() -> list[SuppressionEvent] | None:
        records = await topic_records(worker_settings, "notifications.suppressions")
        mine = [decode(r.value, SuppressionEvent) for r in records if r.key == user.encode()]
        return mine if len(mine) >= 2 else None

    found = await eventually(reports, what=f"{user}'s two reports", worker=worker)
    assert sorted((str(r.event_id), r.occurred_at) for r in found) == sorted(
        (str(uuid.uuid5(REPORT_NAMESPACE, str(e.event_id))), e.occurred_at)
        for e in (published, earlier)
    )
    assert {(r.payload.notification_id, r.payload.problem) for r in found} == {  # type: ignore[union-attr]
        (n, "hard_bounce")
    }


async def bounced_row(deliveries: DeliveryStore, n: str) -> Any:
    found = await deliveries.get(n)
    return found if found is not None and found[0].state == "bounced" else None
