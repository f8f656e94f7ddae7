"""Produce one valid `order.created` event to Tributary's `orders.events` topic.

What an upstream system in any language does, shown with stock confluent-kafka: Avro values in
the Confluent wire format, the schema taken from the Schema Registry, the order id as the key.

    python examples/produce_with_confluent.py [--bootstrap HOST:PORT] [--registry-url URL]
        [--topic TOPIC] [--order-id ID]

Defaults (or the environment: KAFKA_BOOTSTRAP, SCHEMA_REGISTRY_URL, TOPIC) fit the local
stack and an API on port 8080, which serves Tributary's schemas read-only under
`/schema-registry`. That registry is read-only, so the serializer must not register a schema:
it uses the latest registered version of the subject `<topic>-value`.

Prints `{"event_id", "topic", "partition", "offset"}` once Kafka acknowledged the record.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, Message, SerializingProducer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import StringSerializer


def order_created(order_id: str) -> dict[str, Any]:
    """The event, with the field names of the Avro schema (`orders.events-value`).

    `payload` is a union in the schema, but `orders.events` has a single branch (the order), so a
    plain dict selects it. (A family whose union has several records, such as `users.events`,
    names the branch with a tuple: `("io.tributary.events.users.UserCreated", {...})`.)
    Timestamps are timezone-aware datetimes; the serializer writes them as milliseconds.
    """
    now = datetime.now(UTC)
    event_id = str(uuid.uuid4())
    return {
        "event_id": event_id,
        "event_type": "order.created",
        "occurred_at": now,
        "ingested_at": now,
        "source": "example:confluent-producer",
        "correlation_id": event_id,
        "causation_id": None,
        "payload": {
            "id": order_id,
            "user_id": "usr_42",
            "status": "pending",
            "currency": "EUR",
            "total_minor": 4998,
            "items": [
                {"sku": "TSHIRT-M-BLUE", "quantity": 2, "unit_price_minor": 1999},
                {"sku": "SOCKS-42", "quantity": 1, "unit_price_minor": 1000},
            ],
        },
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    env = os.environ.get
    parser.add_argument("--bootstrap", default=env("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument(
        "--registry-url",
        default=env("SCHEMA_REGISTRY_URL", "http://127.0.0.1:8080/schema-registry"),
    )
    parser.add_argument("--topic", default=env("TOPIC", "orders.events"))
    parser.add_argument("--order-id", default=f"ord_{uuid.uuid4().hex[:12]}")
    parser.add_argument("--timeout-s", type=float, default=30.0)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    registry = SchemaRegistryClient({"url": args.registry_url})
    value_serializer = AvroSerializer(
        registry,
        conf={"auto.register.schemas": False, "use.latest.version": True},
    )
    producer = SerializingProducer(
        {
            "bootstrap.servers": args.bootstrap,
            "key.serializer": StringSerializer("utf_8"),
            "value.serializer": value_serializer,
            "acks": "all",
            "enable.idempotence": True,
            # Kafka's key partitioner (the Java client's default; librdkafka's own default,
            # consistent_random, hashes keys with CRC-32): a key's events must reach the
            # partition the API and the workers put that key's events in, where its state is.
            "partitioner": "murmur2_random",
        }
    )
    event = order_created(args.order_id)
    outcome: dict[str, Any] = {}

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            outcome["error"] = str(error)
            return
        outcome.update(
            event_id=event["event_id"],
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
        )

    headers = {"event_id": event["event_id"], "event_type": event["event_type"]}
    producer.produce(
        args.topic, key=args.order_id, value=event, headers=headers, on_delivery=delivered
    )
    if producer.flush(args.timeout_s) > 0:
        print(f"not acknowledged within {args.timeout_s} s", file=sys.stderr)
        return 1
    if "error" in outcome:
        print(f"not delivered: {outcome['error']}", file=sys.stderr)
        return 1
    print(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
