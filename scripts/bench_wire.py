"""How many events per second the wire format encodes and decodes, per family, on one core;
then, for every contract's example event, the Avro body as the codec writes it (the compiled
writer of `streams.kafka.avro_writer`, or fastavro for a record it leaves to it) beside
fastavro's `schemaless_writer`, and as the codec reads it (the compiled reader of
`streams.kafka.avro_reader`) beside fastavro's `schemaless_reader`, in µs per event.

Usage: python scripts/bench_wire.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import io
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from pydantic import BaseModel

from schemas import examples
from schemas.auth import AuthEvent, LoginFailed
from schemas.orders import Order, OrderEvent, OrderItem
from schemas.registry import SchemaSet
from schemas.users import (
    CategoryPreferences,
    ChannelSwitches,
    QuietHours,
    UserEvent,
    UserPreferencesUpdated,
)
from streams.kafka.wire import SchemaBook, WireCodec, avro_record, local_codec

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def _envelope(event_type: str) -> dict[str, object]:
    return {
        "event_id": uuid.uuid4(),
        "event_type": event_type,
        "occurred_at": NOW,
        "ingested_at": NOW,
        "source": "bench",
        "correlation_id": "bench",
    }


def samples() -> list[BaseModel]:
    items = [OrderItem(sku=f"SKU-{n}", quantity=n + 1, unit_price_minor=250) for n in range(3)]
    order = Order(
        id="ord_1", user_id="usr_1", status="paid", currency="EUR", total_minor=750, items=items
    )
    switches = ChannelSwitches(email=True, sms=False, push=True, whatsapp=False)
    preferences = UserPreferencesUpdated(
        user_id="usr_1",
        categories=CategoryPreferences(
            security=switches, account=switches, orders=switches, marketing=switches
        ),
        quiet_hours=QuietHours.model_validate({"start": "22:00", "end": "07:00"}),
    )
    failed = LoginFailed(user_id="usr_1", ip="203.0.113.7", user_agent="curl/8", reason="bad")
    return [
        OrderEvent.model_validate({**_envelope("order.paid"), "payload": order}),
        UserEvent.model_validate({**_envelope("user.preferences-updated"), "payload": preferences}),
        AuthEvent.model_validate({**_envelope("auth.login-failed"), "payload": failed}),
    ]


def rate(operation: Callable[[], object], seconds: float) -> float:
    done, started = 0, time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            operation()
        done += 100
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0)
    seconds = parser.parse_args().seconds
    codec: WireCodec = local_codec()
    for event in samples():
        raw = codec.encode(event)
        model = type(event)
        encoded = rate(partial(codec.encode, event), seconds)
        decoded = rate(partial(codec.decode, raw, model), seconds)
        print(
            f"{model.__name__:<10} {len(raw):>4} bytes  "
            f"encode {encoded:>9,.0f}/s  decode {decoded:>9,.0f}/s"
        )
    print("Avro body, µs per event: the codec's (compiled writer, else fastavro) / fastavro's")
    book = SchemaBook.local(SchemaSet.load())
    for event_type in sorted(examples.PAYLOADS):
        subject, record = avro_record(examples.event(event_type))
        schema = book.reader(subject)
        ours = 1e6 / rate(partial(book.write, subject, record), seconds)
        theirs = 1e6 / rate(partial(_fastavro_body, schema, record), seconds)
        print(f"  {event_type:<32} {ours:6.1f} / {theirs:6.1f}")
    print("Avro body read, µs per event: the codec's (compiled reader) / fastavro's")
    for event_type in sorted(examples.PAYLOADS):
        subject, record = avro_record(examples.event(event_type))
        schema = book.reader(subject)
        body = book.write(subject, record)
        ours = 1e6 / rate(partial(book.read, body, 0, schema, subject), seconds)
        theirs = 1e6 / rate(partial(_fastavro_read, schema, body), seconds)
        print(f"  {event_type:<32} {ours:6.1f} / {theirs:6.1f}")


def _fastavro_read(schema: dict[str, Any], body: bytes) -> object:
    return schemaless_reader(
        io.BytesIO(body), schema, None, return_record_name=True, return_record_name_override=True
    )


def _fastavro_body(schema: dict[str, Any], record: object) -> bytes:
    buffer = io.BytesIO()
    schemaless_writer(buffer, schema, record)
    return buffer.getvalue()


if __name__ == "__main__":
    main()
