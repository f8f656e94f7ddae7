"""Blocks of users and IPs in Redis: written by the security agent, served by the API.

One key per block, `<prefix>tributary:block:<kind>:<id>`, whose Redis expiry is the block's end:
blocks lift themselves, with no sweeper, and an operator lifts one early by deleting its key.
The expiry is absolute (the burst's event time plus the block length), so a worker re-reading
old events after a restart does not block anyone again once their block has run out.

Writes are batched into one pipeline per agent batch; a check is one round trip for both keys.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from redis.asyncio import Redis

from streams.settings import RedisSettings
from streams.stores.redis_client import RedisOwner, redis_client, translate_redis_errors

BlockKind = Literal["user", "ip"]
BLOCK_KINDS: tuple[BlockKind, ...] = ("user", "ip")


@dataclass(frozen=True, slots=True)
class Block:
    kind: BlockKind
    id: str
    until: datetime
    reason: str
    # The alert that decided it, so that an operator can find the evidence.
    event_id: uuid.UUID

    def encode(self) -> str:
        return json.dumps(
            {"reason": self.reason, "event_id": str(self.event_id), "until": self.until.isoformat()}
        )


@dataclass(frozen=True, slots=True)
class ActiveBlock:
    kind: BlockKind
    id: str
    retry_after_s: int
    reason: str | None
    event_id: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "retry_after_s": self.retry_after_s,
            "reason": self.reason,
            "event_id": self.event_id,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_s: int | None
    blocks: tuple[ActiveBlock, ...]


def active_block(kind: BlockKind, id_: str, value: str | None, ttl_ms: int) -> ActiveBlock | None:
    """A block read back, or None for a missing key (-2) or one already past its expiry."""
    if value is None or ttl_ms == -2:
        return None
    # -1 (no expiry) never comes from `write`; a hand-made key is honoured for a minute.
    retry_after_s = 60 if ttl_ms < 0 else max(1, math.ceil(ttl_ms / 1000))
    try:
        fields = json.loads(value)
        reason, event_id = fields.get("reason"), fields.get("event_id")
    except (ValueError, AttributeError):
        reason, event_id = None, None
    return ActiveBlock(kind, id_, retry_after_s, reason, event_id)


def decide(blocks: Sequence[ActiveBlock | None]) -> Decision:
    active = tuple(block for block in blocks if block is not None)
    if not active:
        return Decision(True, None, ())
    return Decision(False, max(block.retry_after_s for block in active), active)


class BlockStore(RedisOwner):
    def __init__(
        self, client: Redis, topic_prefix: str, clock: Callable[[], float] = time.time
    ) -> None:
        """`topic_prefix` starts every key, so tenants (and tests) can share one Redis."""
        self._client = client
        self._prefix = topic_prefix
        self._clock = clock

    @property
    def client(self) -> Redis:
        """The client, for others sharing it (the rate limiter); this store closes it."""
        return self._client

    @classmethod
    def from_settings(cls, redis: RedisSettings, topic_prefix: str) -> BlockStore:
        return cls(redis_client(redis), topic_prefix)

    def key(self, kind: BlockKind, id_: str) -> str:
        return f"{self._prefix}tributary:block:{kind}:{id_}"

    async def write(self, blocks: Sequence[Block]) -> int:
        """Set every block still running, in one pipeline; returns how many were written."""
        now_ms = int(self._clock() * 1000)
        live = [b for b in blocks if int(b.until.timestamp() * 1000) > now_ms]
        if not live:
            return 0
        async with translate_redis_errors():
            pipe = self._client.pipeline(transaction=False)
            for block in live:
                until_ms = int(block.until.timestamp() * 1000)
                pipe.set(self.key(block.kind, block.id), block.encode(), pxat=until_ms)
            await pipe.execute()
        return len(live)

    async def check(self, user_id: str | None, ip: str | None) -> Decision:
        """Whether the user and the IP may proceed: one round trip for both keys."""
        wanted: list[tuple[BlockKind, str]] = []
        if user_id is not None:
            wanted.append(("user", user_id))
        if ip is not None:
            wanted.append(("ip", ip))
        if not wanted:
            return Decision(True, None, ())
        async with translate_redis_errors():
            pipe = self._client.pipeline(transaction=False)
            for kind, id_ in wanted:
                key = self.key(kind, id_)
                pipe.get(key)
                pipe.pttl(key)
            answers = await pipe.execute()
        return decide(
            [
                active_block(kind, id_, answers[2 * n], int(answers[2 * n + 1]))
                for n, (kind, id_) in enumerate(wanted)
            ]
        )

    async def lift(self, kind: BlockKind, id_: str) -> bool:
        """Remove a block before it runs out; False if there was none."""
        async with translate_redis_errors():
            removed = await self._client.delete(self.key(kind, id_))
        return bool(removed)
