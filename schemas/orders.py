"""Order events from the upstream commerce platform, and the order view built from them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Literal, get_args
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from schemas.currency import ISO_4217_CODES

OrderEventType = Literal[
    "order.created",
    "order.updated",
    "order.paid",
    "order.fulfilled",
    "order.cancelled",
    "order.refunded",
]
ORDER_EVENT_TYPES: tuple[str, ...] = get_args(OrderEventType)
OrderStatus = Literal["pending", "paid", "fulfilled", "cancelled", "refunded"]

# Later lifecycle stages win a tie on `occurred_at`: an upstream that stamps "paid" and
# "fulfilled" in the same second still ends up fulfilled, whichever arrives first.
LIFECYCLE_RANK: Mapping[OrderStatus, int] = {
    "pending": 0,
    "paid": 1,
    "fulfilled": 2,
    "cancelled": 3,
    "refunded": 4,
}

# When it occurred, then how far along the lifecycle its status is, then its event id.
Version = tuple[datetime, int, UUID]

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]


def _known_currency(code: str) -> str:
    if code not in ISO_4217_CODES:
        raise ValueError("must be an ISO 4217 currency code, such as EUR or USD")
    return code


CurrencyCode = Annotated[str, Field(min_length=3, max_length=3), AfterValidator(_known_currency)]


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderItem(_Contract):
    sku: Annotated[str, Field(min_length=1, max_length=64)]
    quantity: Annotated[int, Field(ge=1, le=1_000_000, strict=True)]
    unit_price_minor: Annotated[int, Field(ge=0, strict=True)]


class Order(_Contract):
    id: Identifier
    user_id: Identifier
    status: OrderStatus
    currency: CurrencyCode
    total_minor: Annotated[int, Field(ge=0, strict=True)]
    items: Annotated[list[OrderItem], Field(min_length=1, max_length=1000)]


class OrderWebhook(_Contract):
    """The body an upstream platform POSTs to `/v1/webhooks/orders`."""

    type: OrderEventType
    occurred_at: AwareDatetime
    correlation_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    order: Order


class OrderEvent(_Contract):
    """An order event as it travels on `orders.events`: the common envelope plus the order."""

    event_id: UUID
    event_type: OrderEventType
    occurred_at: AwareDatetime
    ingested_at: AwareDatetime
    source: str
    correlation_id: str
    causation_id: str | None = None
    payload: Order


class OrderView(_Contract):
    """The latest known state of one order; the `orders` table value and the PostgreSQL row."""

    order_id: str
    user_id: str
    status: OrderStatus
    currency: str
    total_minor: int
    item_count: int
    last_event_id: UUID
    last_event_type: OrderEventType
    last_event_at: datetime
    created_at: datetime
    updated_at: datetime

    @property
    def version(self) -> Version:
        """The version of the event the view was built from (a view keeps that event's status),
        so that the table, a batch and the PostgreSQL row all agree on which state is newer."""
        return (self.last_event_at, LIFECYCLE_RANK[self.status], self.last_event_id)


class OrderHistoryEntry(_Contract):
    """One event as applied to its order: a row of the audit trail (`order_history`).

    `status` is the order's status after the event (unchanged when the event was `ignored`, that
    is older than the state already held), `event_status` the status the event itself carried.
    """

    order_id: str
    event_id: UUID
    event_type: OrderEventType
    occurred_at: datetime
    ingested_at: datetime
    source: str
    correlation_id: str
    causation_id: str | None = None
    event_status: OrderStatus
    status: OrderStatus
    ignored: bool
