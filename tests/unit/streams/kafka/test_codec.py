from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

import pytest

from schemas.examples import event
from schemas.orders import OrderEvent
from streams.errors import PoisonError
from streams.kafka.codec import wire_codec


@dataclass(frozen=True)
class NoRegistry:
    """What `wire_codec` reads (`SchemaRegistryConfig`), without a registry."""

    schema_registry_url: str | None = None
    schema_registry_timeout_s: float = 1.0
    topic_prefix: str = "t1-"


async def test_without_a_registry_the_codec_writes_our_own_ids_and_reads_them_back() -> None:
    codec = await wire_codec(NoRegistry())
    order_event = event("order.paid")
    raw = codec.encode(order_event)
    assert raw[0] == 0  # Confluent framing: magic byte, then the schema id
    assert codec.decode(raw, OrderEvent) == order_event


@pytest.mark.parametrize("raw", [None, b"", b"\x00\x00", b"not avro at all"])
async def test_what_does_not_decode_is_poison(raw: bytes | None) -> None:
    codec = await wire_codec(NoRegistry())
    with pytest.raises(PoisonError):
        codec.decode(raw, OrderEvent)


async def test_a_workers_codec_keeps_what_it_encodes_and_the_apis_does_not() -> None:
    """Events stamped in UTC to the millisecond round-trip exactly, so a codec told to keep its
    encodes hands them back; the codec of a process that never reads back keeps none."""
    order_event = event("order.paid")
    utc = order_event.model_copy(update={"occurred_at": order_event.occurred_at.astimezone(UTC)})  # type: ignore[attr-defined]
    workers = await wire_codec(NoRegistry(), recent_encodes=4)
    apis = await wire_codec(NoRegistry())
    assert workers.decode(bytes(bytearray(workers.encode(utc))), OrderEvent) is utc
    assert apis.decode(bytes(bytearray(apis.encode(utc))), OrderEvent) is not utc
