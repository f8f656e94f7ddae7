"""Webhook families: what each inbound webhook kind becomes on Kafka.

The ingest handler is generic; a family supplies the body contract, the topic, the record key and
the body-to-event mapping. Adding the `users` or `auth` family is one more `WebhookFamily` in
`FAMILIES`, with no new handler code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import BaseModel

from schemas.orders import OrderEvent, OrderWebhook
from streams.catalog import TopicCatalog, TopicSpec

BodyT = TypeVar("BodyT", bound=BaseModel)


def event_id_for(family: str, webhook_id: str) -> UUID:
    """The webhook id if it is a UUID, else a UUID derived from it.

    Deterministic, so that every copy of a webhook (including one produced twice because a
    timed-out send reached Kafka after all) carries the same event id for consumers to dedupe on.
    """
    try:
        return UUID(webhook_id)
    except ValueError:
        return uuid5(NAMESPACE_URL, f"tributary:{family}:{webhook_id}")


@dataclass(frozen=True, slots=True)
class Stamp:
    """What ingestion adds to a body to make it an event."""

    event_id: UUID
    ingested_at: datetime
    source: str


@dataclass(frozen=True, slots=True)
class WebhookFamily(Generic[BodyT]):
    name: str
    body_contract: type[BodyT]
    topic: Callable[[TopicCatalog], TopicSpec]
    key: Callable[[BodyT], bytes]
    event_type: Callable[[BodyT], str]
    to_event: Callable[[BodyT, Stamp], BaseModel]

    @property
    def source(self) -> str:
        return f"webhook:{self.name}"

    @property
    def path(self) -> str:
        return f"/v1/webhooks/{self.name}"


def order_event(body: OrderWebhook, stamp: Stamp) -> OrderEvent:
    return OrderEvent(
        event_id=stamp.event_id,
        event_type=body.type,
        occurred_at=body.occurred_at,
        ingested_at=stamp.ingested_at,
        source=stamp.source,
        correlation_id=body.correlation_id or str(stamp.event_id),
        causation_id=None,
        payload=body.order,
    )


ORDERS: WebhookFamily[OrderWebhook] = WebhookFamily(
    name="orders",
    body_contract=OrderWebhook,
    topic=lambda catalog: catalog.orders_events,
    key=lambda body: body.order.id.encode(),
    event_type=lambda body: body.type,
    to_event=order_event,
)

FAMILIES: tuple[WebhookFamily[Any], ...] = (ORDERS,)
