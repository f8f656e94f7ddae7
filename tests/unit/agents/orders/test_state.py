from __future__ import annotations

import itertools
import json
import uuid
from datetime import timedelta

from agents.orders.state import from_entry, merge, to_entry
from schemas.orders import OrderEvent, OrderView
from streams.stores.order_store import latest_per_order
from tests.unit.agents.factories import T0, order_event


def fold(events: list[OrderEvent]) -> OrderView:
    view: OrderView | None = None
    for event in events:
        view = merge(view, event)
    assert view is not None
    return view


def test_the_first_event_builds_the_view_from_its_payload() -> None:
    event = order_event("o-1", at_s=5, status="paid", quantities=(2, 3), total_minor=4200)
    view = merge(None, event)
    assert view == OrderView(
        order_id="o-1",
        user_id="user-1",
        status="paid",
        currency="EUR",
        total_minor=4200,
        item_count=5,
        last_event_id=event.event_id,
        last_event_type="order.paid",
        last_event_at=event.occurred_at,
        created_at=event.occurred_at,
        updated_at=event.occurred_at,
    )


def test_a_newer_event_replaces_the_state_but_keeps_created_at() -> None:
    created = order_event("o-1", at_s=0)
    paid = order_event("o-1", at_s=60, status="paid", total_minor=999)
    view = fold([created, paid])
    assert (view.status, view.total_minor, view.last_event_id) == ("paid", 999, paid.event_id)
    assert view.created_at == T0
    assert view.updated_at == view.last_event_at == T0 + timedelta(seconds=60)


def test_an_older_event_arriving_late_does_not_overwrite_the_state() -> None:
    paid = order_event("o-1", at_s=60, status="paid")
    late_created = order_event("o-1", at_s=0, status="pending", total_minor=1)
    view = fold([paid, late_created])
    assert view.status == "paid"
    assert view.last_event_id == paid.event_id
    assert view.total_minor == paid.payload.total_minor
    # ...but the order did exist earlier than the first event that arrived said.
    assert view.created_at == T0


def test_on_equal_timestamps_the_later_lifecycle_stage_wins_in_either_order() -> None:
    paid = order_event("o-1", at_s=10, status="paid")
    fulfilled = order_event("o-1", at_s=10, status="fulfilled")
    assert fold([paid, fulfilled]).status == "fulfilled"
    assert fold([fulfilled, paid]).status == "fulfilled"


def test_on_equal_timestamp_and_status_the_event_id_decides() -> None:
    low = order_event("o-1", at_s=10, event_id=uuid.UUID(int=1), total_minor=1)
    high = order_event("o-1", at_s=10, event_id=uuid.UUID(int=2), total_minor=2)
    assert fold([low, high]).last_event_id == high.event_id
    assert fold([high, low]).last_event_id == high.event_id


def test_every_arrival_order_with_duplicates_converges_to_the_same_view() -> None:
    events = [
        order_event("o-1", at_s=0, status="pending"),
        order_event("o-1", at_s=30, status="paid"),
        order_event("o-1", at_s=30, status="cancelled"),
        order_event("o-1", at_s=30, status="cancelled", event_id=uuid.UUID(int=7)),
        order_event("o-1", at_s=20, status="pending", total_minor=5),
    ]
    expected = fold(events)
    assert expected.status == "cancelled"
    assert expected.created_at == T0
    for permutation in itertools.permutations(events):
        replayed = [*permutation, *permutation[:2]]
        assert fold(replayed) == expected, permutation


def test_reapplying_the_same_event_is_a_no_op() -> None:
    event = order_event("o-1", at_s=5, status="paid")
    view = merge(None, event)
    assert merge(view, event) is view


def test_latest_per_order_keeps_the_most_advanced_view_of_each_order() -> None:
    a_old = merge(None, order_event("a", at_s=1))
    a_new = merge(a_old, order_event("a", at_s=9, status="paid"))
    b = merge(None, order_event("b", at_s=5))
    latest = latest_per_order([a_new, b, a_old])
    assert latest == [a_new, b]


def test_latest_per_order_prefers_the_later_of_two_equal_versions() -> None:
    view = merge(None, order_event("a", at_s=5))
    earlier_created = view.model_copy(update={"created_at": T0 - timedelta(days=1)})
    assert latest_per_order([view, earlier_created]) == [earlier_created]


def test_a_table_entry_survives_json_and_gives_back_the_same_view() -> None:
    view = merge(None, order_event("o-1", at_s=5, quantities=(1, 4)))
    entry = json.loads(json.dumps(to_entry(view)))
    assert from_entry(entry) == view
    assert from_entry(None) is None
