"""One batch of auth records -> table updates, alerts, blocks, re-keyed failures, dead letters.

The body of both security agents (per user on `auth.events`, per IP on the failures re-keyed by
IP), written against small protocols so that it is tested with fakes. Per batch: one send per
output topic and one Redis pipeline, never one per event.

Everything a batch decides is sent before the batch is acknowledged. After a crash the batch is
read again; the rules recognise the events they have counted (by id) and repeat only the alerts
those events raised, under the same ids, so nothing is lost and nothing is counted twice.

A batch is decoded once (`decode_batch`): the per-user agent runs the sessions fold after the
rules on the same batch (`then_decoded`), and hands it the decoded records rather than the bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from agents.dead_letters import set_aside
from agents.retry import Backoff, Sleep, retry_retriable
from agents.security.signals import SUSPICIOUS, Decisions
from schemas.auth import AuthEvent, LoginFailed
from streams.errors import PoisonError, RetriableError
from streams.runtime import OutgoingRecord, RecordSink, SourceRecord
from streams.settings import SecuritySettings
from streams.stores.block_store import Block

log = logging.getLogger(__name__)

E = TypeVar("E")

SecurityTable = MutableMapping[bytes, dict[str, Any]]
Decode = Callable[[bytes | None], AuthEvent]
Encode = Callable[[AuthEvent], bytes]
# The rule: event, the key's current entry, thresholds -> decisions.
Handle = Callable[[AuthEvent, dict[str, Any] | None, SecuritySettings], Decisions]
# The table key of an event (user id, or IP), None for events the rule ignores.
KeyOf = Callable[[AuthEvent], str | None]


@dataclass(frozen=True, slots=True)
class Decoded(Generic[E]):
    """One record of a batch, decoded once for every fold of the agent: its event, or the
    reason it does not decode (`event` is then None)."""

    item: E
    record: SourceRecord
    event: AuthEvent | None
    error: PoisonError | None = None


def decode_batch(
    batch: Sequence[E], describe: Callable[[E], SourceRecord], decode: Decode
) -> list[Decoded[E]]:
    decoded: list[Decoded[E]] = []
    for item in batch:
        record = describe(item)
        try:
            decoded.append(Decoded(item, record, decode(record.value)))
        except PoisonError as exc:
            decoded.append(Decoded(item, record, None, exc))
    return decoded


# A fold run after the rules on the same, already decoded, batch (the sessions tracker's).
DecodedProcess = Callable[[Sequence[Decoded[E]]], Awaitable[None]]


class BlockSink(Protocol):
    async def write(self, blocks: Sequence[Block]) -> int: ...


@dataclass(slots=True)
class SecurityStats:
    batches: int = 0
    events: int = 0
    alerts: int = 0
    blocks: int = 0
    forwarded: int = 0
    dead_letters: int = 0
    retries: int = 0


def user_key(event: AuthEvent) -> str | None:
    if event.event_type == SUSPICIOUS:
        return None  # our own verdicts, read back from the topic we write them to
    return getattr(event.payload, "user_id", None)


def ip_key(event: AuthEvent) -> str | None:
    return event.payload.ip if isinstance(event.payload, LoginFailed) else None


@dataclass(slots=True)
class _Outputs:
    alerts: list[OutgoingRecord]
    blocks: list[Block]
    forwards: list[OutgoingRecord]
    rejected: list[OutgoingRecord]


class SecurityProcessor(Generic[E]):
    def __init__(
        self,
        *,
        table: SecurityTable,
        key_of: KeyOf,
        handle: Handle,
        config: SecuritySettings,
        decode: Decode,
        encode: Encode,
        alerts: RecordSink,
        blocks: BlockSink,
        dead_letters: RecordSink,
        describe: Callable[[E], SourceRecord],
        scope: Callable[[E], AbstractContextManager[None]],
        forward: RecordSink | None = None,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._table = table
        self._key_of = key_of
        self._handle = handle
        self._config = config
        self._decode = decode
        self._encode = encode
        self._alerts = alerts
        self._blocks = blocks
        self._dead_letters = dead_letters
        self._forward = forward
        self._describe = describe
        self._scope = scope
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self.stats = SecurityStats()

    def decode_batch(self, batch: Sequence[E]) -> list[Decoded[E]]:
        return decode_batch(batch, self._describe, self._decode)

    async def process(self, batch: Sequence[E]) -> None:
        await self.process_decoded(self.decode_batch(batch))

    async def process_decoded(self, batch: Sequence[Decoded[E]]) -> None:
        out = _Outputs([], [], [], [])
        for decoded in batch:
            self._one(decoded, out)
        if out.rejected:
            await self._retry(lambda: self._dead_letters.send_all(out.rejected), "dead letters")
            self.stats.dead_letters += len(out.rejected)
        if out.forwards and self._forward is not None:
            forward = self._forward
            await self._retry(lambda: forward.send_all(out.forwards), "re-keyed failures")
            self.stats.forwarded += len(out.forwards)
        # Blocks first: whoever acts on an alert (a notification, an analyst) finds them in place.
        if out.blocks:
            self.stats.blocks += await self._retry(lambda: self._blocks.write(out.blocks), "blocks")
        if out.alerts:
            await self._retry(lambda: self._alerts.send_all(out.alerts), "alerts")
            self.stats.alerts += len(out.alerts)
        self.stats.batches += 1
        self.stats.events += len(batch)

    def _one(self, decoded: Decoded[E], out: _Outputs) -> None:
        item, record, event = decoded.item, decoded.record, decoded.event
        if event is None:
            if decoded.error is not None:
                out.rejected.append(set_aside(record, decoded.error))
            return
        key = self._key_of(event)
        if key is None:
            return
        table_key = key.encode()
        with self._scope(item):
            decisions = self._handle(event, self._table.get(table_key), self._config)
            if decisions.entry is not None:
                self._table[table_key] = decisions.entry
        for alert in decisions.alerts:
            user_id = getattr(alert.payload, "user_id", key)
            out.alerts.append(OutgoingRecord(key=user_id.encode(), value=self._encode(alert)))
        out.blocks.extend(decisions.blocks)
        ip = ip_key(event)
        if decisions.forward_by_ip and ip is not None:
            # The original bytes, re-keyed: the per-IP agent reads the very same event.
            out.forwards.append(OutgoingRecord(key=ip.encode(), value=record.value))

    async def _retry(self, operation: Callable[[], Awaitable[Any]], what: str) -> Any:
        return await retry_retriable(
            operation,
            backoff=self._backoff,
            what=f"sending {what}",
            sleep=self._sleep,
            on_retry=self._count_retry,
        )

    def _count_retry(self, error: RetriableError, delay_s: float) -> None:
        self.stats.retries += 1


def then_decoded(
    first: SecurityProcessor[E], then: DecodedProcess[E]
) -> Callable[[Sequence[E]], Awaitable[None]]:
    """A batch through `first`, then through `then`, decoded once for both."""

    async def process(batch: Sequence[E]) -> None:
        decoded = first.decode_batch(batch)
        await first.process_decoded(decoded)
        await then(decoded)

    return process
