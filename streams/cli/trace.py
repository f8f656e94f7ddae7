"""`tributary trace CORRELATION_ID`: the flow of one causing event, as JSON lines in time order.

Reads every catalog topic with a contract from its oldest retained record to its end as of now
(by hand-assigned partitions, never joining a group), keeps what `streams.cli.flow` selects, and
adds the PostgreSQL views the flow wrote: the order's row for an order event, each
notification's delivery row. One line per step, oldest first by Kafka's timestamp (a view row
right after the flow's latest record about its key). A summary goes to stderr.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from streams.cli.errors import TopicNotFoundError
from streams.cli.flow import Traced, trace
from streams.cli.output import Output
from streams.cli.reader import TopicReader
from streams.cli.tail import BOUNDED_IDLE_TIMEOUT_S, timestamp
from streams.cli.topic_names import TopicRef
from streams.errors import PoisonError
from streams.kafka.catalog import TopicCatalog
from streams.kafka.codec import wire_codec
from streams.kafka.wire import WireCodec
from streams.settings import DatabaseSettings, KafkaProcessSettings
from streams.stores.delivery_store import DeliveryStore
from streams.stores.order_store import OrderStore

# The header the API puts on the records it produces for a request (`api.request_ids`).
REQUEST_ID_HEADER = "request_id"


@dataclass(frozen=True, slots=True)
class Step:
    at: datetime
    line: dict[str, Any]


async def read_topic(
    settings: KafkaProcessSettings, topic: TopicRef, codec: WireCodec
) -> list[Traced]:
    """Every decodable record of `topic` up to its end now; an absent topic has none."""
    contract = topic.contract
    assert contract is not None
    base = topic.name.removeprefix(settings.topic_prefix)
    found: list[Traced] = []
    try:
        async with TopicReader(settings.kafka, topic.name) as reader:
            watermarks = await reader.watermarks()
            starts = {p: low for p, (low, _high) in watermarks.items()}
            ends = {p: high for p, (_low, high) in watermarks.items()}
            async with aclosing(reader.read(starts, ends, BOUNDED_IDLE_TIMEOUT_S)) as records:
                async for record in records:
                    try:
                        event = codec.decode(record.value, contract.event_model)
                    except PoisonError:
                        continue  # a poison record is in no flow (its dead letter says why)
                    found.append(Traced(record, base, event))
    except TopicNotFoundError:
        return []
    return found


def record_step(traced: Traced) -> Step:
    record, event = traced.record, traced.event
    line: dict[str, Any] = {
        "at": timestamp(record.timestamp_ms),
        "topic": traced.topic,
        "partition": record.partition,
        "offset": record.offset,
        "event_type": event.event_type,
        "event_id": str(event.event_id),
        "occurred_at": event.occurred_at.isoformat(),
        "correlation_id": event.correlation_id,
    }
    headers = dict(record.headers)
    if headers.get(REQUEST_ID_HEADER):  # produced by the API: join its log lines on this
        line["request_id"] = headers[REQUEST_ID_HEADER].decode("utf-8", "replace")
    payload = event.payload.model_dump(mode="json")
    for name in ("notification_id", "state", "channel", "provider", "attempt", "reason"):
        if payload.get(name) is not None:
            line[name] = payload[name]
    if traced.topic.startswith("analytics."):
        line["window"] = payload
    elif "notification_id" not in line:
        line["payload"] = payload
    return Step(_parse(line["at"]), line)


def _latest_ms(steps: Sequence[Traced], key_of: Callable[[Traced], str | None]) -> dict[str, int]:
    """Per key, the Kafka time of the flow's latest record about it."""
    latest: dict[str, int] = {}
    for traced in steps:
        key = key_of(traced)
        if key is not None:
            latest[key] = max(latest.get(key, 0), traced.record.timestamp_ms)
    return latest


def _order_id(traced: Traced) -> str | None:
    return str(traced.event.payload.id) if traced.topic == "orders.events" else None


def _notification_id(traced: Traced) -> str | None:
    if not traced.topic.startswith("notifications."):
        return None
    return str(traced.event.payload.notification_id)


async def view_steps(database: DatabaseSettings, steps: Sequence[Traced]) -> list[Step]:
    """The PostgreSQL rows the flow wrote: orders' views and notifications' delivery rows.

    A row is placed right after the flow's latest record about its key (it was written from
    that record or an earlier one); its own times are in the row."""
    orders_at = _latest_ms(steps, _order_id)
    notifications_at = _latest_ms(steps, _notification_id)
    found: list[Step] = []
    orders = OrderStore.from_settings(database)
    try:
        for order_id, at_ms in sorted(orders_at.items()):
            view = await orders.get(order_id)
            if view is not None:
                found.append(_view_step("orders", order_id, at_ms, view))
    finally:
        await orders.close()
    deliveries = DeliveryStore.from_settings(database)
    try:
        for notification_id, at_ms in sorted(notifications_at.items()):
            got = await deliveries.get(notification_id)
            if got is not None:
                delivery, _transitions = got
                view_name = "notification_deliveries"
                found.append(_view_step(view_name, notification_id, at_ms, delivery))
    finally:
        await deliveries.close()
    return found


def _view_step(view: str, key: str, at_ms: int, row: BaseModel) -> Step:
    at = timestamp(at_ms)
    line = {"at": at, "view": view, "key": key, "row": row.model_dump(mode="json")}
    return Step(_parse(at), line)


def _parse(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


def summary(correlation_id: str, steps: Sequence[Traced], views: int, read: int) -> str:
    if not steps:
        return f"trace {correlation_id}: no record carries it ({read} records read)"
    counts = Counter(t.topic for t in steps)
    listed = ", ".join(f"{count} on {topic}" for topic, count in sorted(counts.items()))
    return f"trace {correlation_id}: {listed}; {views} view rows ({read} records read)"


async def trace_command(
    settings: KafkaProcessSettings,
    database: DatabaseSettings | None,
    catalog: TopicCatalog,
    correlation_id: str,
    output: Output,
) -> int:
    """`database` None: topics only (`--no-views`)."""
    codec = await wire_codec(settings)
    topics = [TopicRef(spec.name, spec) for spec in catalog.all()]
    read = await asyncio.gather(
        *(read_topic(settings, topic, codec) for topic in topics if topic.contract is not None)
    )
    records = [traced for found in read for traced in found]
    found = trace(correlation_id, records)
    views = [] if database is None or not found else await view_steps(database, found)
    steps = [record_step(t) for t in found] + views
    for step in sorted(steps, key=lambda s: s.at):
        output.record(step.line)
    output.note(summary(correlation_id, found, len(views), len(records)))
    return 0
