from __future__ import annotations

from dataclasses import dataclass

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
