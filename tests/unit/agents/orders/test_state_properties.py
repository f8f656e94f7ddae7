"""Properties of the order fold: any arrival order, with any duplicates, converges to one view.

The events of an order are generated with colliding times and statuses on purpose (a few seconds
and offsets to choose from), so that ties on `occurred_at` and on the lifecycle rank, broken by
the event id, come up in most examples.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.orders.materializer import fold_record
from agents.orders.state import event_version, from_entry, merge, to_entry
from schemas.orders import ORDER_EVENT_TYPES, OrderEvent, OrderStatus, OrderView
from streams.kafka.wire import decode, encode

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
STATUSES: tuple[OrderStatus, ...] = ("pending", "paid", "fulfilled", "cancelled", "refunded")
# The same instants written with different UTC offsets, as upstreams do.
OFFSETS = (UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5)))


@st.composite
def order_events(draw: st.DrawFn, order_id: str) -> OrderEvent:
    at_s = draw(st.integers(0, 5))
    offset = draw(st.sampled_from(OFFSETS))
    occurred_at = (T0 + timedelta(seconds=at_s)).astimezone(offset)
    event_id = draw(st.uuids(version=4))
    quantities = draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))
    data: dict[str, Any] = {
        "event_id": event_id,
        "event_type": draw(st.sampled_from(ORDER_EVENT_TYPES)),
        "occurred_at": occurred_at,
        "ingested_at": occurred_at + timedelta(seconds=1),
        "source": "test",
        "correlation_id": str(event_id),
        "payload": {
            "id": order_id,
            "user_id": draw(st.sampled_from(("user-1", "user-2"))),
            "status": draw(st.sampled_from(STATUSES)),
            "currency": draw(st.sampled_from(("EUR", "USD"))),
            "total_minor": draw(st.integers(0, 10_000)),
            "items": [
                {"sku": f"sku-{n}", "quantity": q, "unit_price_minor": 100}
                for n, q in enumerate(quantities)
            ],
        },
    }
    return OrderEvent.model_validate(data)


def distinct_ids(events: list[OrderEvent]) -> bool:
    return len({e.event_id for e in events}) == len(events)


# Up to three orders' events, interleaved: each order's fold must ignore the others.
histories = st.lists(
    st.sampled_from(("order-a", "order-b", "order-c")).flatmap(order_events),
    min_size=1,
    max_size=8,
).filter(distinct_ids)


@st.composite
def redelivered(draw: st.DrawFn, events: list[OrderEvent]) -> list[OrderEvent]:
    """`events` in any order, each at least once and some several times."""
    extra = draw(st.lists(st.sampled_from(events), max_size=len(events) * 2))
    shuffled: list[OrderEvent] = draw(st.permutations([*events, *extra]))
    return shuffled


def fold_all(events: list[OrderEvent]) -> dict[str, OrderView]:
    views: dict[str, OrderView] = {}
    for event in events:
        order_id = event.payload.id
        views[order_id] = merge(views.get(order_id), event)
    return views


def fold_through_table(events: list[OrderEvent]) -> dict[bytes, dict[str, Any]]:
    """As the worker does: wire bytes in, JSON entries in the table between events."""
    table: dict[bytes, dict[str, Any]] = {}
    for event in events:
        fold_record(table, encode(event), lambda raw: decode(raw, OrderEvent))
    return table


@settings(max_examples=150)
@given(data=st.data(), events=histories)
def test_any_order_with_duplicates_gives_the_same_views(
    data: st.DataObject, events: list[OrderEvent]
) -> None:
    again = data.draw(redelivered(events))
    assert fold_all(again) == fold_all(events)


@settings(max_examples=100)
@given(data=st.data(), events=histories)
def test_any_order_with_duplicates_gives_the_same_table_entries(
    data: st.DataObject, events: list[OrderEvent]
) -> None:
    """The JSON the table keeps (and the web view serves), not only equal instants."""
    again = data.draw(redelivered(events))
    assert fold_through_table(again) == fold_through_table(events)


@settings(max_examples=150)
@given(events=histories)
def test_the_view_is_the_highest_version_event_created_at_the_earliest(
    events: list[OrderEvent],
) -> None:
    """The documented rule itself, rather than only its order-independence."""
    for order_id, view in fold_all(events).items():
        own = [e for e in events if e.payload.id == order_id]
        latest = max(own, key=event_version)
        assert view.last_event_id == latest.event_id
        assert view.status == latest.payload.status
        assert view.total_minor == latest.payload.total_minor
        assert view.item_count == sum(item.quantity for item in latest.payload.items)
        assert view.updated_at == latest.occurred_at
        assert view.created_at == min(e.occurred_at for e in own)
        assert view.version == event_version(latest)


@settings(max_examples=100)
@given(events=histories)
def test_a_view_survives_its_table_round_trip(events: list[OrderEvent]) -> None:
    for view in fold_all(events).values():
        assert from_entry(to_entry(view)) == view
