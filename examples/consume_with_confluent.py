"""Read Tributary's `orders.events` topic as an analytics consumer, printing JSON lines.

Stock confluent-kafka: the Avro deserializer finds each record's writer schema by the id in the
record (Confluent wire format) in the Schema Registry, so no schema file is needed here.

    python examples/consume_with_confluent.py [--bootstrap HOST:PORT] [--registry-url URL]
        [--topic TOPIC] [--group GROUP] [--max N] [--timeout-s S]

Defaults (or the environment: KAFKA_BOOTSTRAP, SCHEMA_REGISTRY_URL, TOPIC) fit the local stack
and an API on port 8080, which serves Tributary's schemas under `/schema-registry`. Starts at the
oldest record the group has not read, and stops after N records or S seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from datetime import datetime
from typing import Any

from confluent_kafka import DeserializingConsumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import StringDeserializer


def _json_value(value: Any) -> str:
    """Timestamps are read as datetimes (printed in ISO 8601), event ids as UUIDs."""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    env = os.environ.get
    parser.add_argument("--bootstrap", default=env("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument(
        "--registry-url",
        default=env("SCHEMA_REGISTRY_URL", "http://127.0.0.1:8080/schema-registry"),
    )
    parser.add_argument("--topic", default=env("TOPIC", "orders.events"))
    parser.add_argument("--group", default=f"analytics-example-{uuid.uuid4().hex[:8]}")
    parser.add_argument("--max", type=int, default=10, help="stop after this many records")
    parser.add_argument("--timeout-s", type=float, default=30.0, help="stop after this long")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    registry = SchemaRegistryClient({"url": args.registry_url})
    consumer = DeserializingConsumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "key.deserializer": StringDeserializer("utf_8"),
            "value.deserializer": AvroDeserializer(registry),
        }
    )
    consumer.subscribe([args.topic])
    deadline = time.monotonic() + args.timeout_s
    printed = 0
    try:
        while printed < args.max and time.monotonic() < deadline:
            message = consumer.poll(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
            if message is None:
                continue
            if message.error() is not None:
                print(f"consumer error: {message.error()}", file=sys.stderr)
                continue
            record: dict[str, Any] = {
                "topic": message.topic(),
                "partition": message.partition(),
                "offset": message.offset(),
                "key": message.key(),
                "value": message.value(),  # a dict, field names as in the Avro schema
            }
            print(json.dumps(record, default=_json_value), flush=True)
            printed += 1
    finally:
        consumer.close()
    if printed < args.max:
        print(f"stopped after {args.timeout_s} s with {printed} records", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
