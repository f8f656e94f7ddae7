"""Blocks on the real Redis: written in one pipeline, read back in one round trip, expiring on
their own, lifted by an operator."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from streams.errors import ServiceUnavailableError
from streams.settings import Settings
from streams.stores.block_store import Block, BlockStore
from tests.integration.api.support import redis_unreachable

EXPIRY_DEADLINE_S = 10.0


@pytest.fixture
async def blocks(settings: Settings) -> AsyncIterator[BlockStore]:
    store = BlockStore.from_settings(settings.redis, settings.topic_prefix)
    yield store
    await store.close()


def block(kind: str, id_: str, seconds: float) -> Block:
    until = datetime.now(UTC) + timedelta(seconds=seconds)
    return Block(kind, id_, until, "brute-force-user", uuid.uuid4())  # type: ignore[arg-type]


async def test_written_blocks_are_read_back_with_their_remaining_time(blocks: BlockStore) -> None:
    user, ip = f"u-{uuid.uuid4()}", "192.0.2.10"
    written = [block("user", user, 120), block("ip", ip, 30)]
    assert await blocks.write(written) == 2

    decision = await blocks.check(user, ip)
    assert not decision.allowed
    assert decision.retry_after_s is not None
    assert 100 < decision.retry_after_s <= 120
    assert [(b.kind, b.id) for b in decision.blocks] == [("user", user), ("ip", ip)]
    assert decision.blocks[0].event_id == str(written[0].event_id)
    assert (await blocks.check(f"u-{uuid.uuid4()}", "192.0.2.11")).allowed
    assert not (await blocks.check(None, ip)).allowed


async def test_a_block_already_over_is_not_written(blocks: BlockStore) -> None:
    user = f"u-{uuid.uuid4()}"
    assert await blocks.write([block("user", user, -1)]) == 0
    assert (await blocks.check(user, None)).allowed


async def test_a_block_expires_on_its_own(blocks: BlockStore) -> None:
    user = f"u-{uuid.uuid4()}"
    await blocks.write([block("user", user, 1.5)])
    assert not (await blocks.check(user, None)).allowed
    deadline = time.monotonic() + EXPIRY_DEADLINE_S
    while not (await blocks.check(user, None)).allowed:
        assert time.monotonic() < deadline, "the block did not expire"
        await asyncio.sleep(0.1)


async def test_an_operator_lifts_a_block_once(blocks: BlockStore) -> None:
    ip = "2001:db8::7"
    await blocks.write([block("ip", ip, 60)])
    assert await blocks.lift("ip", ip)
    assert (await blocks.check(None, ip)).allowed
    assert not await blocks.lift("ip", ip)


async def test_blocks_of_other_prefixes_are_not_seen(
    blocks: BlockStore, settings: Settings
) -> None:
    user = f"u-{uuid.uuid4()}"
    await blocks.write([block("user", user, 60)])
    other = BlockStore.from_settings(settings.redis, "other-")
    try:
        assert (await other.check(user, None)).allowed
    finally:
        await other.close()


async def test_redis_away_is_service_unavailable_naming_redis(settings: Settings) -> None:
    store = BlockStore.from_settings(redis_unreachable(settings).redis, settings.topic_prefix)
    try:
        with pytest.raises(ServiceUnavailableError) as caught:
            await store.check("u1", None)
        assert caught.value.service == "redis"
    finally:
        await store.close()
