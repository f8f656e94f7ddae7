"""How order events fold into the latest state of an order. Pure functions: no Faust, no I/O.

Events arrive at least once and not necessarily in the order they occurred (upstream retries,
replays after a rebalance, a late webhook). The fold therefore has to be order-insensitive: each
event carries a *version* (when it occurred, then how far along the order lifecycle its status
is, then its event id) and the state always reflects the event with the highest version seen so
far. Any permutation of the same events, with any number of duplicates, converges to one view.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.orders import LIFECYCLE_RANK, OrderEvent, OrderHistoryEntry, OrderView, Version


def event_version(event: OrderEvent) -> Version:
    return (event.occurred_at, LIFECYCLE_RANK[event.payload.status], event.event_id)


def merge(current: OrderView | None, event: OrderEvent) -> OrderView:
    """Fold one event into the current view of its order.

    `item_count` is the number of units ordered (the sum of the line quantities), not the number
    of lines: it is what the customer-facing "3 items" means. `created_at` is the earliest
    `occurred_at` seen for the order, so that it too does not depend on arrival order; an older
    event can therefore move `created_at` back, but never touches anything else.
    """
    if current is not None and event_version(event) <= current.version:
        if event.occurred_at < current.created_at:
            return current.model_copy(update={"created_at": event.occurred_at})
        return current
    order = event.payload
    created_at = event.occurred_at
    if current is not None:
        created_at = min(current.created_at, event.occurred_at)
    return OrderView(
        order_id=order.id,
        user_id=order.user_id,
        status=order.status,
        currency=order.currency,
        total_minor=order.total_minor,
        item_count=sum(item.quantity for item in order.items),
        last_event_id=event.event_id,
        last_event_type=event.event_type,
        last_event_at=event.occurred_at,
        created_at=created_at,
        updated_at=event.occurred_at,
    )


def is_stale(current: OrderView | None, event: OrderEvent) -> bool:
    """The event is no newer than the state held: `merge` keeps that state's status."""
    return current is not None and event_version(event) <= current.version


def history_entry(event: OrderEvent, view: OrderView, *, ignored: bool) -> OrderHistoryEntry:
    """The audit-trail row of `event`, folded into `view` (the state it led to)."""
    return OrderHistoryEntry(
        order_id=event.payload.id,
        event_id=event.event_id,
        event_type=event.event_type,
        occurred_at=event.occurred_at,
        ingested_at=event.ingested_at,
        source=event.source,
        correlation_id=event.correlation_id,
        causation_id=event.causation_id,
        event_status=event.payload.status,
        status=view.status,
        ignored=ignored,
    )


def to_entry(view: OrderView) -> dict[str, Any]:
    """The JSON-able form kept in the `orders` table (and served by the worker's web view)."""
    return view.model_dump(mode="json")


def from_entry(entry: Mapping[str, Any] | None) -> OrderView | None:
    return None if entry is None else OrderView.model_validate(entry)
