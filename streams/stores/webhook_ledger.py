"""Which webhook deliveries have already reached Kafka, kept in Redis for the dedupe window.

Upstream senders retry, and sometimes deliver the same webhook several times at once. Exactly one
copy may produce; the others must answer "duplicate" without producing, yet nobody may be told
"accepted" for an event that is not in Kafka. Hence a two-state entry per webhook id:

* `pending:<token>` with a short lease, set atomically by the one copy that wins `claim`; the
  lease outlives the producer's delivery timeout, so a crashed winner cannot block retries for
  long;
* `done:<receipt>` for the dedupe window, written by `complete` once Kafka acknowledged; it holds
  the event id and record position, so a duplicate can answer with the same event id.

A failed produce `release`s the claim so the sender's retry can succeed; one whose outcome is not
known yet (no acknowledgement in time, the record still with the client) `hold`s it instead,
renewing the lease until the client knows (`api.settlement`). Copies that lose the
race wait (bounded) for the winner to settle. `complete`/`release` only touch the entry if it is
still their own claim, so a winner whose lease ran out never clobbers someone else's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from streams.errors import PoisonError, RetriableError
from streams.kafka.event_producer import RecordPosition
from streams.settings import RedisSettings, WebhookSettings
from streams.stores.redis_client import RedisOwner, redis_client, translate_redis_errors
from streams.stores.script_calls import ScriptCalls

log = logging.getLogger(__name__)

PENDING = "pending:"
DONE = "done:"
# How much longer than the producer's delivery timeout a claim lives.
LEASE_MARGIN_S = 5.0
_FIRST_POLL_S = 0.01
_MAX_POLL_S = 0.2

# `claim(key, token, lease ms)`: the current value, or false after taking the free key: one
# atomic step, so of N copies arriving together exactly one sees false. A function, so that
# another script can claim after a step of its own (`streams.stores.webhook_admission`).
CLAIM_FUNCTION_LUA = """
local function claim(key, token, lease_ms)
  local current = redis.call('GET', key)
  if current then return current end
  redis.call('SET', key, token, 'PX', lease_ms)
  return false
end
"""
_CLAIM_LUA = CLAIM_FUNCTION_LUA + "return claim(KEYS[1], ARGV[1], ARGV[2])\n"
_COMPLETE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
_HOLD_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class DeliveryInProgressError(RetriableError):
    """Another copy of this webhook is still being produced; the sender should retry later."""

    def __init__(self, source: str, webhook_id: str, waited_s: float) -> None:
        super().__init__(
            f"webhook {webhook_id!r} ({source}) is still being delivered after {waited_s:g} s"
        )
        self.webhook_id = webhook_id


class CorruptLedgerEntryError(PoisonError):
    """A `done` entry that cannot be read back; retrying will not fix it."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a completed delivery left behind: enough to answer a duplicate like the original."""

    event_id: uuid.UUID
    position: RecordPosition

    def encode(self) -> str:
        p = self.position
        fields = {"event_id": str(self.event_id), "topic": p.topic}
        return DONE + json.dumps(fields | {"partition": p.partition, "offset": p.offset})

    @classmethod
    def decode(cls, value: str) -> Receipt:
        try:
            fields = json.loads(value.removeprefix(DONE))
            position = RecordPosition(
                str(fields["topic"]), int(fields["partition"]), int(fields["offset"])
            )
            return cls(uuid.UUID(str(fields["event_id"])), position)
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptLedgerEntryError(f"unreadable ledger entry {value!r}") from exc


@dataclass(frozen=True, slots=True)
class Claim:
    """The right, held by exactly one copy of a webhook, to produce its event."""

    key: str
    token: str


class WebhookLedger(RedisOwner):
    """Claims, receipts and releases of webhook ids, one Redis key per (source, webhook id)."""

    def __init__(
        self,
        client: Redis,
        webhook: WebhookSettings,
        *,
        topic_prefix: str,
        delivery_timeout_s: float,
        call_timeout_s: float | None = None,
    ) -> None:
        """`delivery_timeout_s`: how long a produce may take (`KafkaSettings`), which a claim's
        lease outlasts; `topic_prefix` starts every key, as it does every topic;
        `call_timeout_s`: the bound on each pipeline of calls (`ScriptCalls`), None to leave it
        to the client's own per-reply timeout."""
        self._client = client
        self._prefix = topic_prefix
        self._ttl_ms = webhook.dedupe_ttl_s * 1000
        self._lease_ms = int((delivery_timeout_s + LEASE_MARGIN_S) * 1000)
        self._wait_s = webhook.dedupe_wait_s
        self._claim: AsyncScript = client.register_script(_CLAIM_LUA)
        self._complete: AsyncScript = client.register_script(_COMPLETE_LUA)
        self._release: AsyncScript = client.register_script(_RELEASE_LUA)
        self._hold: AsyncScript = client.register_script(_HOLD_LUA)
        self._calls = ScriptCalls(client, timeout_s=call_timeout_s)

    @classmethod
    def from_settings(
        cls,
        redis: RedisSettings,
        webhook: WebhookSettings,
        *,
        topic_prefix: str,
        delivery_timeout_s: float,
    ) -> WebhookLedger:
        """A ledger owning a new client, used only through its calls' pipelines, each bounded
        by the socket timeout as a whole; connections are opened on first use."""
        return cls(
            redis_client(redis, reply_timeouts=False),
            webhook,
            topic_prefix=topic_prefix,
            delivery_timeout_s=delivery_timeout_s,
            call_timeout_s=redis.socket_timeout_s,
        )

    def key(self, source: str, webhook_id: str) -> str:
        # The topic prefix isolates tenants (and tests) sharing one Redis, as it does topics.
        return f"{self._prefix}tributary:webhook-ledger:{source}:{webhook_id}"

    async def claim(self, source: str, webhook_id: str) -> Claim | Receipt:
        """Win the right to produce (a `Claim`), or learn the webhook was delivered (a `Receipt`).

        While another copy holds the claim, poll until it completes (-> its receipt), releases
        (-> claim again) or `dedupe_wait_s` passes (-> `DeliveryInProgressError`).
        """
        claim = self.new_claim(source, webhook_id)
        return await self.claim_after(source, webhook_id, claim, await self._try(claim))

    def new_claim(self, source: str, webhook_id: str) -> Claim:
        """The claim a copy of the webhook tries to take (its key and a token of its own)."""
        return Claim(self.key(source, webhook_id), f"{PENDING}{uuid.uuid4().hex}")

    async def claim_after(
        self, source: str, webhook_id: str, claim: Claim, current: str | bytes | None
    ) -> Claim | Receipt:
        """`claim`, once `claim` was tried and the key found holding `current` (empty or None:
        the try took it); polls while another copy holds the webhook, as `claim` does."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s
        poll_s = _FIRST_POLL_S
        while current:
            value = _text(current)
            if value.startswith(DONE):
                return Receipt.decode(value)
            remaining_s = deadline - loop.time()
            if remaining_s <= 0:
                raise DeliveryInProgressError(source, webhook_id, self._wait_s)
            await asyncio.sleep(min(poll_s, remaining_s))
            poll_s = min(poll_s * 2, _MAX_POLL_S)
            current = await self._try(claim)
        return claim

    async def _try(self, claim: Claim) -> str | bytes | None:
        async with translate_redis_errors():
            current: str | bytes | None = await self._calls.run(
                self._claim, [claim.key], [claim.token, self._lease_ms]
            )
        return current

    async def run_script(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """Run another store's script beside the ledger's calls (one pipeline per loop turn)."""
        async with translate_redis_errors():
            return await self._calls.run(script, keys, args)

    def register_script(self, source: str) -> AsyncScript:
        return self._client.register_script(source)

    async def complete(self, claim: Claim, receipt: Receipt) -> bool:
        """Record the delivery for the dedupe window; False if the claim had already lapsed."""
        async with translate_redis_errors():
            done = await self._calls.run(
                self._complete, [claim.key], [claim.token, receipt.encode(), self._ttl_ms]
            )
        if not done:
            log.warning("claim on %s lapsed before its delivery was recorded", claim.key)
        return bool(done)

    @property
    def lease_s(self) -> float:
        """How long a claim stands unless completed, released or held again."""
        return self._lease_ms / 1000

    @property
    def lease_ms(self) -> int:
        return self._lease_ms

    async def hold(self, claim: Claim) -> bool:
        """Renew the claim's lease; False if it had lapsed (another copy may hold it now)."""
        async with translate_redis_errors():
            held = await self._calls.run(self._hold, [claim.key], [claim.token, self._lease_ms])
        return bool(held)

    async def release(self, claim: Claim) -> None:
        """Give the webhook id back, so that the sender's retry can produce it."""
        async with translate_redis_errors():
            await self._calls.run(self._release, [claim.key], [claim.token])


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
