"""The suppression list end to end, on the real stack: the worker sends through the provider
sandbox, the sandbox posts its bounce and complaint receipts to the real API, the tracker turns
them into transitions and suppression reports, the router into suppressed addresses (table
and PostgreSQL view); the API lists and lifts them. Also the user.updated
profile notice, to the new and the previous address.

One API, one sandbox and one worker for the module; each test has its own users and addresses.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from agents.routing.router import PREVIOUS_EMAIL
from agents.routing.rules import channel_notification_id
from schemas.auth import AuthEvent
from schemas.notifications import NotificationReceiptEvent
from schemas.orders import OrderEvent
from schemas.users import UserEvent
from streams.kafka.wire import encode
from streams.settings import Settings
from streams.stores.delivery_store import DeliveryRow, DeliveryStore
from tests.integration.agents.conftest import sandboxed_worker_settings
from tests.integration.agents.dispatch_support import sandbox_messages
from tests.integration.kafka_io import topic_catalog
from tests.integration.sandbox_process import SandboxProcess
from tests.integration.worker_process import (
    OPERATOR_HEADERS,
    WorkerProcess,
    eventually,
    own_topics,
)

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def worker_settings(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    # Where the sandbox posts its receipts is known once the API listens (`sandbox_settings`).
    data_dir = tmp_path_factory.mktemp("suppressions-data")
    settings = sandboxed_worker_settings(stack_settings, data_dir)
    with own_topics(settings):
        yield settings


@pytest.fixture(scope="module")
def sandbox_settings(worker_settings: Settings, api_url: str) -> Settings:
    """The sandbox posts its bounce and complaint receipts to the module's API."""
    section = worker_settings.sandbox.model_copy(update={"api_url": api_url})
    return worker_settings.model_copy(update={"sandbox": section})


@pytest.fixture(scope="module")
def worker(sandbox: SandboxProcess, worker: WorkerProcess) -> WorkerProcess:
    """The module's worker (conftest's), started once the sandbox answers."""
    return worker


@pytest.fixture(scope="module")
async def deliveries(worker_settings: Settings) -> AsyncIterator[DeliveryStore]:
    store = DeliveryStore.from_settings(worker_settings.database)
    yield store
    await store.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=OPERATOR_HEADERS) as session:
        yield session


def _envelope(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "event_id": uuid.uuid4(),
        "event_type": event_type,
        "occurred_at": now,
        "ingested_at": now,
        "source": "test",
        "correlation_id": "corr-suppressions",
        "payload": payload,
    }


class User:
    """Produces one user's events, keyed as the API keys them."""

    def __init__(self, producer: AIOKafkaProducer, settings: Settings, **contact: Any) -> None:
        self.producer = producer
        self.catalog = topic_catalog(settings)
        self.id = f"u-{uuid.uuid4().hex[:12]}"
        self.contact = contact

    async def _send(self, topic: str, event: BaseModel, key: str) -> None:
        name = self.catalog.for_topic(topic).name
        await self.producer.send_and_wait(name, encode(event), key=key.encode())

    async def user(self, event_type: str, **payload: Any) -> UserEvent:
        event = UserEvent.model_validate(_envelope(event_type, {"user_id": self.id, **payload}))
        await self._send("users.events", event, self.id)
        return event

    async def created(self) -> UserEvent:
        fields = {"locale": "en", "time_zone": "UTC", **self.contact}
        return await self.user("user.created", **fields)

    async def auth(self, event_type: str) -> AuthEvent:
        payload = {"user_id": self.id, "ip": "203.0.113.7"}
        event = AuthEvent.model_validate(_envelope(event_type, payload))
        await self._send("auth.events", event, self.id)
        return event

    async def order(self, event_type: str) -> OrderEvent:
        order_id = f"o-{uuid.uuid4().hex[:12]}"
        order = {
            "id": order_id,
            "user_id": self.id,
            "status": event_type.removeprefix("order."),
            "currency": "EUR",
            "total_minor": 4998,
            "items": [{"sku": "BOOK-1", "quantity": 2, "unit_price_minor": 2499}],
        }
        event = OrderEvent.model_validate(_envelope(event_type, order))
        await self._send("orders.events", event, order_id)
        return event


def notification_id(event: BaseModel, rule: str, channel: str = "email") -> str:
    return channel_notification_id(str(event.event_id), rule, channel)  # type: ignore[attr-defined]


async def delivery_in(
    deliveries: DeliveryStore, nid: str, states: set[str], worker: WorkerProcess, what: str
) -> DeliveryRow:
    async def probe() -> DeliveryRow | None:
        found = await deliveries.get(nid)
        return found[0] if found is not None and found[0].state in states else None

    return await eventually(probe, what=f"{what}: {nid} in {sorted(states)}", worker=worker)


async def listed(
    http: aiohttp.ClientSession, api_url: str, channel: str, address: str
) -> list[dict[str, Any]]:
    params = {"channel": channel, "address": address}
    async with http.get(f"{api_url}/v1/suppressions", params=params) as answer:
        assert answer.status == 200, await answer.text()
        body = await answer.json()
        items: list[dict[str, Any]] = body["items"]
        return items


async def suppression_of(
    http: aiohttp.ClientSession, api_url: str, channel: str, address: str, worker: WorkerProcess
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        items = await listed(http, api_url, channel, address)
        return items[0] if items else None

    return await eventually(probe, what=f"{channel} {address} suppressed", worker=worker)


WELCOME = "user-created-welcome"


async def suppressed_on_welcome(
    user: User,
    state: str,
    deliveries: DeliveryStore,
    http: aiohttp.ClientSession,
    api_url: str,
    worker: WorkerProcess,
) -> dict[str, Any]:
    """Create the user: its welcome email bounces (or draws a complaint, `state` "spam"), and
    the address appears on the suppression list."""
    created = await user.created()
    welcome = notification_id(created, WELCOME)
    await delivery_in(deliveries, welcome, {state}, worker, f"the welcome email ends {state}")
    found = await suppression_of(http, api_url, "email", user.contact["email"], worker)
    assert (found["user_id"], found["notification_id"]) == (user.id, welcome)
    return found


async def test_a_bounce_suppresses_the_next_notification_to_the_address(
    worker: WorkerProcess,
    producer: AIOKafkaProducer,
    worker_settings: Settings,
    deliveries: DeliveryStore,
    api_url: str,
    http: aiohttp.ClientSession,
) -> None:
    user = User(producer, worker_settings, email=f"{uuid.uuid4().hex[:10]}@bounce.test")
    found = await suppressed_on_welcome(user, "bounced", deliveries, http, api_url, worker)
    assert found["kind"] == "bounced"
    assert found["reason"] == "550 5.1.1 mailbox does not exist"
    assert found["status_reason"].startswith("suppressed: bounced ")

    paid = await user.order("order.paid")
    second = notification_id(paid, "order-paid-confirmation")
    row = await delivery_in(deliveries, second, {"suppressed"}, worker, "the next one is held")
    assert row.reason == found["status_reason"]
    assert row.attempts == 0  # never handed to a provider


async def test_a_spam_complaint_suppresses_the_next_notification_to_the_address(
    worker: WorkerProcess,
    producer: AIOKafkaProducer,
    worker_settings: Settings,
    deliveries: DeliveryStore,
    api_url: str,
    http: aiohttp.ClientSession,
) -> None:
    user = User(producer, worker_settings, email=f"{uuid.uuid4().hex[:10]}@spam.test")
    found = await suppressed_on_welcome(user, "spam", deliveries, http, api_url, worker)
    assert found["kind"] == "complained"
    refunded = await user.order("order.refunded")
    row = await delivery_in(
        deliveries, notification_id(refunded, "order-refunded"), {"suppressed"}, worker, "held"
    )
    assert row.reason == found["status_reason"]
    assert row.reason.startswith("suppressed: complained ")


async def test_a_critical_alert_to_a_suppressed_email_goes_by_sms(
    worker: WorkerProcess,
    producer: AIOKafkaProducer,
    worker_settings: Settings,
    deliveries: DeliveryStore,
    api_url: str,
    http: aiohttp.ClientSession,
    sandbox: SandboxProcess,
) -> None:
    phone = f"+1555{uuid.uuid4().int % 10_000_000:07d}"
    if phone.endswith(("0001", "0002", "0003")):  # the sandbox's bounce/fail/slow numbers
        phone = phone[:-1] + "9"
    email = f"{uuid.uuid4().hex[:10]}@bounce.test"
    user = User(producer, worker_settings, email=email, phone=phone)
    await suppressed_on_welcome(user, "bounced", deliveries, http, api_url, worker)

    reset = await user.auth("auth.password-reset-requested")
    held = await delivery_in(
        deliveries, notification_id(reset, "password-reset"), {"suppressed"}, worker, "email held"
    )
    assert held.reason is not None
    assert held.reason.startswith("suppressed: bounced ")
    sms_id = notification_id(reset, "password-reset", "sms")
    sms = await delivery_in(deliveries, sms_id, {"sent", "delivered"}, worker, "sms instead")
    assert (sms.channel, sms.category) == ("sms", "critical")
    (message,) = await sandbox_messages(sandbox.http_url, sms_id)
    assert (message["channel"], message["recipient"]) == ("sms", phone)


async def test_a_lifted_address_is_sent_to_again(
    worker: WorkerProcess,
    producer: AIOKafkaProducer,
    worker_settings: Settings,
    deliveries: DeliveryStore,
    api_url: str,
    http: aiohttp.ClientSession,
) -> None:
    address = f"{uuid.uuid4().hex[:10]}@bounce.test"
    user = User(producer, worker_settings, email=address)
    await suppressed_on_welcome(user, "bounced", deliveries, http, api_url, worker)

    async with http.delete(f"{api_url}/v1/suppressions/email/{address}") as answer:
        assert answer.status == 204, await answer.text()

    async def gone() -> bool | None:
        return True if not await listed(http, api_url, "email", address) else None

    await eventually(gone, what="the lift applied by the worker", worker=worker)
    refunded = await user.order("order.refunded")
    row = await delivery_in(
        deliveries,
        notification_id(refunded, "order-refunded"),
        {"sent", "delivered", "bounced"},
        worker,
        "sent again after the lift",
    )
    assert row.attempts >= 1
    assert row.provider is not None


async def test_lifting_or_listing_with_bad_input_names_the_field(
    worker: WorkerProcess, api_url: str, http: aiohttp.ClientSession
) -> None:
    cases = [
        ("DELETE", "/v1/suppressions/fax/ada@example.com", 422, "channel"),
        ("DELETE", "/v1/suppressions/email/not-an-address", 422, "address"),
        ("DELETE", "/v1/suppressions/sms/12345", 422, "address"),
        ("DELETE", f"/v1/suppressions/email/{uuid.uuid4().hex}@nobody.test", 404, None),
        ("GET", "/v1/suppressions?channel=fax", 422, "channel"),
        ("GET", "/v1/suppressions?address=ada@example.com", 422, "channel"),
        ("GET", "/v1/suppressions?channel=email&address=nope", 422, "address"),
        ("GET", "/v1/suppressions?limit=0", 422, "limit"),
        ("GET", "/v1/suppressions?cursor=abc", 422, "cursor"),
    ]
    for method, path, status, field in cases:
        async with http.request(method, f"{api_url}{path}") as answer:
            assert answer.status == status, (path, await answer.text())
            assert answer.content_type == PROBLEM
            body = await answer.json()
            if field is not None:
                assert [error["field"] for error in body["errors"]] == [field], (path, body)
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.get(f"{api_url}/v1/suppressions") as answer,
    ):
        assert answer.status == 401


async def test_a_new_email_notifies_both_addresses_and_no_contact_change_none(
    worker: WorkerProcess,
    producer: AIOKafkaProducer,
    worker_settings: Settings,
    deliveries: DeliveryStore,
    sandbox: SandboxProcess,
) -> None:
    old = f"{uuid.uuid4().hex[:10]}@example.com"
    new = f"{uuid.uuid4().hex[:10]}@example.org"
    user = User(producer, worker_settings, email=old, name="Ada Lovelace")
    await user.created()
    rule = "user-updated-profile-notice"
    unchanged = await user.user("user.updated", locale="en-GB", email=old, name="Ada Lovelace")
    changed = await user.user("user.updated", email=new)
    renamed = await user.user("user.updated", name="Ada King")
    to_new = notification_id(changed, rule)
    to_old = notification_id(changed, rule, PREVIOUS_EMAIL)
    to_renamed = notification_id(renamed, rule)
    for nid in (to_new, to_old, to_renamed):
        await delivery_in(deliveries, nid, {"sent", "delivered"}, worker, "profile notice")
    recipients = [
        message["recipient"]
        for nid in (to_new, to_old, to_renamed)
        for message in await sandbox_messages(sandbox.http_url, nid)
    ]
    assert recipients == [new, old, new]
    # A name change alone has no previous address to tell.
    assert await deliveries.get(notification_id(renamed, rule, PREVIOUS_EMAIL)) is None
    # Routed in order on the user's partition: the update before is decided by now.
    assert await deliveries.get(notification_id(unchanged, rule)) is None
    assert await sandbox_messages(sandbox.http_url, notification_id(unchanged, rule)) == []


async def test_a_user_who_moves_to_a_new_address_is_not_held_by_the_old_one(
    worker: WorkerProcess,
    producer: AIOKafkaProducer,
    worker_settings: Settings,
    deliveries: DeliveryStore,
    api_url: str,
    http: aiohttp.ClientSession,
    sandbox: SandboxProcess,
) -> None:
    old = f"{uuid.uuid4().hex[:10]}@bounce.test"
    new = f"{uuid.uuid4().hex[:10]}@example.net"
    user = User(producer, worker_settings, email=old)
    await suppressed_on_welcome(user, "bounced", deliveries, http, api_url, worker)
    moved = await user.user("user.updated", email=new)
    rule = "user-updated-profile-notice"
    # The notice goes to the new address; its copy to the old one is held there.
    sent = {"sent", "delivered"}
    await delivery_in(deliveries, notification_id(moved, rule), sent, worker, "new")
    await delivery_in(
        deliveries, notification_id(moved, rule, PREVIOUS_EMAIL), {"suppressed"}, worker, "old"
    )
    paid = await user.order("order.paid")
    nid = notification_id(paid, "order-paid-confirmation")
    await delivery_in(deliveries, nid, {"sent", "delivered"}, worker, "sent to the new address")
    (message,) = await sandbox_messages(sandbox.http_url, nid)
    assert message["recipient"] == new
    assert await listed(http, api_url, "email", old)  # the old address stays suppressed


async def time_after(moment: datetime) -> datetime:
    """Now, once this machine's clock is past `moment` (a wait of `moment` - now at most)."""
    ahead_s = (moment - datetime.now(UTC)).total_seconds()
    if ahead_s >= 0:
        await asyncio.sleep(ahead_s + 0.01)
    return max(datetime.now(UTC), moment + timedelta(milliseconds=1))


async def soft_bounce(
    producer: AIOKafkaProducer, settings: Settings, delivered: DeliveryRow
) -> None:
    """A provider's late "mailbox full" bounce of a delivered message, as the API would put it
    on `notifications.receipts` (naming the message the provider was sent).

    Late means stamped after the delivery as the provider reported it. SendGrid reports whole
    seconds, which the sandbox rounds up, so the delivery can be stamped up to a second ahead of
    this clock; a bounce stamped before it is older than the delivery, which then rightly stays
    `delivered` (the tracker orders a notification's steps by event time). So the bounce waits
    for the clock to pass the delivery, and each bounce has a time of its own."""
    assert delivered.provider is not None
    assert delivered.provider_message_id is not None
    assert delivered.delivered_at is not None
    envelope = _envelope(
        "notification.receipt-received",
        {
            "notification_id": delivered.notification_id,
            "provider": delivered.provider,
            "provider_message_id": delivered.provider_message_id,
            "state": "bounced",
            "channel": "email",
            "reason": "452 4.2.2 mailbox full",
        },
    )
    envelope["occurred_at"] = await time_after(delivered.delivered_at)
    receipt = NotificationReceiptEvent.model_validate(envelope)
    topic = topic_catalog(settings).for_topic("notifications.receipts").name
    await producer.send_and_wait(topic, encode(receipt), key=delivered.notification_id.encode())


async def soft_bounces_held(
    http: aiohttp.ClientSession, worker: WorkerProcess, user: User, address: str, count: int
) -> None:
    """Wait until the router holds `count` soft bounces of the address (its
    `notification_suppressions` entry for the user, as the worker serves it)."""
    url = f"{worker.web_url}/v1/tables/notification_suppressions/{user.id}"

    async def probe() -> bool | None:
        async with http.get(url) as answer:
            if answer.status == 404:
                return None
            assert answer.status == 200, await answer.text()
            entry = (await answer.json())["value"]["addresses"].get(f"email:{address}")
        return True if entry is not None and len(entry["soft_bounces"]) == count else None

    await eventually(probe, what=f"{count} soft bounces of {address} held", worker=worker)


async def test_three_soft_bounces_suppress_the_address(
    worker: WorkerProcess,
    producer: AIOKafkaProducer,
    worker_settings: Settings,
    deliveries: DeliveryStore,
    api_url: str,
    http: aiohttp.ClientSession,
) -> None:
    address = f"{uuid.uuid4().hex[:10]}@example.com"
    user = User(producer, worker_settings, email=address)
    await user.created()
    sent = []
    for _ in range(3):
        paid = await user.order("order.paid")
        nid = notification_id(paid, "order-paid-confirmation")
        sent.append(await delivery_in(deliveries, nid, {"delivered"}, worker, "delivered"))
    for delivered in sent[:2]:
        await soft_bounce(producer, worker_settings, delivered)
        await delivery_in(deliveries, delivered.notification_id, {"bounced"}, worker, "soft")
    # Two soft bounces, counted by the router before the next one is routed, hold nothing.
    await soft_bounces_held(http, worker, user, address, 2)
    refunded = await user.order("order.refunded")
    nid = notification_id(refunded, "order-refunded")
    await delivery_in(deliveries, nid, {"delivered"}, worker, "still delivered")
    await soft_bounce(producer, worker_settings, sent[2])
    found = await suppression_of(http, api_url, "email", address, worker)
    assert (found["kind"], found["soft_bounces"], found["notification_id"]) == (
        "bounced",
        3,
        sent[2].notification_id,
    )
    assert found["reason"] == "452 4.2.2 mailbox full"
    again = await user.order("order.refunded")
    row = await delivery_in(
        deliveries, notification_id(again, "order-refunded"), {"suppressed"}, worker, "held"
    )
    assert row.reason == found["status_reason"]
