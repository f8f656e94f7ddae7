"""Input events and fakes for the metrics tests: every field valid, only time and a few vary."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from agents.metrics.collector import MetricsCollector
from agents.metrics.windows import MetricsPartial, WindowConfig
from schemas import examples
from schemas.contracts import BY_EVENT_TYPE
from streams.errors import PoisonError
from streams.runtime import SourceRecord

# A minute boundary: windows of 60 s start here, and so does a 5-minute hopping window.
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
FAMILY_OF_PREFIX = {
    "user": "users",
    "auth": "auth",
    "order": "orders",
    "notification": "notifications",
}


def config(**changes: Any) -> WindowConfig:
    values: dict[str, Any] = {
        "tumbling_s": 60,
        "hopping_s": 300,
        "step_s": 60,
        "grace_s": 30,
        "idle_s": 60.0,
    }
    return WindowConfig.of(**(values | changes))


def event(event_type: str, at_s: float, **payload: Any) -> BaseModel:
    return event_at(event_type, T0 + timedelta(seconds=at_s), **payload)


def event_at(event_type: str, occurred_at: datetime, **payload: Any) -> BaseModel:
    """A valid event of `event_type` (example payload, `payload` changes) at `occurred_at`."""
    event_id = uuid.uuid4()
    model: type[BaseModel] = BY_EVENT_TYPE[event_type].event_model
    return model.model_validate(
        {
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": occurred_at,
            "ingested_at": occurred_at,
            "source": "test",
            "correlation_id": str(event_id),
            "payload": dict(examples.PAYLOADS[event_type]) | payload,
        }
    )


def order(
    event_type: str, at_s: float, currency: str = "EUR", total_minor: int = 1000
) -> BaseModel:
    return event(event_type, at_s, currency=currency, total_minor=total_minor)


def status(
    state: str, at_s: float, channel: str | None = "email", latency_s: float | None = None
) -> BaseModel:
    occurred_at = T0 + timedelta(seconds=at_s)
    caused_at = None if latency_s is None else occurred_at - timedelta(seconds=latency_s)
    return event(
        "notification.status-changed", at_s, state=state, channel=channel, caused_at=caused_at
    )


class Inputs:
    """Records whose bytes are an index into a list of events, and a decoder for them."""

    def __init__(self) -> None:
        self.events: list[BaseModel] = []
        self.offsets: dict[tuple[str, int], int] = {}

    def records(
        self, events: Sequence[BaseModel | bytes], partition: int = 0
    ) -> list[SourceRecord]:
        found = []
        for item in events:
            if isinstance(item, bytes):
                value, topic = item, "bad.events"
            else:
                self.events.append(item)
                value = str(len(self.events) - 1).encode()
                event_type: str = getattr(item, "event_type", "")
                topic = FAMILY_OF_PREFIX[event_type.split(".")[0]]
            offset = self.offsets.get((topic, partition), 0)
            self.offsets[(topic, partition)] = offset + 1
            found.append(SourceRecord(topic, partition, offset, None, value))
        return found

    def decode(self, topic: str, raw: bytes | None) -> tuple[str, BaseModel]:
        if raw is None or not raw.isdigit():
            raise PoisonError("not an event")
        return topic, self.events[int(raw)]

    def partials(
        self, window: WindowConfig, events: Sequence[BaseModel | bytes], wall_s: float = 0.0
    ) -> list[MetricsPartial]:
        return MetricsCollector(window, self.decode).partials(self.records(events), wall_s)


def no_scope(_item: object) -> AbstractContextManager[None]:
    return nullcontext()
