"""One batch of `notifications.dispatch` (or retry-topic) records -> provider sends -> outcomes.

The body of `dispatch_notifications` and `retry_notifications`, written against small protocols
instead of Faust and HTTP so that the whole batch logic is tested with fakes. A batch is sent
concurrently (the channels' semaphores bound it), then every outcome is written in one round:

- sent: a `sent` status with the provider and its message id;
- retriable failure with attempts left: the ORIGINAL value re-produced on the retry topic whose
  delay fits (see `plan_retry`), the next attempt number and the due time in headers, and a
  `retrying` status. The main topic's partition moves on at once: nothing waits there;
- permanent failure, or no attempts left: a dead letter on `notifications.dlq` (original value,
  headers naming error and source) and a `failed` status.

The attempt travels in a header rather than in the value so that the dead letter keeps the value
as routed, and re-driving it (which drops every `dlq.*` header) starts again from attempt 1.

Sends happen once per attempt, crashes included: every accepted send is written to the sent
ledger (a table keyed by notification id and attempt, in the dispatch topic's partition), and
the worker's commit order puts that write in the ledger's changelog before the dispatch record's
offset is acknowledged. A record read again (a crash, a rebalance) whose attempt is in the
ledger is not sent again: its `sent` status is published again (the same event id) from the
ledger. What the ledger cannot cover, a crash after the provider accepted and before the ledger
write reached Kafka, the idempotency key covers: each try of an attempt carries the same key
(`<notification id>/<attempt>`), and providers that honour keys answer a repeat without sending.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, MutableMapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from agents.retry import Backoff, Sleep, retry_retriable
from schemas.notifications import (
    NotificationDispatchEvent,
    NotificationState,
    NotificationStatusChanged,
    NotificationStatusEvent,
)
from streams.errors import PoisonError
from streams.kafka.dead_letters import HEADER_PREFIX, dead_letter_headers
from streams.kafka.event_producer import Headers
from streams.kafka.wire import wire_now
from streams.name_ids import NameIds
from streams.providers.base import (
    OutboundMessage,
    PermanentSendError,
    RetriableSendError,
    SendResult,
)
from streams.runtime import OutgoingRecord, RecordSink, SourceRecord

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "dispatch.attempt"
DUE_HEADER = "dispatch.due-ms"
# On a dead letter: how many sends were tried (a `dlq.*` header, so re-driving drops it).
DEAD_LETTER_ATTEMPTS_HEADER = f"{HEADER_PREFIX}attempts"
STATUS_SOURCE = "tributary.dispatch"
MAX_REASON_CHARS = 256
_STATUS_IDS = NameIds(uuid.UUID("6f1d8a52-4c3e-4a0e-9b7d-2f3c1e5a9d10"))


class Sender(Protocol):
    async def send(self, message: OutboundMessage) -> SendResult: ...


class AttemptsExhaustedError(PoisonError):
    """The last allowed attempt failed too; the message names the last failure."""


@dataclass(frozen=True, slots=True)
class DispatchRecord:
    """A consumed record with what retrying needs beyond `SourceRecord`."""

    source: SourceRecord
    headers: Headers
    timestamp_ms: int
    # Makes table writes go to this record's partition (the worker's `event_scope`).
    scope: Callable[[], AbstractContextManager[None]] = nullcontext


@dataclass(frozen=True, slots=True)
class RetryPlan:
    topic_index: int
    wait_s: float


@dataclass(frozen=True, slots=True)
class Sent:
    result: SendResult


@dataclass(frozen=True, slots=True)
class Retry:
    plan: RetryPlan
    error: RetriableSendError


@dataclass(frozen=True, slots=True)
class DeadLetter:
    error: PoisonError


Outcome = Sent | Retry | DeadLetter


def plan_retry(
    failed_attempt: int, delays_s: Sequence[float], retry_after_s: float | None
) -> RetryPlan | None:
    """Where attempt `failed_attempt + 1` waits, or None when no attempt is left.

    Attempt n (1 = the first send) is followed by the n-th delay. A provider's Retry-After
    lengthens the wait to max(delay, retry-after) and moves the message to the first later topic
    whose delay covers it. A Retry-After beyond the largest delay is capped at it: a provider
    answering "come back tomorrow" must not park the notification for a day.
    """
    if failed_attempt > len(delays_s):
        return None
    base = max(failed_attempt, 1) - 1
    wait_s = max(delays_s[base], min(retry_after_s or 0.0, delays_s[-1]))
    covering = (i for i in range(base, len(delays_s)) if delays_s[i] >= wait_s)
    return RetryPlan(next(covering, len(delays_s) - 1), wait_s)


def header(headers: Headers, name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode(errors="replace")
    return None


def attempt_of(record: DispatchRecord, event: NotificationDispatchEvent) -> int:
    found = header(record.headers, ATTEMPT_HEADER)
    return int(found) if found and found.isdecimal() else event.payload.attempt


def due_at_ms(record: DispatchRecord, delay_s: float) -> int:
    """When a retry record may be sent: its topic's delay after it was written, or later if a
    Retry-After asked for more (the due header)."""
    due_ms = record.timestamp_ms + round(delay_s * 1000)
    found = header(record.headers, DUE_HEADER)
    if found and found.isdecimal():
        due_ms = max(due_ms, int(found))
    return due_ms


def batch_wait_s(records: Sequence[DispatchRecord], delay_s: float, now_s: float) -> float:
    """How long a retry batch waits before it is sent: until its latest record is due."""
    if not records:
        return 0.0
    due_ms = max(due_at_ms(record, delay_s) for record in records)
    return max(0.0, due_ms / 1000 - now_s)


def outbound(event: NotificationDispatchEvent, attempt: int) -> OutboundMessage:
    payload = event.payload
    return OutboundMessage(
        notification_id=payload.notification_id,
        channel=payload.channel,
        recipient=payload.recipient,
        subject=payload.subject,
        body=payload.body,
        idempotency_key=attempt_key(payload.notification_id, attempt),
    )


def attempt_key(notification_id: str, attempt: int) -> str:
    """One attempt's key: in the sent ledger, and as the providers' idempotency key."""
    return f"{notification_id}/{attempt}"


SentLedger = MutableMapping[bytes, dict[str, Any]]
# Marks, among a batch's ledger lookups, a repeat of an attempt the batch already holds.
_IN_THIS_BATCH: dict[str, Any] = {}


def ledger_entry(result: SendResult, at: datetime) -> dict[str, Any]:
    return {
        "provider": result.provider,
        "provider_message_id": result.provider_message_id,
        "sent_at": at.isoformat(),
    }


def ledger_result(entry: dict[str, Any]) -> SendResult:
    return SendResult(str(entry["provider"]), str(entry["provider_message_id"]))


async def attempt_send(
    sender: Sender, message: OutboundMessage, attempt: int, delays_s: Sequence[float]
) -> Outcome:
    try:
        result = await sender.send(message)
    except RetriableSendError as exc:
        plan = plan_retry(attempt, delays_s, exc.retry_after_s)
        if plan is None:
            return DeadLetter(AttemptsExhaustedError(f"attempt {attempt} failed, none left: {exc}"))
        return Retry(plan, exc)
    except PermanentSendError as exc:
        return DeadLetter(exc)
    return Sent(result)


def status_event(
    dispatch: NotificationDispatchEvent,
    state: NotificationState,
    at: datetime,
    attempt: int,
    *,
    provider: str | None = None,
    provider_message_id: str | None = None,
    reason: str | None = None,
) -> NotificationStatusEvent:
    """The transition's event; its id is derived from (notification, state, attempt), so that a
    batch processed again after a crash publishes the same events, not new ones."""
    payload = dispatch.payload
    name = f"{payload.notification_id}/{state}/{attempt}"
    return NotificationStatusEvent(
        event_id=_STATUS_IDS.uuid(name),
        event_type="notification.status-changed",
        occurred_at=at,
        ingested_at=at,
        source=STATUS_SOURCE,
        correlation_id=dispatch.correlation_id,
        causation_id=str(dispatch.event_id),
        payload=NotificationStatusChanged(
            notification_id=payload.notification_id,
            user_id=payload.user_id,
            state=state,
            channel=payload.channel,
            provider=provider,
            provider_message_id=provider_message_id,
            reason=reason[:MAX_REASON_CHARS] if reason else None,
            attempt=attempt,
            category=payload.category,
            caused_at=payload.caused_at,
            template=payload.template,
        ),
    )


@dataclass(slots=True)
class DispatchStats:
    batches: int = 0
    events: int = 0
    sent: int = 0
    # Sends put on a retry topic.
    retries: int = 0
    dead_letters: int = 0
    kafka_retries: int = 0
    # Records read again whose attempt the sent ledger holds: not sent again.
    resends_avoided: int = 0


@dataclass(slots=True)
class _Written:
    status: list[OutgoingRecord]
    retries: list[list[OutgoingRecord]]
    dead_letters: list[OutgoingRecord]


class NotificationDispatcher:
    """Sends batches; one instance serves the main topic and every retry topic of a worker."""

    def __init__(
        self,
        *,
        sender: Sender,
        decode: Callable[[bytes | None], NotificationDispatchEvent],
        encode: Callable[[NotificationStatusEvent], bytes],
        status: RecordSink,
        retries: Sequence[RecordSink],
        dead_letters: RecordSink,
        delays_s: Sequence[float],
        backoff: Backoff,
        clock: Callable[[], datetime] = wire_now,
        sleep: Sleep = asyncio.sleep,
        ledger: SentLedger | None = None,
    ) -> None:
        """`ledger`: the sent ledger (see the module doc); without one, nothing is recorded."""
        if len(retries) != len(delays_s):
            raise ValueError("one retry topic per delay")
        self._sender = sender
        self._decode = decode
        self._encode = encode
        self._status = status
        self._retries = list(retries)
        self._dead_letters = dead_letters
        self._delays_s = tuple(delays_s)
        self._backoff = backoff
        self._clock = clock
        self._sleep = sleep
        self._ledger = ledger
        self.stats = DispatchStats()

    async def process(self, batch: Sequence[DispatchRecord]) -> None:
        written = _Written([], [[] for _ in self._retries], [])
        decoded: list[tuple[DispatchRecord, NotificationDispatchEvent, int]] = []
        for record in batch:
            try:
                event = self._decode(record.source.value)
            except PoisonError as exc:
                written.dead_letters.append(self._dead_letter(record, exc, attempt=0))
                continue
            decoded.append((record, event, attempt_of(record, event)))
        sent_before = self._sent_before_all(decoded)
        to_send = [d for d, entry in zip(decoded, sent_before, strict=True) if entry is None]
        now = self._clock()
        sending = [self._status_record(status_event(e, "sending", now, n)) for _, e, n in to_send]
        await self._write(self._status, sending, "sending statuses")
        fresh = iter(
            await asyncio.gather(
                *(
                    attempt_send(self._sender, outbound(e, n), n, self._delays_s)
                    for _, e, n in to_send
                )
            )
        )
        now = self._clock()
        for (record, event, attempt), entry in zip(decoded, sent_before, strict=True):
            if entry is _IN_THIS_BATCH:
                continue  # the same attempt earlier in this batch: its outcome stands for both
            if entry is not None:
                self.stats.resends_avoided += 1
                outcome: Outcome = Sent(ledger_result(entry))
            else:
                outcome = next(fresh)
                if isinstance(outcome, Sent):
                    self._record_sent(record, event, attempt, outcome.result, now)
            self._record_outcome(written, record, event, attempt, outcome, now)
        await self._write_all(written)
        self.stats.batches += 1
        self.stats.events += len(batch)

    def _record_outcome(
        self,
        written: _Written,
        record: DispatchRecord,
        event: NotificationDispatchEvent,
        attempt: int,
        outcome: Outcome,
        now: datetime,
    ) -> None:
        if isinstance(outcome, Sent):
            result = outcome.result
            status = status_event(
                event,
                "sent",
                now,
                attempt,
                provider=result.provider,
                provider_message_id=result.provider_message_id,
            )
        elif isinstance(outcome, Retry):
            due = now + timedelta(seconds=outcome.plan.wait_s)
            reason = f"{outcome.error}; attempt {attempt + 1} due {due.isoformat()}"
            written.retries[outcome.plan.topic_index].append(retry_record(record, attempt + 1, due))
            status = status_event(
                event, "retrying", now, attempt, provider=outcome.error.provider, reason=reason
            )
            self.stats.retries += 1
        else:
            written.dead_letters.append(self._dead_letter(record, outcome.error, attempt))
            provider = getattr(outcome.error, "provider", None)
            source = record.source
            log.warning(
                "notification %s failed for good after attempt %d: %s",
                event.payload.notification_id,
                attempt,
                outcome.error,
                extra={
                    "notification_id": event.payload.notification_id,
                    "event_id": str(event.event_id),
                    "correlation_id": event.correlation_id,
                    "topic": source.topic,
                    "partition": source.partition,
                    "offset": source.offset,
                },
            )
            status = status_event(
                event, "failed", now, attempt, provider=provider, reason=str(outcome.error)
            )
        written.status.append(self._status_record(status))

    def _sent_before_all(
        self, decoded: Sequence[tuple[DispatchRecord, NotificationDispatchEvent, int]]
    ) -> list[dict[str, Any] | None]:
        """Per record, the ledger's entry for its attempt (None: to send), or `_IN_THIS_BATCH`
        for a repeat of an attempt earlier in the batch (it is neither sent nor reported)."""
        found: list[dict[str, Any] | None] = []
        seen: set[str] = set()
        for record, event, attempt in decoded:
            key = attempt_key(event.payload.notification_id, attempt)
            if key in seen:
                found.append(_IN_THIS_BATCH)
                self.stats.resends_avoided += 1
                continue
            seen.add(key)
            found.append(self._sent_before(record, key.encode()))
        return found

    def _sent_before(self, record: DispatchRecord, key: bytes) -> dict[str, Any] | None:
        if self._ledger is None:
            return None
        with record.scope():  # where the attempt was written: the record's own partition
            return self._ledger.get(key)

    def _record_sent(
        self,
        record: DispatchRecord,
        event: NotificationDispatchEvent,
        attempt: int,
        result: SendResult,
        now: datetime,
    ) -> None:
        self.stats.sent += 1
        if self._ledger is None:
            return
        key = attempt_key(event.payload.notification_id, attempt).encode()
        with record.scope():
            self._ledger[key] = ledger_entry(result, now)

    def _status_record(self, event: NotificationStatusEvent) -> OutgoingRecord:
        return OutgoingRecord(event.payload.notification_id.encode(), self._encode(event))

    def _dead_letter(
        self, record: DispatchRecord, error: Exception, attempt: int
    ) -> OutgoingRecord:
        source = record.source
        headers = dead_letter_headers(error, source.topic, source.partition, source.offset)
        headers += ((DEAD_LETTER_ATTEMPTS_HEADER, str(attempt).encode()),)
        self.stats.dead_letters += 1
        return OutgoingRecord(source.key, source.value, headers)

    async def _write_all(self, written: _Written) -> None:
        """Retries and dead letters first: once the status says `retrying` or `failed`, the
        record that backs it must already be in Kafka."""
        await asyncio.gather(
            self._write(self._dead_letters, written.dead_letters, "dead letters"),
            *(
                self._write(sink, records, "retries")
                for sink, records in zip(self._retries, written.retries, strict=True)
            ),
        )
        await self._write(self._status, written.status, "statuses")

    async def _write(self, sink: RecordSink, records: Sequence[OutgoingRecord], what: str) -> None:
        if not records:
            return
        await retry_retriable(
            lambda: sink.send_all(records),
            backoff=self._backoff,
            what=f"writing {len(records)} {what}",
            sleep=self._sleep,
            on_retry=self._count_retry,
        )

    def _count_retry(self, error: Exception, delay_s: float) -> None:
        self.stats.kafka_retries += 1


def retry_record(record: DispatchRecord, next_attempt: int, due: datetime) -> OutgoingRecord:
    """The original key and value, with the next attempt and its due time in headers."""
    kept = tuple(
        (name, value) for name, value in record.headers if name not in (ATTEMPT_HEADER, DUE_HEADER)
    )
    due_ms = int(due.timestamp() * 1000)
    headers = (
        *kept,
        (ATTEMPT_HEADER, str(next_attempt).encode()),
        (DUE_HEADER, str(due_ms).encode()),
    )
    return OutgoingRecord(record.source.key, record.source.value, headers)
