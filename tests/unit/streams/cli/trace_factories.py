"""Real envelopes of every topic a trace reads, for the trace's unit and integration tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from schemas import examples
from schemas.analytics import EventsWindow, EventsWindowRecord
from schemas.contracts import BY_EVENT_TYPE

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def event(event_type: str, at_s: float, correlation_id: str, **payload: Any) -> BaseModel:
    """A valid event of `event_type` (example payload, `payload` changes) at T0 + `at_s`."""
    occurred_at = T0 + timedelta(seconds=at_s)
    model: type[BaseModel] = BY_EVENT_TYPE[event_type].event_model
    return model.model_validate(
        {
            "event_id": uuid.uuid4(),
            "event_type": event_type,
            "occurred_at": occurred_at,
            "ingested_at": occurred_at,
            "source": "test",
            "correlation_id": correlation_id,
            "payload": dict(examples.PAYLOADS[event_type]) | payload,
        }
    )


def events_window(family: str, start_s: float, size_s: int, events: int = 1) -> EventsWindowRecord:
    start = T0 + timedelta(seconds=start_s)
    window = EventsWindow(
        kind="tumbling",
        window_start=start,
        window_end=start + timedelta(seconds=size_s),
        window_size_s=size_s,
        window_step_s=size_s,
        family=family,
        events=events,
        by_type={},
    )
    return EventsWindowRecord(
        event_id=EventsWindowRecord.deterministic_id(window, "analytics.events"),
        event_type="analytics.events-window",
        occurred_at=window.window_end,
        ingested_at=window.window_end,
        source="test",
        correlation_id=window.key,
        payload=window,
    )
