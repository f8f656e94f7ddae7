"""Event identity, record building and the once-only delivery flow, with fakes for Redis/Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import NAMESPACE_URL, UUID, uuid5

import pytest

from api.delivery import (
    Delivered,
    Delivery,
    EventSink,
    OutboundRecord,
    deliver_all_once,
    deliver_claimed,
    outbound_record,
)
from api.families import BY_NAME, event_id_for
from api.settlement import Settlements
from schemas.orders import OrderEvent, OrderWebhook
from streams.errors import ServiceUnavailableError
from streams.kafka.catalog import TopicCatalog
from streams.kafka.event_producer import RecordPosition, UnconfirmedDeliveryError
from streams.kafka.wire import local_codec
from streams.settings import KafkaSettings
from streams.stores.webhook_ledger import Claim, Receipt
from tests.unit.fakes import FakeProducer

INGESTED_AT = datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC)
CATALOG = TopicCatalog("t1-", KafkaSettings())
CODEC = local_codec()
ORDERS = BY_NAME["orders"]


def _body(correlation_id: str | None = None) -> OrderWebhook:
    return OrderWebhook.model_validate(
        {
            "type": "order.paid",
            "occurred_at": "2026-01-02T03:04:05+00:00",
            "correlation_id": correlation_id,
            "order": {
                "id": "ord-7",
                "user_id": "usr-1",
                "status": "paid",
                "currency": "EUR",
                "total_minor": 1200,
                "items": [{"sku": "sku-1", "quantity": 2, "unit_price_minor": 600}],
            },
        }
    )


def _record(webhook_id: str = "msg_1", correlation_id: str | None = None) -> OutboundRecord:
    return outbound_record(ORDERS, _body(correlation_id), webhook_id, CATALOG, INGESTED_AT, CODEC)


def test_a_uuid_webhook_id_is_the_event_id() -> None:
    webhook_id = "0b6f5c1e-8a1d-4b7e-9a53-2d7f1c9e4a10"
    assert event_id_for("orders", webhook_id) == UUID(webhook_id)


def test_other_webhook_ids_derive_a_stable_uuid5_per_family() -> None:
    derived = event_id_for("orders", "msg_p5jXN8AQM9LWM0D4loKWxJek")
    assert derived == uuid5(NAMESPACE_URL, "tributary:orders:msg_p5jXN8AQM9LWM0D4loKWxJek")
    assert derived == event_id_for("orders", "msg_p5jXN8AQM9LWM0D4loKWxJek")
    assert derived != event_id_for("users", "msg_p5jXN8AQM9LWM0D4loKWxJek")


def test_the_record_is_the_order_event_keyed_by_order_id_on_the_prefixed_topic() -> None:
    record = _record()
    event = CODEC.decode(record.value, OrderEvent)
    assert record.topic == "t1-orders.events"
    assert record.key == b"ord-7"
    assert event.event_id == record.event_id == event_id_for("orders", "msg_1")
    assert event.event_type == "order.paid"
    assert event.occurred_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert event.ingested_at == INGESTED_AT
    assert event.source == "webhook:orders"
    assert event.correlation_id == str(record.event_id)
    assert event.causation_id is None
    assert event.payload == _body().order
    assert dict(record.headers)["event_type"] == b"order.paid"


def test_the_senders_correlation_id_is_kept() -> None:
    event = CODEC.decode(_record(correlation_id="cart-9").value, OrderEvent)
    assert event.correlation_id == "cart-9"


class FakeLedger:
    def __init__(self, prior: Receipt | None = None, fail_with: Exception | None = None) -> None:
        self.prior = prior
        self.fail_with = fail_with
        self.completed: list[Receipt] = []
        self.released: list[Claim] = []
        self.held: list[Claim] = []
        self.lapsed = False
        self.lapsed_after_hold = False  # the lease ends after the next renewal
        self.renewed = asyncio.Event()  # held once more after the first time
        self.lease_s = 0.03

    async def hold(self, claim: Claim) -> bool:
        self.held.append(claim)
        if len(self.held) >= 2:
            self.renewed.set()
        lapsed = self.lapsed
        self.lapsed = self.lapsed or self.lapsed_after_hold
        return not lapsed

    async def claim(self, source: str, webhook_id: str) -> Claim | Receipt:
        return self.prior or Claim(f"{source}:{webhook_id}", "pending:1")

    async def complete(self, claim: Claim, receipt: Receipt) -> bool:
        if self.fail_with:
            raise self.fail_with
        if self.lapsed:
            return False
        self.completed.append(receipt)
        return True

    async def release(self, claim: Claim) -> None:
        self.released.append(claim)
        if self.fail_with:
            raise self.fail_with


def _delivery(ledger: FakeLedger, sink: EventSink) -> Delivery:
    return Delivery(ledger, sink, Settlements(ledger, settle_s=10.0))


async def _deliver(delivery: Delivery, record: OutboundRecord) -> Delivered:
    """Webhook `msg_1` of the orders family, its one record (as `api.webhooks` sends it)."""
    return await deliver_all_once(delivery, "orders", "msg_1", [record], record.event_id)


async def test_the_first_copy_produces_and_records_its_receipt() -> None:
    ledger, sink, record = FakeLedger(), FakeProducer(), _record()
    delivered = await _deliver(_delivery(ledger, sink), record)
    assert not delivered.duplicate
    assert sink.sent == [(record.topic, record.key, record.value)]
    assert ledger.completed == [Receipt(record.event_id, RecordPosition(record.topic, 3, 0))]


async def test_a_known_webhook_produces_nothing_and_repeats_the_first_receipt() -> None:
    prior = Receipt(event_id_for("orders", "msg_1"), RecordPosition("t1-orders.events", 2, 41))
    ledger, sink = FakeLedger(prior=prior), FakeProducer()
    delivered = await _deliver(_delivery(ledger, sink), _record())
    assert delivered.duplicate
    assert delivered.receipt == prior
    assert sink.sent == []


async def test_a_failed_produce_releases_the_claim_and_propagates() -> None:
    ledger = FakeLedger()
    sink = FakeProducer(fail_with=ServiceUnavailableError("kafka", "down"))
    with pytest.raises(ServiceUnavailableError) as caught:
        await _deliver(_delivery(ledger, sink), _record())
    assert caught.value.service == "kafka"
    assert ledger.released == [Claim("orders:msg_1", "pending:1")]
    assert ledger.completed == []


async def test_a_failed_release_does_not_hide_the_produce_error() -> None:
    ledger = FakeLedger(fail_with=ServiceUnavailableError("redis", "down"))
    sink = FakeProducer(fail_with=ServiceUnavailableError("kafka", "down"))
    with pytest.raises(ServiceUnavailableError) as caught:
        await _deliver(_delivery(ledger, sink), _record())
    assert caught.value.service == "kafka"
    assert len(ledger.released) == 1


async def test_an_acknowledged_event_is_reported_delivered_even_if_the_receipt_is_lost() -> None:
    ledger = FakeLedger(fail_with=ServiceUnavailableError("redis", "down"))
    sink = FakeProducer()
    delivered = await _deliver(_delivery(ledger, sink), _record())
    assert not delivered.duplicate
    assert len(sink.sent) == 1


class UnconfirmedSink:
    """Sends that time out with the record still in the client's hands: each outcome is a
    future the test settles."""

    def __init__(self) -> None:
        self.outcomes: list[asyncio.Future[RecordPosition]] = []

    async def send(
        self, topic: str, key: bytes, value: bytes, headers: object = ()
    ) -> RecordPosition:
        outcome: asyncio.Future[RecordPosition] = asyncio.get_running_loop().create_future()
        self.outcomes.append(outcome)
        raise UnconfirmedDeliveryError("kafka", "no acknowledgement", outcome)


@dataclass
class TimedOut:
    """A webhook answered 503 while its record is still with the client: the settlements
    keeping its claim, the record's outcome (the test settles it), how settlements ended."""

    settlements: Settlements
    outcome: asyncio.Future[RecordPosition]
    settled: list[str]


async def _timed_out(ledger: FakeLedger, settle_s: float = 10.0) -> TimedOut:
    sink, settled = UnconfirmedSink(), []
    settlements = Settlements(ledger, settle_s=settle_s, on_settled=settled.append)
    with pytest.raises(ServiceUnavailableError, match="no acknowledgement"):  # a 503
        await _deliver(Delivery(ledger, sink, settlements), _record())
    [outcome] = sink.outcomes
    return TimedOut(settlements, outcome, settled)


async def test_a_timed_out_send_keeps_the_claim_and_records_the_receipt_when_it_lands() -> None:
    """The chaos run's broker restart: a 503 whose record arrived later. A retry meanwhile
    waits; once it lands the retry is answered with its receipt instead of producing again."""
    ledger = FakeLedger()
    sent = await _timed_out(ledger)
    await ledger.renewed.wait()  # a lease later the claim is renewed again, not released
    assert ledger.released == []
    assert ledger.completed == []
    sent.outcome.set_result(RecordPosition("t1-orders.events", 3, 17))
    await sent.settlements.close(grace_s=10.0)
    event_id = event_id_for("orders", "msg_1")
    assert ledger.completed == [Receipt(event_id, RecordPosition("t1-orders.events", 3, 17))]
    assert ledger.released == []
    assert sent.settled == ["recorded"]


async def test_a_timed_out_send_that_then_fails_releases_the_claim() -> None:
    ledger = FakeLedger()
    sent = await _timed_out(ledger)
    sent.outcome.set_exception(ServiceUnavailableError("kafka", "request timed out"))
    await sent.settlements.close(grace_s=10.0)
    assert ledger.released == [Claim("orders:msg_1", "pending:1")]
    assert ledger.completed == []
    assert sent.settled == ["released"]


async def test_an_outcome_unknown_past_the_settle_time_leaves_the_claim_to_lapse() -> None:
    ledger = FakeLedger()
    sent = await _timed_out(ledger, settle_s=0.05)
    await sent.settlements.close(grace_s=10.0)
    assert (ledger.released, ledger.completed, sent.settled) == ([], [], ["given_up"])


async def test_a_claim_that_lapsed_meanwhile_is_not_released_or_completed() -> None:
    """Another copy may hold the webhook id by then: it is no longer this one's to touch."""
    ledger = FakeLedger()
    ledger.lapsed = True
    sent = await _timed_out(ledger)
    await sent.settlements.close(grace_s=10.0)
    sent.outcome.cancel()
    assert (ledger.released, ledger.completed, sent.settled) == ([], [], ["given_up"])


async def test_a_record_that_arrived_after_its_claim_lapsed_counts_as_given_up() -> None:
    ledger = FakeLedger()
    sent = await _timed_out(ledger)
    ledger.lapsed_after_hold = True
    sent.outcome.set_result(RecordPosition("t1-orders.events", 3, 17))
    await sent.settlements.close(grace_s=10.0)
    assert (ledger.completed, ledger.released, sent.settled) == ([], [], ["given_up"])


async def test_shutting_down_gives_up_pending_settlements() -> None:
    ledger = FakeLedger()
    sent = await _timed_out(ledger)
    await sent.settlements.close(grace_s=0.01)
    sent.outcome.cancel()
    assert (ledger.released, ledger.completed, sent.settled) == ([], [], ["given_up"])
    assert sent.settlements.pending == 0


async def test_a_receipt_found_by_the_admission_produces_nothing() -> None:
    prior = Receipt(event_id_for("orders", "msg_1"), RecordPosition("t1-orders.events", 2, 41))
    ledger, sink, record = FakeLedger(), FakeProducer(), _record()
    delivered = await deliver_claimed(
        _delivery(ledger, sink), prior, "msg_1", [record], record.event_id
    )
    assert delivered == Delivered(prior, duplicate=True)
    assert sink.sent == []


class SilentSink:
    """A send that never answers: the request is cancelled while it waits."""

    def __init__(self) -> None:
        self.waiting = asyncio.Event()

    async def send(
        self, topic: str, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> RecordPosition:
        self.waiting.set()
        await asyncio.Event().wait()
        raise AssertionError("never answered")


async def test_a_request_cancelled_during_its_send_releases_the_claim() -> None:
    ledger, sink = FakeLedger(), SilentSink()
    claim = Claim("orders:msg_1", "pending:7")
    record = _record()
    sending = asyncio.create_task(
        deliver_claimed(_delivery(ledger, sink), claim, "msg_1", [record], record.event_id)
    )
    await sink.waiting.wait()
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending
    assert ledger.released == [claim]
