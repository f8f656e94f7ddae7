"""Closed-window results of the metrics agent, on `analytics.events|orders|auth|delivery`.

Each record is ONE window and ONE dimension (an event family, a currency, a channel, or `all`):
flat rows with plain counters are what analytics consumers load most easily (a SQL table per
topic, one row per record), and each row is final (published once, after its window closed).

They travel in the same envelope as every other event (`event_id`, `occurred_at`... `payload`),
so the same Confluent deserializers, the CLI and the registry work on them unchanged. The event
id is derived from the record key (uuid5), so a record published twice (after a crash between
publishing and recording it) carries the same id and key, and consumers can deduplicate on
either. `occurred_at` is the window's end.
"""

from __future__ import annotations

import uuid
from datetime import UTC
from typing import Literal

from pydantic import AwareDatetime

from schemas.envelope import Contract, Envelope

WindowKind = Literal["tumbling", "hopping"]
# The dimension of records that have none (auth: one record per window).
ALL = "all"
# Namespace of the deterministic event ids of window records.
WINDOW_ID_NAMESPACE = uuid.UUID("6f1d0c4e-5a38-4f8e-9b7a-2c4d9e1f3a55")


class WindowResult(Contract):
    """The window every analytics record describes: [window_start, window_end), event time."""

    kind: WindowKind
    window_start: AwareDatetime
    window_end: AwareDatetime
    window_size_s: int
    # Equal to the size for a tumbling window.
    window_step_s: int

    @property
    def dimension(self) -> str:
        return ALL

    @property
    def key(self) -> str:
        """`<kind>:<size>:<window start, RFC 3339 UTC>:<dimension>`, the record key."""
        start = self.window_start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{self.kind}:{self.window_size_s}:{start}:{self.dimension}"


class EventsWindow(WindowResult):
    """Events of one family in the window, in all and by event type."""

    family: str
    events: int
    by_type: dict[str, int]

    @property
    def dimension(self) -> str:
        return self.family


class OrdersWindow(WindowResult):
    """Order events in one currency. Revenue is the sum of `order.paid` totals (minor units)."""

    currency: str
    events: int
    orders_created: int
    orders_paid: int
    revenue_minor: int
    # revenue_minor // orders_paid; null when nothing was paid in the window.
    average_order_value_minor: int | None = None
    cancellations: int
    refunds: int
    refunded_minor: int

    @property
    def dimension(self) -> str:
        return self.currency


class AuthWindow(WindowResult):
    """Authentication events of the window (one record per window)."""

    events: int
    logins: int
    login_failures: int
    suspicious_logins: int
    by_type: dict[str, int]


class DeliveryWindow(WindowResult):
    """Notification outcomes on one channel; latency is event -> delivered, where known."""

    channel: str
    events: int
    outcomes: dict[str, int]
    delivered: int
    failed: int
    bounced: int
    spam: int
    # Delivered notifications whose status carried `caused_at`; the percentiles come from a
    # fixed-bucket histogram (a few percent relative error), null without samples.
    latency_samples: int
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None

    @property
    def dimension(self) -> str:
        return self.channel


class WindowRecord(Envelope):
    @classmethod
    def deterministic_id(cls, window: WindowResult, topic: str) -> uuid.UUID:
        return uuid.uuid5(WINDOW_ID_NAMESPACE, f"{topic}/{window.key}")


class EventsWindowRecord(WindowRecord):
    event_type: Literal["analytics.events-window"]
    payload: EventsWindow


class OrdersWindowRecord(WindowRecord):
    event_type: Literal["analytics.orders-window"]
    payload: OrdersWindow


class AuthWindowRecord(WindowRecord):
    event_type: Literal["analytics.auth-window"]
    payload: AuthWindow


class DeliveryWindowRecord(WindowRecord):
    event_type: Literal["analytics.delivery-window"]
    payload: DeliveryWindow


# Per output topic (base name): the envelope model, its one event type and payload model.
ANALYTICS_RECORDS: dict[str, tuple[type[WindowRecord], str, type[WindowResult]]] = {
    "analytics.events": (EventsWindowRecord, "analytics.events-window", EventsWindow),
    "analytics.orders": (OrdersWindowRecord, "analytics.orders-window", OrdersWindow),
    "analytics.auth": (AuthWindowRecord, "analytics.auth-window", AuthWindow),
    "analytics.delivery": (DeliveryWindowRecord, "analytics.delivery-window", DeliveryWindow),
}
