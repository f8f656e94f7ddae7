"""What `tributary trace` selects: one causing event's records across topics, in time order."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from streams.cli.flow import Traced, trace
from streams.cli.reader import KafkaRecord
from tests.unit.streams.cli.trace_factories import event, events_window

CID = "cart-42"
NID = "ntf-1"


class Log:
    """Records appended one after another, as Kafka would time them (one ms apart)."""

    def __init__(self) -> None:
        self.records: list[Traced] = []

    def add(self, topic: str, value: BaseModel, at_ms: int | None = None) -> Traced:
        at = at_ms if at_ms is not None else 1_000 + len(self.records)
        record = KafkaRecord(f"t1-{topic}", 0, len(self.records), at, None, None)
        traced = Traced(record, topic, value)
        self.records.append(traced)
        return traced


def notification(event_type: str, at_s: float, correlation_id: str, **payload: Any) -> BaseModel:
    return event(event_type, at_s, correlation_id, notification_id=NID, **payload)


def test_the_cause_its_notification_and_the_records_about_it_are_the_flow_in_time_order() -> None:
    log = Log()
    unrelated = log.add("orders.events", event("order.created", 0, "other-cart"))
    paid = log.add("orders.events", event("order.paid", 1, CID))
    request = log.add(
        "notifications.requests",
        notification("notification.requested", 2, CID, caused_by_event_id=str(paid.event.event_id)),
    )
    dispatch = log.add(
        "notifications.dispatch", notification("notification.dispatch-requested", 3, CID)
    )
    # The tracker's status changes and the provider's receipts carry the notification id only.
    sent = log.add("notifications.status", notification("notification.status-changed", 4, NID))
    receipt = log.add(
        "notifications.receipts", notification("notification.receipt-received", 5, NID)
    )
    other = log.add(
        "notifications.status",
        event("notification.status-changed", 4, "ntf-2", notification_id="ntf-2"),
    )

    steps = trace(CID, log.records)

    assert steps == [paid, request, dispatch, sent, receipt]
    assert unrelated not in steps
    assert other not in steps


def test_the_event_id_of_the_cause_traces_the_same_flow() -> None:
    log = Log()
    paid = log.add("orders.events", event("order.paid", 1, CID))
    request = log.add("notifications.requests", notification("notification.requested", 2, CID))

    assert trace(str(paid.event.event_id), log.records) == [paid]
    assert trace(CID, log.records) == [paid, request]


def test_a_request_naming_the_cause_joins_the_flow_even_under_another_correlation_id() -> None:
    log = Log()
    paid = log.add("orders.events", event("order.paid", 1, CID))
    cause = str(paid.event.event_id)
    request = log.add(
        "notifications.requests",
        notification("notification.requested", 2, "upstream-id", caused_by_event_id=cause),
    )
    status = log.add("notifications.status", notification("notification.status-changed", 3, NID))

    assert trace(CID, log.records) == [paid, request, status]


def test_the_windows_that_counted_a_flow_event_are_in_it_and_no_others() -> None:
    log = Log()
    paid = log.add("orders.events", event("order.paid", 90, CID))
    counted = log.add("analytics.events", events_window("orders", 60, 60), at_ms=9_000)
    hopping = log.add("analytics.events", events_window("orders", 0, 300), at_ms=9_001)
    earlier = log.add("analytics.events", events_window("orders", 0, 60), at_ms=9_002)
    other_family = log.add("analytics.events", events_window("users", 60, 60), at_ms=9_003)

    steps = trace(CID, log.records)

    assert steps == [paid, counted, hopping]
    assert earlier not in steps
    assert other_family not in steps


def test_a_window_published_before_the_event_reached_kafka_did_not_count_it() -> None:
    log = Log()
    closed_before = log.add("analytics.events", events_window("orders", 60, 60), at_ms=500)
    paid = log.add("orders.events", event("order.paid", 90, CID), at_ms=600)

    assert trace(CID, log.records) == [paid]
    assert closed_before not in trace(CID, log.records)


def test_nothing_carries_an_unknown_id() -> None:
    log = Log()
    log.add("orders.events", event("order.paid", 1, CID))
    log.add("analytics.events", events_window("orders", 0, 60))

    assert trace("nobody", log.records) == []
