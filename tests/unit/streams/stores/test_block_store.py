"""Reading blocks back: TTL answers from Redis into decisions (no Redis needed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from streams.stores.block_store import ActiveBlock, Block, active_block, decide


def test_a_missing_key_is_no_block() -> None:
    assert active_block("user", "u1", None, -2) is None


def test_the_remaining_ttl_rounds_up_to_whole_seconds() -> None:
    block = active_block("ip", "192.0.2.1", '{"reason": "r", "event_id": "e"}', 1001)
    assert block == ActiveBlock("ip", "192.0.2.1", 2, "r", "e")


def test_an_unreadable_value_still_blocks() -> None:
    block = active_block("user", "u1", "not json", 500)
    assert block == ActiveBlock("user", "u1", 1, None, None)


def test_the_longest_block_decides_retry_after() -> None:
    a = ActiveBlock("user", "u1", 5, None, None)
    b = ActiveBlock("ip", "192.0.2.1", 30, None, None)
    decision = decide([a, None, b])
    assert (decision.allowed, decision.retry_after_s, decision.blocks) == (False, 30, (a, b))
    assert decide([None, None]).allowed


def test_a_block_encodes_why_and_until_when() -> None:
    event_id = uuid.uuid4()
    until = datetime(2026, 1, 1, tzinfo=UTC)
    encoded = Block("user", "u1", until, "brute-force-user", event_id).encode()
    assert str(event_id) in encoded
    assert until.isoformat() in encoded
