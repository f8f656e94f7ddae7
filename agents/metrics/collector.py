"""First stage of the metrics agent: a batch of input records -> one partial per partition.

Each event becomes a small set of counters in the pane of its event time (`occurred_at`), and a
batch is reduced to one `MetricsPartial` per input partition, so the aggregator receives a few
records per batch, never one per event. One partial per partition (not per batch) carries that
partition's offset range, which lets the aggregator recognise a partial it has already folded.

Records that do not decode are counted and skipped: the topics' own agents dead-letter them, and
metrics must not hold up (or duplicate) that.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from agents.metrics.windows import Aggregate, MetricsPartial, WindowConfig, latency_bucket, merge
from schemas.analytics import ALL
from schemas.auth import AuthEvent
from schemas.notifications import NotificationStatusEvent
from schemas.orders import OrderEvent
from schemas.users import UserEvent
from streams.errors import PoisonError
from streams.runtime import SourceRecord, source_key

log = logging.getLogger(__name__)

# Input family name -> the envelope model of its topic, as the analytics records name families.
INPUT_MODELS: Mapping[str, type[BaseModel]] = {
    "users": UserEvent,
    "auth": AuthEvent,
    "orders": OrderEvent,
    "notifications": NotificationStatusEvent,
}
# Order event type -> the counter it adds to.
_ORDER_COUNTERS = {
    "order.created": "created",
    "order.paid": "paid",
    "order.cancelled": "cancelled",
    "order.refunded": "refunded",
}
UNKNOWN_CHANNEL = "unknown"

# (topic name, bytes) -> (family, event); raises `PoisonError` for bytes that never decode.
Decode = Callable[[str, bytes | None], tuple[str, BaseModel]]


@dataclass(slots=True)
class CollectorStats:
    batches: int = 0
    events: int = 0
    undecodable: int = 0
    partials: int = 0


def epoch_ms(event: BaseModel) -> int:
    occurred_at = getattr(event, "occurred_at")  # noqa: B009 - every envelope has it
    return int(occurred_at.timestamp() * 1000)


def contribution(family: str, event: Any) -> Aggregate:
    """The counters one event adds to its pane."""
    event_type: str = event.event_type
    counters: Aggregate = {"events": {family: {event_type: 1}}}
    payload = event.payload
    if family == "orders":
        order: Aggregate = {"events": 1}
        counter = _ORDER_COUNTERS.get(event_type)
        if counter is not None:
            order[counter] = 1
        if event_type == "order.paid":
            order["revenue_minor"] = payload.total_minor
        elif event_type == "order.refunded":
            order["refunded_minor"] = payload.total_minor
        counters["orders"] = {payload.currency: order}
    elif family == "auth":
        counters["auth"] = {ALL: {event_type: 1}}
    elif family == "notifications":
        # Read defensively: the status contract grows (states, `caused_at`) independently.
        state = str(getattr(payload, "state", "unknown"))
        channel = getattr(payload, "channel", None) or UNKNOWN_CHANNEL
        delivery: Aggregate = {"outcomes": {state: 1}}
        caused_at = getattr(payload, "caused_at", None)
        if state == "delivered" and caused_at is not None:
            latency_ms = (event.occurred_at - caused_at).total_seconds() * 1000
            delivery["latency"] = {str(latency_bucket(latency_ms)): 1}
        counters["delivery"] = {channel: delivery}
    return counters


class _Partials:
    """One partial per input partition, each covering the offsets of the records it saw."""

    def __init__(self, config: WindowConfig, wall_s: float, *, per_record: bool) -> None:
        """`per_record`: list what each record adds (`MetricsPartial.records`)."""
        self._config = config
        self._wall_s = wall_s
        self._per_record = per_record
        self._by_source: dict[tuple[str, int], MetricsPartial] = {}

    def cover(self, record: SourceRecord) -> MetricsPartial:
        source = (record.topic, record.partition)
        partial = self._by_source.get(source)
        if partial is None:
            partial = self._by_source[source] = MetricsPartial(
                source=source_key(record.topic, record.partition),
                first_offset=record.offset,
                last_offset=record.offset,
                wall_s=self._wall_s,
                records=[] if self._per_record else None,
            )
        partial.last_offset = max(partial.last_offset, record.offset)
        partial.first_offset = min(partial.first_offset, record.offset)
        return partial

    def add(self, partial: MetricsPartial, offset: int, family: str, event: BaseModel) -> None:
        event_ms = epoch_ms(event)
        pane = self._config.pane_of(event_ms)
        counts = contribution(family, event)
        merge(partial.panes.setdefault(pane, {}), counts)
        if partial.records is not None:
            partial.records.append((offset, pane, counts))
        partial.max_event_ms = max(partial.max_event_ms or event_ms, event_ms)

    def all(self) -> list[MetricsPartial]:
        return list(self._by_source.values())


def transition_partials(
    config: WindowConfig, transitions: Iterable[tuple[SourceRecord, BaseModel]], wall_s: float
) -> list[MetricsPartial]:
    """Partials of delivery transitions, as the tracker applies them (the status event of each
    new step, with the record that caused it). Delivery metrics come from there rather than from
    re-reading `notifications.status`: each transition counts once, and no agent consumes every
    status record a second time."""
    partials = _Partials(config, wall_s, per_record=False)
    for record, event in transitions:
        partials.add(partials.cover(record), record.offset, "notifications", event)
    return partials.all()


class MetricsCollector:
    """Reduces batches of input records to partials; see the module docstring."""

    def __init__(self, config: WindowConfig, decode: Decode) -> None:
        self._config = config
        self._decode = decode
        self.stats = CollectorStats()

    def partials(self, records: Iterable[SourceRecord], wall_s: float) -> list[MetricsPartial]:
        partials = _Partials(self._config, wall_s, per_record=True)
        for record in records:
            partial = partials.cover(record)
            self.stats.events += 1
            try:
                family, event = self._decode(record.topic, record.value)
            except PoisonError as exc:
                log.warning(
                    "metrics skip %s[%d]@%d: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    exc,
                )
                self.stats.undecodable += 1
                continue
            partials.add(partial, record.offset, family, event)
        found = partials.all()
        self.stats.batches += 1
        self.stats.partials += len(found)
        return found
