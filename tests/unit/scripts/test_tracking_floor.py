"""scripts/tracking_floor.py folds as the tracker does on the common path: a floor that skipped
the work (or got the precedence wrong) would make the stage look cheaper than it can be."""

from __future__ import annotations

import random
from datetime import timedelta

from agents.tracking.state import STATE_RANK, Delivery, fold, status_step
from schemas.notifications import NotificationStatusEvent
from scripts.tracking_floor import TrackingFloor
from streams.kafka.wire import decode
from tests.unit.agents.delivery_factories import T0, at, receipt_event, status_event
from tests.unit.agents.tracking.harness import TOPICS, receipt, sent, status


def floor() -> TrackingFloor:
    return TrackingFloor(TOPICS.status, TOPICS.receipts)


def test_a_notifications_records_fold_to_delivered_and_publish_the_transition() -> None:
    tracking = floor()
    records = [
        status(status_event("n1", "queued", 0)),
        status(status_event("n1", "sending", 1, attempt=1)),
        sent("n1", 2),
        receipt(receipt_event("n1", "delivered", 3)),
    ]
    rows, published = tracking.process(records)
    [delivery, *transitions] = rows
    caused_at = T0 - timedelta(seconds=1)
    assert delivery[:6] == ("n1", "user-1", "email", "account", "welcome", caused_at)
    assert delivery[6:9] == ("delivered", STATE_RANK["delivered"], at(3))
    assert delivery[9:12] == (1, at(0), at(3))
    assert [t[1] for t in transitions] == ["queued", "sending", "sent", "delivered"]
    [transition] = published
    event = decode(transition, NotificationStatusEvent)
    assert (event.payload.notification_id, event.payload.state) == ("n1", "delivered")
    assert event.payload.provider_message_id == "msg-n1"
    assert set(tracking.table) == {b"n1"}


def test_a_step_read_again_changes_nothing() -> None:
    tracking = floor()
    queued = status(status_event("n1", "queued", 0))
    tracking.process([queued])
    assert tracking.process([queued]) == ([], [])


def test_the_current_state_follows_the_trackers_precedence_in_any_order() -> None:
    """Statuses arriving in any order: the floor's current state and attempts are the fold's."""
    # A late `retrying` after `delivered`: the state's rank, not the latest time, decides.
    states = [("queued", None), ("sending", 1), ("sent", 1), ("delivered", None), ("retrying", 2)]
    for seed in range(30):
        shuffled = [
            status(status_event("n1", state, n, attempt=attempt))
            for n, (state, attempt) in enumerate(states)
        ]
        random.Random(seed).shuffle(shuffled)
        tracking = floor()
        delivery: Delivery | None = None
        for record in shuffled:
            tracking.process([record])
            step, facts = status_step(decode(record.value, NotificationStatusEvent))
            delivery, _ = fold(delivery, "n1", step, facts)
        assert delivery is not None
        entry = tracking.entries["n1"]
        assert entry["current"][0] == delivery.state
        assert (type(entry["attempts"]), entry["attempts"]) == (int, delivery.attempts)
        assert [s[0] for s in entry["timeline"]] == [s.state for s in delivery.timeline]


def test_a_receipt_that_is_no_delivery_state_is_skipped() -> None:
    assert floor().process([receipt(receipt_event("n1", "opened", 0))]) == ([], [])
