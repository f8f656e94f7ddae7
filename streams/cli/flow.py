"""Which records make up the flow of one causing event: the selection behind `tributary trace`.

Pure, over records already read and decoded, so it is tested on made-up records. The flow of a
correlation id (a webhook's `correlation_id`, which defaults to its event id; an event id is
accepted too) is:

- the events that carry it: the causing event on its family topic, and the notification
  requests, dispatches and status changes the pipeline derived from it (they copy it);
- every record about the notifications those name, whatever they carry: the tracker's status
  changes and the providers' receipts are correlated by notification id;
- the analytics windows that counted one of those events: same family (or currency, or
  channel), its event time (`occurred_at`) within the window, published after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streams.cli.reader import KafkaRecord

# Topics (base names) whose events the metrics agent counts -> the family its windows name.
COUNTED_FAMILIES = {
    "users.events": "users",
    "auth.events": "auth",
    "orders.events": "orders",
    "notifications.status": "notifications",
}
CAUSE_TOPICS = ("users.events", "auth.events", "orders.events")
UNKNOWN_CHANNEL = "unknown"


@dataclass(frozen=True, slots=True)
class Traced:
    """A decoded record of a catalog topic (`topic`: its base name, without the prefix)."""

    record: KafkaRecord
    topic: str
    event: Any

    @property
    def position(self) -> tuple[str, int, int]:
        return (self.record.topic, self.record.partition, self.record.offset)


def _notification_id(traced: Traced) -> str | None:
    if not traced.topic.startswith("notifications."):
        return None
    found = getattr(traced.event.payload, "notification_id", None)
    return None if found is None else str(found)


def _carries(traced: Traced, correlation_id: str) -> bool:
    event = traced.event
    return bool(event.correlation_id == correlation_id or str(event.event_id) == correlation_id)


def flow_events(correlation_id: str, records: Iterable[Traced]) -> list[Traced]:
    """The records of the flow, analytics windows aside, in no particular order."""
    records = list(records)
    direct = [t for t in records if _carries(t, correlation_id)]
    causes = {str(t.event.event_id) for t in direct if t.topic in CAUSE_TOPICS}
    notifications = {nid for t in direct if (nid := _notification_id(t)) is not None}
    for traced in records:  # requests name their cause even when produced by another system
        caused_by = getattr(traced.event.payload, "caused_by_event_id", None)
        if traced.topic == "notifications.requests" and caused_by in causes:
            notifications.add(str(traced.event.payload.notification_id))
    about = [t for t in records if _notification_id(t) in notifications]
    chosen = {t.position: t for t in (*direct, *about)}
    return list(chosen.values())


def _counted_in(window_topic: str, window: Any, traced: Traced) -> bool:
    """Whether the metrics agent counted `traced` in this analytics window."""
    family = COUNTED_FAMILIES.get(traced.topic)
    if family is None:
        return False
    occurred_at: datetime = traced.event.occurred_at
    if not window.window_start <= occurred_at < window.window_end:
        return False
    payload = traced.event.payload
    if window_topic == "analytics.events":
        return bool(window.family == family)
    if window_topic == "analytics.orders":
        return family == "orders" and window.currency == getattr(payload, "currency", None)
    if window_topic == "analytics.auth":
        return family == "auth"
    if window_topic == "analytics.delivery":
        channel = getattr(payload, "channel", None) or UNKNOWN_CHANNEL
        return family == "notifications" and window.channel == channel
    return False


def counting_windows(flow: Sequence[Traced], records: Iterable[Traced]) -> list[Traced]:
    """The analytics windows that counted an event of `flow`: a window is published once it
    closed, so one published before the event reached Kafka did not count it."""
    return [
        window
        for window in records
        if window.topic.startswith("analytics.")
        and any(
            window.record.timestamp_ms >= event.record.timestamp_ms
            and _counted_in(window.topic, window.event.payload, event)
            for event in flow
        )
    ]


def trace(correlation_id: str, records: Sequence[Traced]) -> list[Traced]:
    """The whole flow, in the order Kafka took its records (then by topic and position)."""
    flow = flow_events(correlation_id, records)
    steps = flow + counting_windows(flow, records)
    return sorted(steps, key=lambda t: (t.record.timestamp_ms, *t.position))
