"""scripts/tracking_floor.py folds as the tracker does on the common path: a floor that skipped
the work (or got the precedence wrong) would make the stage look cheaper than it can be."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.tracking.state import STATE_RANK, Delivery, fold, status_step
from schemas.notifications import NotificationReceiptEvent, NotificationStatusEvent
from scripts.tracking_floor import TrackingFloor
from streams.kafka.wire import decode, encode
from streams.runtime import SourceRecord

STATUS, RECEIPTS = "t.status", "t.receipts"
T0 = datetime(2026, 12, 7, 12, tzinfo=UTC)


def status(nid: str, state: str, at: datetime, attempt: int | None = None) -> SourceRecord:
    payload: dict[str, Any] = {
        "notification_id": nid,
        "user_id": "usr_1",
        "state": state,
        "channel": "email",
        "category": "account",
        "template": "welcome",
        "caused_at": T0,
        "attempt": attempt,
    }
    if state == "sent":
        payload |= {"provider": "sendgrid", "provider_message_id": f"msg-{nid}"}
    event = NotificationStatusEvent.model_validate(
        {
            "event_id": uuid.uuid4(),
            "event_type": "notification.status-changed",
            "occurred_at": at,
            "ingested_at": at,
            "source": "router",
            "correlation_id": nid,
            "payload": payload,
        }
    )
    return SourceRecord(STATUS, 0, 0, nid.encode(), encode(event))


def receipt(nid: str, at: datetime) -> SourceRecord:
    event = NotificationReceiptEvent.model_validate(
        {
            "event_id": uuid.uuid4(),
            "event_type": "notification.receipt-received",
            "occurred_at": at,
            "ingested_at": at,
            "source": "provider:sendgrid",
            "correlation_id": nid,
            "payload": {
                "notification_id": nid,
                "provider": "sendgrid",
                "provider_message_id": f"msg-{nid}",
                "state": "delivered",
                "channel": "email",
            },
        }
    )
    return SourceRecord(RECEIPTS, 0, 0, nid.encode(), encode(event))


def test_a_notifications_records_fold_to_delivered_and_publish_the_transition() -> None:
    floor = TrackingFloor(STATUS, RECEIPTS)
    records = [
        status("n1", "queued", T0),
        status("n1", "sending", T0 + timedelta(seconds=1), 1),
        status("n1", "sent", T0 + timedelta(seconds=2), 1),
        receipt("n1", T0 + timedelta(seconds=3)),
    ]
    rows, published = floor.process(records)
    [delivery, *transitions] = rows
    assert delivery[:6] == ("n1", "usr_1", "email", "account", "welcome", T0)
    assert delivery[6:9] == ("delivered", STATE_RANK["delivered"], T0 + timedelta(seconds=3))
    assert delivery[9:12] == (1, T0, T0 + timedelta(seconds=3))
    assert [t[1] for t in transitions] == ["queued", "sending", "sent", "delivered"]
    [transition] = published
    event = decode(transition, NotificationStatusEvent)
    assert (event.payload.notification_id, event.payload.state) == ("n1", "delivered")
    assert event.payload.provider_message_id == "msg-n1"
    assert set(floor.table) == {b"n1"}


def test_a_step_read_again_changes_nothing() -> None:
    floor = TrackingFloor(STATUS, RECEIPTS)
    queued = status("n1", "queued", T0)
    floor.process([queued])
    assert floor.process([queued]) == ([], [])


def test_the_current_state_follows_the_trackers_precedence_in_any_order() -> None:
    """Statuses arriving in any order: the floor's current state and attempts are the fold's."""
    # A late `retrying` after `delivered`: the state's rank, not the latest time, decides.
    states = [("queued", None), ("sending", 1), ("sent", 1), ("delivered", None), ("retrying", 2)]
    for seed in range(30):
        shuffled = [
            status("n1", state, T0 + timedelta(seconds=n), attempt)
            for n, (state, attempt) in enumerate(states)
        ]
        random.Random(seed).shuffle(shuffled)
        floor = TrackingFloor(STATUS, RECEIPTS)
        delivery: Delivery | None = None
        for record in shuffled:
            floor.process([record])
            step, facts = status_step(decode(record.value, NotificationStatusEvent))
            delivery, _ = fold(delivery, "n1", step, facts)
        assert delivery is not None
        entry = floor.entries["n1"]
        assert entry["current"][0] == delivery.state
        assert entry["attempts"] == delivery.attempts
        assert [s[0] for s in entry["timeline"]] == [s.state for s in delivery.timeline]


def test_a_receipt_that_is_no_delivery_state_is_skipped() -> None:
    floor = TrackingFloor(STATUS, RECEIPTS)
    opened = NotificationReceiptEvent.model_validate(
        {
            "event_id": uuid.uuid4(),
            "event_type": "notification.receipt-received",
            "occurred_at": T0,
            "ingested_at": T0,
            "source": "provider:sendgrid",
            "correlation_id": "n1",
            "payload": {
                "notification_id": "n1",
                "provider": "sendgrid",
                "provider_message_id": "msg-n1",
                "state": "opened",
                "channel": "email",
            },
        }
    )
    assert floor.process([SourceRecord(RECEIPTS, 0, 0, b"n1", encode(opened))]) == ([], [])
