"""request_notifications' batches with fake sinks: requests re-keyed by user, poison aside."""

from __future__ import annotations

from agents.retry import Backoff
from agents.routing.request_batch import RequestBatch
from schemas.auth import AuthEvent
from schemas.notifications import NotificationRequestEvent
from schemas.orders import OrderEvent
from streams.kafka.wire import decode, encode
from streams.runtime import SourceRecord
from tests.unit.agents.notification_factories import NOON, USER, auth_event, order_event
from tests.unit.fakes import FakeSink

AUTH, ORDERS = "auth.events", "orders.events"


def item(topic: str, value: bytes | None) -> SourceRecord:
    return SourceRecord(topic, 0, 0, b"k", value)


async def test_requests_are_rekeyed_by_user_and_poison_goes_to_its_own_dead_letters() -> None:
    requests, auth_dlq, orders_dlq = FakeSink(), FakeSink(), FakeSink()
    batch: RequestBatch[SourceRecord] = RequestBatch(
        decoders={
            AUTH: lambda raw: decode(raw, AuthEvent),
            ORDERS: lambda raw: decode(raw, OrderEvent),
        },
        encode=encode,
        requests=requests,
        dead_letters={AUTH: auth_dlq, ORDERS: orders_dlq},
        describe=lambda record: record,
        clock=lambda: NOON,
        backoff=Backoff(),
    )
    await batch.process(
        [
            item(ORDERS, encode(order_event("order.paid"))),
            item(ORDERS, b"not avro"),
            item(AUTH, encode(auth_event("auth.password-reset-requested"))),
            item(AUTH, encode(auth_event("auth.login-succeeded"))),
        ]
    )
    assert [r.key for r in requests.sent] == [USER.encode(), USER.encode()]
    templates = [decode(r.value, NotificationRequestEvent).payload.template for r in requests.sent]
    assert templates == ["order-confirmation", "password-reset"]
    assert (len(orders_dlq.sent), len(auth_dlq.sent)) == (1, 0)
    assert orders_dlq.sent[0].value == b"not avro"
    assert (batch.stats.requests, batch.stats.dead_letters) == (2, 1)
