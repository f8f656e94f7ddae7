"""Notification routing end to end: events in, `notifications.dispatch` and `.status` read back.

One worker process for the module (starting one is the slow part); tests stay independent by
using their own user ids. Throttles are tightened (3 emails per user and category per hour) and
deferrals are checked every half second so that the tests run in seconds, except the quiet-hours
one, which waits for a real wall-clock minute to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import BaseModel

from schemas.auth import AuthEvent
from schemas.notifications import (
    NotificationDispatch,
    NotificationDispatchEvent,
    NotificationRequestEvent,
    NotificationStatusChanged,
    NotificationStatusEvent,
)
from schemas.orders import OrderEvent
from schemas.users import UserEvent
from streams.kafka.wire import decode, encode
from streams.settings import Settings, ThrottleLimit
from tests.integration.kafka_io import earliest_consumer, topic_catalog
from tests.integration.worker_process import (
    MATERIALIZE_DEADLINE_S,
    OPERATOR_HEADERS,
    WorkerProcess,
    eventually,
    make_worker_settings,
    own_topics,
)

# Per user and category: the opt-in test sends 3 orders emails, the throttle test one more.
EMAIL_LIMIT = 3
ROUTER_SOURCE = "agent:route_notifications"


@dataclass
class Seen:
    dispatches: list[NotificationDispatch] = field(default_factory=list)
    statuses: list[NotificationStatusChanged] = field(default_factory=list)
    # When the router dispatched each notification (the dispatch event's occurred_at).
    routed_at: dict[str, datetime] = field(default_factory=dict)
    consumer: AIOKafkaConsumer | None = None

    def dispatched(self, user_id: str, template: str | None = None) -> list[NotificationDispatch]:
        return [
            d for d in self.dispatches if d.user_id == user_id and template in (None, d.template)
        ]

    def status(self, user_id: str, state: str) -> list[NotificationStatusChanged]:
        return [s for s in self.statuses if s.user_id == user_id and s.state == state]


@pytest.fixture(scope="module")
def worker_settings(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    base = make_worker_settings(stack_settings, tmp_path_factory.mktemp("routing-data"))
    notifications = base.notifications.model_copy(
        update={
            "throttles": (ThrottleLimit(channel="email", limit=EMAIL_LIMIT, window_s=3600),),
            "deferral_check_interval_s": 0.5,
        }
    )
    settings = base.model_copy(update={"notifications": notifications})
    with own_topics(settings):
        yield settings


@pytest.fixture(scope="module")
async def seen(worker_settings: Settings) -> AsyncIterator[Seen]:
    """Everything the router writes, decoded, collected from the start of its two topics."""
    catalog = topic_catalog(worker_settings)
    dispatch = catalog.for_topic("notifications.dispatch").name
    status = catalog.for_topic("notifications.status").name
    async with earliest_consumer(worker_settings, dispatch, status) as consumer:
        collected = Seen(consumer=consumer)

        async def collect() -> None:
            async for record in consumer:
                if record.topic == dispatch:
                    event = decode(record.value, NotificationDispatchEvent)
                    assert record.key == event.payload.notification_id.encode()
                    collected.dispatches.append(event.payload)
                    collected.routed_at[event.payload.notification_id] = event.occurred_at
                else:
                    status_event = decode(record.value, NotificationStatusEvent)
                    assert record.key == status_event.payload.notification_id.encode()
                    if status_event.source == ROUTER_SOURCE:  # not the dispatcher's, if it runs
                        collected.statuses.append(status_event.payload)

        task = asyncio.create_task(collect())
        yield collected
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _envelope(
    event_type: str, payload: dict[str, Any], event_id: uuid.UUID | None = None
) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "event_id": event_id or uuid.uuid4(),
        "event_type": event_type,
        "occurred_at": now,
        "ingested_at": now,
        "source": "test",
        "correlation_id": "corr-routing",
        "payload": payload,
    }


class Events:
    """Produces user, auth and order events for one user, keyed as the API keys them."""

    def __init__(self, producer: AIOKafkaProducer, settings: Settings, user_id: str) -> None:
        self.producer = producer
        self.catalog = topic_catalog(settings)
        self.user_id = user_id

    async def _send(self, topic: str, event: BaseModel, key: str) -> None:
        name = self.catalog.for_topic(topic).name
        await self.producer.send_and_wait(name, encode(event), key=key.encode())

    async def user(self, event_type: str, **payload: Any) -> None:
        event = UserEvent.model_validate(
            _envelope(event_type, {"user_id": self.user_id, **payload})
        )
        await self._send("users.events", event, self.user_id)

    async def created(self, **overrides: Any) -> None:
        fields = {
            "email": f"{self.user_id}@example.com",
            "phone": "+33612345678",
            "locale": "fr-FR",
            "time_zone": "Europe/Paris",
            "push_token": f"token-{self.user_id}",
        }
        await self.user("user.created", **{**fields, **overrides})

    async def preferences(self, quiet_hours: dict[str, str] | None = None, **off: bool) -> None:
        def switches(category: str) -> dict[str, bool]:
            return {
                c: off.get(f"{category}_{c}", True) for c in ("email", "sms", "push", "whatsapp")
            }

        categories = {c: switches(c) for c in ("security", "account", "orders", "marketing")}
        await self.user("user.preferences-updated", categories=categories, quiet_hours=quiet_hours)

    async def auth(self, event_type: str, **payload: Any) -> None:
        event = AuthEvent.model_validate(
            _envelope(event_type, {"user_id": self.user_id, "ip": "203.0.113.7", **payload})
        )
        await self._send("auth.events", event, self.user_id)

    async def order(
        self, event_type: str, order_id: str | None = None, event_id: uuid.UUID | None = None
    ) -> str:
        order_id = order_id or f"o-{uuid.uuid4()}"
        order = {
            "id": order_id,
            "user_id": self.user_id,
            "status": event_type.removeprefix("order."),
            "currency": "EUR",
            "total_minor": 4998,
            "items": [{"sku": "BOOK-1", "quantity": 2, "unit_price_minor": 2499}],
        }
        event = OrderEvent.model_validate(_envelope(event_type, order, event_id))
        await self._send("orders.events", event, order_id)
        return order_id


def new_user() -> str:
    return f"u-{uuid.uuid4().hex[:12]}"


async def dispatches(
    seen: Seen,
    user_id: str,
    count: int,
    worker: WorkerProcess,
    what: str,
    template: str | None = None,
    deadline_s: float = MATERIALIZE_DEADLINE_S,
) -> list[NotificationDispatch]:
    async def probe() -> list[NotificationDispatch] | None:
        found = seen.dispatched(user_id, template)
        return found if len(found) >= count else None

    try:
        return await eventually(probe, what=what, worker=worker, deadline_s=deadline_s)
    except BaseException:
        print("DISPATCHED", [(d.template, d.channel) for d in seen.dispatched(user_id)])
        print("STATUSES", [(d.state, d.reason) for d in seen.statuses if d.user_id == user_id])
        raise


async def caught_up(seen: Seen, worker: WorkerProcess) -> None:
    """Until the collector has read everything written to its topics so far."""
    consumer = seen.consumer
    assert consumer is not None
    partitions = consumer.assignment()
    ends = await consumer.end_offsets(list(partitions))

    async def probe() -> bool | None:
        behind = [tp for tp in partitions if await consumer.position(tp) < ends[tp]]
        return None if behind else True

    await eventually(probe, what="reading the output topics to their end", worker=worker)


async def statuses(
    seen: Seen, user_id: str, state: str, worker: WorkerProcess, count: int = 1
) -> list[NotificationStatusChanged]:
    async def probe() -> list[NotificationStatusChanged] | None:
        found = seen.status(user_id, state)
        return found if len(found) >= count else None

    return await eventually(probe, what=f"{count} {state} status for {user_id}", worker=worker)


async def test_each_rule_reaches_notifications_dispatch(
    worker: WorkerProcess, producer: AIOKafkaProducer, worker_settings: Settings, seen: Seen
) -> None:
    user = new_user()
    events = Events(producer, worker_settings, user)
    await events.created()
    await events.user("user.verified", contact="email")
    await events.auth("auth.password-reset-requested", user_agent="Mozilla/5.0")
    await events.auth("auth.password-changed", user_agent="Mozilla/5.0", via_reset=True)
    await events.auth("auth.suspicious-login", reason="brute-force")
    paid = await events.order("order.paid")
    await events.order("order.fulfilled", order_id=paid)
    found = await dispatches(seen, user, 8, worker, "8 dispatches for the rules")
    got = sorted((d.template, d.channel, d.recipient) for d in found)
    email, phone, token = f"{user}@example.com", "+33612345678", f"token-{user}"
    assert got == sorted(
        [
            ("welcome", "email", email),
            ("verification-confirmed", "email", email),
            ("password-reset", "email", email),
            ("security-alert", "email", email),
            ("security-alert", "email", email),
            ("security-alert", "sms", phone),
            ("order-confirmation", "email", email),  # no sms/whatsapp: never opted in
            ("order-shipped", "push", token),
        ]
    )
    welcome = next(d for d in found if d.template == "welcome")
    assert (welcome.locale, welcome.subject) == ("fr", "Bienvenue sur Tributary")
    confirmation = next(d for d in found if d.template == "order-confirmation")
    assert paid in (confirmation.subject or "")
    assert "49,98\u00a0€" in confirmation.body  # a fr-FR user: French amounts
    assert {d.critical for d in found if d.template in ("password-reset", "security-alert")} == {
        True
    }
    assert len({d.notification_id for d in found}) == 8
    queued = await statuses(seen, user, "queued", worker, count=8)
    assert {s.notification_id for s in queued} == {d.notification_id for d in found}


async def test_opt_ins_choose_channels_and_a_request_may_precede_its_user(
    worker: WorkerProcess, producer: AIOKafkaProducer, worker_settings: Settings, seen: Seen
) -> None:
    user = new_user()
    events = Events(producer, worker_settings, user)
    refunded = await events.order("order.refunded")  # before the user exists: waits for them
    await events.created(push_token=None, locale="de-DE")
    await events.preferences(orders_sms=False)  # whatsapp stays on: opted in
    await dispatches(seen, user, 1, worker, "the refund once the user appears", "order-refunded")
    paid = await events.order("order.paid")
    await events.order("order.fulfilled", order_id=paid)
    found = await dispatches(seen, user, 5, worker, "welcome, refund, paid x2, shipped")
    got = sorted((d.template, d.channel, d.locale) for d in found)
    assert got == [
        ("order-confirmation", "email", "en"),
        ("order-confirmation", "whatsapp", "en"),
        ("order-refunded", "email", "en"),
        ("order-shipped", "email", "en"),  # no push token: email instead
        ("welcome", "email", "en"),  # de-DE falls back to en
    ]
    assert refunded in next(d.body for d in found if d.template == "order-refunded")


async def test_opt_out_suppresses_with_its_reason(
    worker: WorkerProcess, producer: AIOKafkaProducer, worker_settings: Settings, seen: Seen
) -> None:
    user = new_user()
    events = Events(producer, worker_settings, user)
    await events.created()
    await events.preferences(orders_email=False)
    await events.order("order.refunded")
    await events.auth("auth.password-reset-requested")  # critical: preferences do not apply
    (suppressed,) = await statuses(seen, user, "suppressed", worker)
    assert (suppressed.reason, suppressed.channel, suppressed.template) == (
        "opted-out",
        "email",
        "order-refunded",
    )
    found = await dispatches(seen, user, 2, worker, "welcome and reset")
    assert sorted(d.template for d in found) == ["password-reset", "welcome"]


async def test_throttle_and_critical_bypass(
    worker: WorkerProcess, producer: AIOKafkaProducer, worker_settings: Settings, seen: Seen
) -> None:
    user = new_user()
    events = Events(producer, worker_settings, user)
    await events.created()  # welcome: account category, its own count
    for _ in range(EMAIL_LIMIT + 1):
        await events.order("order.refunded")
    for _ in range(EMAIL_LIMIT + 1):
        await events.auth("auth.password-reset-requested")
    (throttled,) = await statuses(seen, user, "suppressed", worker)
    assert throttled.reason is not None
    assert throttled.reason.startswith("throttled")
    found = await dispatches(seen, user, 1 + EMAIL_LIMIT + EMAIL_LIMIT + 1, worker, "all but one")
    templates = [d.template for d in found]
    assert templates.count("order-refunded") == EMAIL_LIMIT
    assert templates.count("password-reset") == EMAIL_LIMIT + 1


def _quiet_until_next_minute(now: datetime) -> tuple[datetime, dict[str, str]]:
    """Quiet hours in UTC from an hour ago to the next whole minute at least 15 s away."""
    end = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    if (end - now).total_seconds() < 15:
        end += timedelta(minutes=1)
    start = end - timedelta(hours=1)
    window = {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M"), "time_zone": "UTC"}
    return end, window


async def test_quiet_hours_defer_until_they_end_but_not_critical_ones(
    worker: WorkerProcess, producer: AIOKafkaProducer, worker_settings: Settings, seen: Seen
) -> None:
    user = new_user()
    events = Events(producer, worker_settings, user)
    await events.created(time_zone="UTC")
    await dispatches(seen, user, 1, worker, "welcome before the quiet hours")
    end, window = _quiet_until_next_minute(datetime.now(UTC))
    await events.preferences(quiet_hours=window)
    await events.order("order.refunded")
    await events.auth("auth.password-changed")
    (deferred,) = await statuses(seen, user, "deferred", worker)
    assert deferred.reason == f"quiet-hours until {end.isoformat(timespec='minutes')}"
    (alert,) = await dispatches(seen, user, 1, worker, "the critical alert", "security-alert")
    # The window ends up to 75 s from its start: wait that long plus the usual deadline.
    wait_s = (end - datetime.now(UTC)).total_seconds() + MATERIALIZE_DEADLINE_S
    (refund,) = await dispatches(
        seen, user, 1, worker, "the refund after", "order-refunded", deadline_s=wait_s
    )
    assert refund.notification_id == deferred.notification_id
    assert seen.routed_at[alert.notification_id] < end <= seen.routed_at[refund.notification_id]
    queued = {s.notification_id for s in seen.status(user, "queued")}
    assert refund.notification_id in queued


async def test_user_deleted_erases_contact_and_cancels_deferred(
    worker: WorkerProcess, producer: AIOKafkaProducer, worker_settings: Settings, seen: Seen
) -> None:
    user = new_user()
    events = Events(producer, worker_settings, user)
    await events.created(time_zone="UTC")
    await dispatches(seen, user, 1, worker, "welcome before the quiet hours")
    now = datetime.now(UTC)
    all_day = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=2)).strftime("%H:%M"),
        "time_zone": "UTC",
    }
    await events.preferences(quiet_hours=all_day)
    await events.order("order.refunded")
    (deferred,) = await statuses(seen, user, "deferred", worker)
    url = f"{worker.web_url}/v1/tables/notification_routing/{user}"
    async with aiohttp.ClientSession(headers=OPERATOR_HEADERS) as http:
        async with http.get(url) as response:
            assert response.status == 200
            entry = (await response.json())["value"]
            assert entry["contact"]["email"] == f"{user}@example.com"
            assert entry["deferred"] == [deferred.notification_id]
        await events.user("user.deleted", reason="user request")
        (cancelled,) = await statuses(seen, user, "cancelled", worker)
        assert (cancelled.notification_id, cancelled.reason) == (
            deferred.notification_id,
            "user-deleted",
        )

        async def erased() -> bool | None:
            async with http.get(url) as response:
                return True if response.status == 404 else None

        await eventually(erased, what=f"routing entry of {user} erased", worker=worker)
        deferred_url = (
            f"{worker.web_url}/v1/tables/notification_deferrals/{deferred.notification_id}"
        )
        async with http.get(deferred_url) as response:
            assert response.status == 404


async def test_a_duplicated_causing_event_dispatches_once(
    worker: WorkerProcess, producer: AIOKafkaProducer, worker_settings: Settings, seen: Seen
) -> None:
    user = new_user()
    events = Events(producer, worker_settings, user)
    await events.created()
    order_id = f"o-{uuid.uuid4()}"
    paid_id = uuid.uuid4()
    await events.order("order.paid", order_id=order_id, event_id=paid_id)
    await events.order("order.paid", order_id=order_id, event_id=paid_id)
    # Same order, so same partition: once the refund is through, both copies were routed.
    await events.order("order.refunded", order_id=order_id)
    await dispatches(seen, user, 1, worker, "the refund after both copies", "order-refunded")
    await caught_up(seen, worker)
    found = seen.dispatched(user)
    assert sorted(d.template for d in found) == ["order-confirmation", "order-refunded", "welcome"]
    assert len(seen.status(user, "queued")) == 3


async def test_an_unrenderable_request_is_dead_lettered_and_routing_goes_on(
    worker: WorkerProcess, producer: AIOKafkaProducer, worker_settings: Settings, seen: Seen
) -> None:
    user = new_user()
    events = Events(producer, worker_settings, user)
    await events.created()
    await dispatches(seen, user, 1, worker, "welcome")
    external = NotificationRequestEvent.model_validate(
        _envelope(
            "notification.requested",
            {
                "notification_id": f"ext-{uuid.uuid4()}",
                "user_id": user,
                "category": "orders",
                "template": "no-such-template",
                "channel": "email",
            },
        )
    )
    requests = events.catalog.for_topic("notifications.requests")
    await producer.send_and_wait(requests.name, encode(external), key=user.encode())
    await events.order("order.refunded")
    await dispatches(seen, user, 1, worker, "the refund after the poison", "order-refunded")
    dead_letters = events.catalog.dead_letters(requests).name
    async with earliest_consumer(worker_settings, dead_letters) as consumer:
        record = await asyncio.wait_for(consumer.getone(), timeout=60)
    assert record.key == user.encode()
    dead = decode(record.value, NotificationRequestEvent)
    assert (dead.event_id, dead.payload) == (external.event_id, external.payload)
    assert dict(record.headers)["dlq.error.type"].endswith(b"TemplateRenderError")
