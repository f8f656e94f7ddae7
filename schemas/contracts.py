"""One table of every event family: its topic, subject, models, keys and Avro names.

Everything that must treat the families alike reads this table instead of naming families: the
ingest API (body model, key, envelope), the codec (envelope model <-> Avro subject and payload
record names), the CLI (event type -> family). Topic names here are base names; a deployment's
`Settings.topic_prefix` is applied in `streams`, which this package must not depend on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, get_args
from uuid import UUID

from pydantic import BaseModel

from schemas.analytics import ANALYTICS_RECORDS
from schemas.auth import AUTH_PAYLOADS, AuthEvent, AuthWebhook
from schemas.notifications import (
    NOTIFICATION_DISPATCH_PAYLOADS,
    NOTIFICATION_RECEIPT_PAYLOADS,
    NOTIFICATION_REQUEST_PAYLOADS,
    NOTIFICATION_STATUS_PAYLOADS,
    NotificationDispatchEvent,
    NotificationReceiptEvent,
    NotificationRequestEvent,
    NotificationStatusEvent,
)
from schemas.orders import ORDER_EVENT_TYPES, Order, OrderEvent, OrderWebhook
from schemas.suppressions import SUPPRESSION_PAYLOADS, SuppressionEvent
from schemas.templates import TEMPLATE_PAYLOADS, TemplateEvent
from schemas.users import USER_PAYLOADS, UserEvent, UserWebhook

EventT = TypeVar("EventT", bound=BaseModel)
BodyT = TypeVar("BodyT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class WebhookContract(Generic[BodyT]):
    """How a family arrives by webhook: the body, the object that becomes the payload, the key."""

    body_model: type[BodyT]
    payload_field: str
    key: Callable[[BodyT], str]

    @property
    def event_types(self) -> tuple[str, ...]:
        """The types a webhook may carry (not always all of the topic's: see `schemas.auth`)."""
        return get_args(self.body_model.model_fields["type"].annotation)


@dataclass(frozen=True, slots=True)
class Contract(Generic[EventT]):
    family: str
    topic: str
    event_model: type[EventT]
    # Avro namespace of the topic's records; payload records are named after their model class.
    namespace: str
    payload_models: Mapping[str, type[BaseModel]]
    key: Callable[[EventT], str]
    webhook: WebhookContract[Any] | None = None

    @property
    def subject(self) -> str:
        """The Schema Registry subject of the value schema (TopicNameStrategy, base topic name)."""
        return f"{self.topic}-value"

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(self.payload_models)

    def payload_record(self, event_type: str) -> str:
        """The full Avro name of `event_type`'s payload record: its branch in the payload union."""
        return f"{self.namespace}.{self.payload_models[event_type].__name__}"


class WebhookBody(Protocol):
    """What every webhook body model has, whatever its family."""

    @property
    def type(self) -> str: ...

    @property
    def occurred_at(self) -> datetime: ...

    @property
    def correlation_id(self) -> str | None: ...


def event_from_webhook(
    contract: Contract[EventT],
    body: WebhookBody,
    *,
    event_id: UUID,
    ingested_at: datetime,
    source: str,
) -> EventT:
    """The envelope for an accepted webhook body; its correlation id defaults to the event id."""
    if contract.webhook is None or not isinstance(body, contract.webhook.body_model):
        raise TypeError(f"{type(body).__name__} is not a {contract.family} webhook body")
    return contract.event_model.model_validate(
        {
            "event_id": event_id,
            "event_type": body.type,
            "occurred_at": body.occurred_at,
            "ingested_at": ingested_at,
            "source": source,
            "correlation_id": body.correlation_id or str(event_id),
            "causation_id": None,
            "payload": getattr(body, contract.webhook.payload_field),
        }
    )


CONTRACTS: tuple[Contract[Any], ...] = (
    Contract(
        family="users",
        topic="users.events",
        event_model=UserEvent,
        namespace="io.tributary.events.users",
        payload_models=USER_PAYLOADS,
        key=lambda event: event.payload.user_id,
        webhook=WebhookContract(UserWebhook, "user", key=lambda body: body.user.user_id),
    ),
    Contract(
        family="auth",
        topic="auth.events",
        event_model=AuthEvent,
        namespace="io.tributary.events.auth",
        payload_models=AUTH_PAYLOADS,
        key=lambda event: event.payload.user_id,
        webhook=WebhookContract(AuthWebhook, "auth", key=lambda body: body.auth.user_id),
    ),
    Contract(
        family="orders",
        topic="orders.events",
        event_model=OrderEvent,
        namespace="io.tributary.events.orders",
        payload_models=dict.fromkeys(ORDER_EVENT_TYPES, Order),
        key=lambda event: event.payload.id,
        webhook=WebhookContract(OrderWebhook, "order", key=lambda body: body.order.id),
    ),
    Contract(
        family="notification-requests",
        topic="notifications.requests",
        event_model=NotificationRequestEvent,
        namespace="io.tributary.events.notifications",
        payload_models=NOTIFICATION_REQUEST_PAYLOADS,
        # By user: the router joins requests with the user's contacts (users.events) per partition.
        key=lambda event: event.payload.user_id,
    ),
    Contract(
        family="notification-dispatch",
        topic="notifications.dispatch",
        event_model=NotificationDispatchEvent,
        namespace="io.tributary.events.notifications",
        payload_models=NOTIFICATION_DISPATCH_PAYLOADS,
        key=lambda event: event.payload.notification_id,
    ),
    Contract(
        family="notification-status",
        topic="notifications.status",
        event_model=NotificationStatusEvent,
        namespace="io.tributary.events.notifications",
        payload_models=NOTIFICATION_STATUS_PAYLOADS,
        key=lambda event: event.payload.notification_id,
    ),
    Contract(
        family="notification-receipts",
        topic="notifications.receipts",
        event_model=NotificationReceiptEvent,
        namespace="io.tributary.events.notifications",
        payload_models=NOTIFICATION_RECEIPT_PAYLOADS,
        key=lambda event: event.payload.notification_id,
    ),
    Contract(
        family="notification-suppressions",
        topic="notifications.suppressions",
        event_model=SuppressionEvent,
        namespace="io.tributary.events.notifications",
        payload_models=SUPPRESSION_PAYLOADS,
        # By user: the router keeps a user's suppressed addresses beside the user's contacts.
        key=lambda event: event.payload.user_id,
    ),
)

# The metrics agent's output topics: one record type each, keyed by window and dimension. Not
# in CONTRACTS (not events anyone may produce), but decoded and served like them.
ANALYTICS_CONTRACTS: tuple[Contract[Any], ...] = tuple(
    Contract(
        family=topic.replace(".", "-"),
        topic=topic,
        event_model=model,
        namespace="io.tributary.analytics",
        payload_models={event_type: payload},
        key=lambda event: event.payload.key,
    )
    for topic, (model, event_type, payload) in ANALYTICS_RECORDS.items()
)

# Notification templates: state rather than events (a compacted topic, written by the API's
# operators and the router's first load), so not in CONTRACTS either.
TEMPLATES_CONTRACT: Contract[TemplateEvent] = Contract(
    family="notification-templates",
    topic="notifications.templates",
    event_model=TemplateEvent,
    namespace="io.tributary.templates",
    payload_models=TEMPLATE_PAYLOADS,
    key=lambda event: event.payload.key,
)

BY_FAMILY: Mapping[str, Contract[Any]] = {contract.family: contract for contract in CONTRACTS}
BY_TOPIC: Mapping[str, Contract[Any]] = {contract.topic: contract for contract in CONTRACTS}
_EVERY_TOPIC: tuple[Contract[Any], ...] = (*CONTRACTS, *ANALYTICS_CONTRACTS, TEMPLATES_CONTRACT)
BY_SUBJECT: Mapping[str, Contract[Any]] = {contract.subject: contract for contract in _EVERY_TOPIC}
BY_EVENT_TYPE: Mapping[str, Contract[Any]] = {
    event_type: contract for contract in CONTRACTS for event_type in contract.event_types
}
_BY_MODEL: Mapping[type[BaseModel], Contract[Any]] = {
    contract.event_model: contract for contract in _EVERY_TOPIC
}


def contract_for_model(model: type[EventT]) -> Contract[EventT]:
    """The contract whose envelope model is `model`; `KeyError` if it is not an envelope."""
    return _BY_MODEL[model]
