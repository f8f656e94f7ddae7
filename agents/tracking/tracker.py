"""One batch of `notifications.status` + `notifications.receipts` records -> the `deliveries`
table, receipt-derived transitions on `notifications.status`, suppression reports on
`notifications.suppressions`, and PostgreSQL rows.

The body of `track_deliveries`, written against small protocols so it is tested with fakes. Per
batch: one round of dead letters, one round of status publishes, one round of suppression
reports (when a transition is a bounce or a complaint), one PostgreSQL transaction (two
statements), never one per event.

Only receipts are re-published as status transitions, and only when the step is new to the
table (a provider's repeated receipt publishes nothing); what came from `notifications.status` is
folded, never sent back. The re-published transition has a deterministic event id and the
receipt's event time, so reading it back (this agent consumes the status topic too) is a step the
table already holds: a no-op, not a loop. A published transition that says `bounced` or `spam`
is also reported, re-keyed by user, on `notifications.suppressions` (`agents.deliverability`):
the tracker publishes both, so no other agent reads the status topic for them. A transition
read back that an earlier version published (without the `reports` header, when a separate
agent reported them) is reported then, not folded: its report may not have gone before that
version stopped.

A notification whose receipt transitions a batch publishes is written to the table (and its
held receipts let go) only once Kafka acknowledged the publish, and its suppression reports:
one table write, one changelog record, for the batch. A worker that dies in between has written
nothing of it and committed no offset, so whoever reads the records again (the same worker, or
the partition's next owner) folds the step as new and publishes it again, transition and
report, under the same deterministic ids (consumers deduplicate on event ids). The table's
`unpublished` is the outbox of steps that cannot be published yet, because no transition has
named the notification's user (a receipt can overtake every status): written before anything
is published, published (and reported) once a status names the user. An entry that still lists
steps there (written so by an earlier version, which wrote every step there before publishing)
has them published by the next record of the notification.

A receipt read before its notification's `sent` is held in the notification's own entry
(`Delivery.held`; before any status of it, a `Waiting` entry, which is no delivery: no row, no
transition), staged and written with the entry like any change of it, and released by the fold
of the `sent`, whose entry write (after its publishes are acknowledged) is the release. A crash
before that write leaves the receipt held and the `sent` unread: read again, it releases it
then. The `held_receipts` table earlier versions held receipts in is read, and a key of it
deleted with the entry write that releases or takes over its receipts; it is never set.

A step whose transition or report cannot be encoded (the models and the Avro schemas disagree:
a `PoisonError`) stays in the outbox, and the record that brought it is set aside on its
topic's dead letters: re-driven once the schemas are fixed, it publishes the step then.

Every decodable record's state is written to PostgreSQL again even when unchanged, so that a
crash between the table update and the row write is repaired by the replay (the store's writes
are idempotent).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from operator import attrgetter
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from pydantic import BaseModel

from agents.dead_letters import set_aside
from agents.deliverability.reports import report_record
from agents.retry import Backoff, Sleep, retry_retriable
from agents.tracking.receipt_matching import held_steps, kept_held, receipt_matches_sent
from agents.tracking.state import (
    STATE_RANK,
    Delivery,
    Entry,
    Facts,
    Step,
    Waiting,
    fold,
    parse_entry,
    receipt_step,
    status_step,
    to_entry,
)
from schemas.notifications import (
    NotificationReceiptEvent,
    NotificationStatusChanged,
    NotificationStatusEvent,
)
from streams.errors import PoisonError, RetriableError
from streams.kafka.wire import wire_now
from streams.name_ids import URL_IDS
from streams.runtime import OutgoingRecord, RecordSink, SourceRecord
from streams.stores.delivery_store import DeliveryValues, TransitionValues

log = logging.getLogger(__name__)

E = TypeVar("E")
T = TypeVar("T")

DeliveriesTable = MutableMapping[bytes, dict[str, Any]]
DecodeStatus = Callable[[bytes | None], NotificationStatusEvent]
DecodeReceipt = Callable[[bytes | None], NotificationReceiptEvent]
Encode = Callable[[BaseModel], bytes]
SOURCE = "agent:track_deliveries"
# A receipt can precede every status of its notification; the status contract needs a user id.
UNKNOWN_USER = "unknown"


# Where the batch's new transitions go for delivery metrics (the metrics pipeline's partials).
Transitions = Sequence[tuple[SourceRecord, NotificationStatusEvent]]
TransitionsSink = Callable[[Transitions], Awaitable[None]]


async def ignore_transitions(_transitions: Transitions) -> None:
    return None


class DeliverySink(Protocol):
    async def write(
        self, deliveries: Sequence[DeliveryValues], transitions: Sequence[TransitionValues]
    ) -> int: ...


@dataclass(slots=True)
class TrackerStats:
    batches: int = 0
    events: int = 0
    transitions: int = 0
    published: int = 0
    # Suppression reports published (bounced and spam transitions with a known user).
    reports: int = 0
    dead_letters: int = 0
    rows_written: int = 0
    retries: int = 0
    # Receipts waiting for their notification's `sent`, and receipts naming no send of theirs.
    receipts_held: int = 0
    receipts_rejected: int = 0


@dataclass(frozen=True, slots=True)
class Topics:
    status: str
    receipts: str


def delivery_row(delivery: Delivery) -> DeliveryValues:
    current = delivery.current
    return DeliveryValues(
        notification_id=delivery.notification_id,
        user_id=delivery.user_id,
        channel=delivery.channel,
        category=delivery.category,
        template=delivery.template,
        state=current.state,
        state_rank=STATE_RANK[current.state],
        state_at=current.occurred_at,
        reason=current.reason,
        last_error=delivery.last_error,
        attempts=delivery.attempts,
        provider=delivery.provider,
        provider_message_id=delivery.provider_message_id,
        caused_at=delivery.caused_at,
        queued_at=delivery.first_at("queued"),
        delivered_at=delivery.first_at("delivered"),
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
    )


def transition_row(notification_id: str, step: Step) -> TransitionValues:
    return TransitionValues(notification_id, *_step_columns(step))


# A timeline row's columns after the notification's id, read off a step by their names.
_step_columns = attrgetter(*TransitionValues._fields[1:])


def receipt_status(step: Step, delivery: Delivery, now: datetime) -> NotificationStatusEvent:
    """The status transition a receipt step amounts to, for analytics on `notifications.status`:
    the step's own facts and the notification's, its id derived from the receipt event's."""
    payload = NotificationStatusChanged(
        notification_id=delivery.notification_id,
        user_id=delivery.user_id or UNKNOWN_USER,
        state=step.state,
        channel=delivery.channel,
        provider=step.provider,
        provider_message_id=step.provider_message_id,
        reason=step.reason,
        attempt=delivery.attempts or None,
        category=delivery.category,
        caused_at=delivery.caused_at,
        template=delivery.template,
    )
    return NotificationStatusEvent(
        event_id=URL_IDS.uuid(f"tributary:receipt-status:{step.event_id}"),
        event_type="notification.status-changed",
        occurred_at=step.occurred_at,
        ingested_at=now,
        source=SOURCE,
        # As the ingest API sets them on the receipt: the notification, and the receipt.
        correlation_id=delivery.notification_id,
        causation_id=str(step.event_id),
        payload=payload,
    )


OWN_SOURCE_HEADER = ("source", SOURCE.encode())


def is_own_record(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None) -> bool:
    """A transition this agent published itself (from a receipt it already folded): reading it
    back could only be a no-op, so the wiring skips it before paying for its decoding."""
    if headers is None:
        return False
    if isinstance(headers, Mapping):
        return headers.get(OWN_SOURCE_HEADER[0]) == OWN_SOURCE_HEADER[1]
    return OWN_SOURCE_HEADER in headers


# On every transition this version publishes: its suppression report, if it has one, went with
# it. An own transition without it is an earlier version's, whose report a separate agent owed.
REPORTS_INLINE_HEADER = ("reports", b"inline")


def is_tracked(headers: Iterable[tuple[str, bytes]] | Mapping[str, bytes] | None) -> bool:
    """Whether `track_deliveries` reads a status record: every one but the transitions it
    published itself (`is_own_record`), except an earlier version's. Those a separate agent
    reported, and one that version published just before it stopped may not have been yet:
    the tracker reports it when it reads it back (a repeat is the same report)."""
    if headers is None:
        return True
    if isinstance(headers, Mapping):
        own = headers.get(OWN_SOURCE_HEADER[0]) == OWN_SOURCE_HEADER[1]
        return not own or headers.get(REPORTS_INLINE_HEADER[0]) != REPORTS_INLINE_HEADER[1]
    seen = headers if isinstance(headers, list | tuple) else list(headers)
    return OWN_SOURCE_HEADER not in seen or REPORTS_INLINE_HEADER not in seen


def status_record(event: NotificationStatusEvent, encode: Encode) -> OutgoingRecord:
    headers = (
        ("event_id", str(event.event_id).encode()),
        ("event_type", event.event_type.encode()),
        OWN_SOURCE_HEADER,
        REPORTS_INLINE_HEADER,
    )
    return OutgoingRecord(event.payload.notification_id.encode(), encode(event), headers)


@dataclass(slots=True)
class _Batch:
    deliveries: dict[str, Delivery] = field(default_factory=dict)
    steps: list[TransitionValues] = field(default_factory=list)
    published: list[OutgoingRecord] = field(default_factory=list)
    # The suppression reports of the transitions in `published`, acknowledged before the table.
    reports: list[OutgoingRecord] = field(default_factory=list)
    rejected: defaultdict[str, list[OutgoingRecord]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # The records set aside because a step of theirs could not be encoded (once each).
    unencodable: set[SourceRecord] = field(default_factory=set)
    # The delivery to write per key, with the last item that changed it: one table write (one
    # entry built, one changelog record, one store write) per notification and batch, however
    # many of its steps the batch holds (queued, sending and sent often arrive together).
    writes: dict[bytes, tuple[Entry, Any]] = field(default_factory=dict)
    # Each new step as a status event, with the record that caused it (for delivery metrics).
    transitions: list[tuple[SourceRecord, NotificationStatusEvent]] = field(default_factory=list)
    # Receipt steps whose transitions this batch publishes: out of the outbox once acknowledged.
    publishing: defaultdict[bytes, set[UUID]] = field(default_factory=lambda: defaultdict(set))
    # Keys of an earlier version's `held_receipts` to delete (their receipts are now in the
    # `deliveries` entry, or released), with the item that released them.
    legacy_released: dict[bytes, Any] = field(default_factory=dict)


class DeliveryTracker(Generic[E]):
    """Processes batches of `E` (Faust events in the worker, plain records in tests)."""

    def __init__(
        self,
        *,
        table: DeliveriesTable,
        topics: Topics,
        decode_status: DecodeStatus,
        decode_receipt: DecodeReceipt,
        encode: Encode,
        store: DeliverySink,
        status_out: RecordSink,
        reports_out: RecordSink,
        dead_letters: Mapping[str, RecordSink],
        describe: Callable[[E], SourceRecord],
        scope: Callable[[E], AbstractContextManager[None]],
        backoff: Backoff,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], datetime] = wire_now,
        cache_entries: int = 20_000,
        transitions_out: TransitionsSink = ignore_transitions,
        held: DeliveriesTable | None = None,
    ) -> None:
        """`reports_out`: `notifications.suppressions`; `held`: the `held_receipts` table
        earlier versions held receipts in (`receipt_matching`), in memory when not given: read,
        and its keys deleted once released, never written otherwise."""
        self._table = table
        self._topics = topics
        self._decode_status = decode_status
        self._decode_receipt = decode_receipt
        self._encode = encode
        self._store = store
        self._status_out = status_out
        self._reports_out = reports_out
        self._dead_letters = dead_letters
        self._describe = describe
        self._scope = scope
        self._backoff = backoff
        self._sleep = sleep
        self._clock = clock
        self._transitions_out = transitions_out
        self._held: DeliveriesTable = {} if held is None else held
        # The keys `held` has, listed once after each `forget` and kept up to date by this
        # tracker's own deletes (None: to be listed): a `sent` status looks for receipts an
        # earlier version held for its notification, and there are none but after an upgrade,
        # so it need not read the table.
        self._held_keys: set[bytes] | None = None
        # What this tracker knows the table holds, parsed, by key, most recently written last
        # (bounded: a notification is busy for seconds, then never touched again). Trusted
        # without reading the table again (a Faust table read, sensors, RocksDB and JSON, cost
        # more than the fold) until `forget`: between rebalances this worker is the only
        # writer of its partitions' keys.
        self._parsed: dict[bytes, Entry] = {}
        self._cache_entries = cache_entries
        self.stats = TrackerStats()

    def forget(self) -> None:
        """Read every entry from the table again: it may have changed behind this tracker's
        back (a rebalance: another worker may have owned a partition in between)."""
        self._parsed.clear()
        self._held_keys = None

    async def process(self, items: Sequence[E]) -> None:
        try:
            await self._process(items)
        except BaseException:
            self.forget()  # entries staged for the table may not have been written
            raise

    async def _process(self, items: Sequence[E]) -> None:
        batch = _Batch()
        for item in items:
            record = self._describe(item)
            try:
                with self._scope(item):  # a table read looks in the record's partition alone
                    self._track(record, batch, item)
            except PoisonError as exc:
                batch.rejected[record.topic].append(set_aside(record, exc))
        publishing = batch.publishing
        self._write_table(batch, lambda key: key not in publishing)
        for topic, records in batch.rejected.items():
            await self._retry(self._sender(self._dead_letters[topic], records), "dead letters")
            self.stats.dead_letters += len(records)
        if batch.published:
            await self._retry(self._sender(self._status_out, batch.published), "status")
            self.stats.published += len(batch.published)
        if batch.reports:
            reports = self._sender(self._reports_out, batch.reports)
            await self._retry(reports, "suppression reports")
            self.stats.reports += len(batch.reports)
        self._empty_outbox(batch)
        self._write_table(batch, lambda key: key in publishing)
        if batch.transitions:
            transitions = batch.transitions
            await self._retry(lambda: self._transitions_out(transitions), "metrics")
        if batch.deliveries:
            rows = [delivery_row(d) for d in batch.deliveries.values()]
            written = await self._retry(lambda: self._store.write(rows, batch.steps), "rows")
            self.stats.rows_written += written
        self.stats.batches += 1
        self.stats.events += len(items)

    def _track(self, record: SourceRecord, batch: _Batch, item: E) -> None:
        status: NotificationStatusEvent | None = None
        if record.topic == self._topics.receipts:
            receipt = self._decode_receipt(record.value)
            notification_id = receipt.payload.notification_id
            found = receipt_step(receipt)
            if found is None or not self._receipt_applies(notification_id, found[0], batch, item):
                return
            step, facts = found
        else:
            status = self._decode_status(record.value)
            if status.source == SOURCE:
                self._report_read_back(status, batch)
                return
            notification_id = status.payload.notification_id
            step, facts = status_step(status)
        self._apply(record, notification_id, step, facts, status, batch, item)

    def _report_read_back(self, status: NotificationStatusEvent, batch: _Batch) -> None:
        """A transition an earlier version published (`is_tracked`): its step is folded
        already, only its suppression report may still be owed."""
        report = report_record(status, self._clock(), self._encode)
        if report is not None:
            batch.reports.append(report)

    def _apply(
        self,
        record: SourceRecord,
        notification_id: str,
        step: Step,
        facts: Facts,
        status: NotificationStatusEvent | None,
        batch: _Batch,
        item: E,
    ) -> None:
        """Fold one step (`status` is None for a receipt's) and queue what it publishes."""
        delivery, added = self._fold(notification_id, step, facts, batch, item)
        batch.steps.append(transition_row(notification_id, step))
        if added and status is not None:
            batch.transitions.append((record, status))
        new_receipt_step = (step.event_id,) if added and status is None else ()
        outbox = (*delivery.unpublished, *new_receipt_step)
        if outbox:
            delivery = self._publish(delivery, outbox, record, batch, item)
        batch.deliveries[notification_id] = delivery
        if added and step.state == "sent":
            self._release_receipts(record, notification_id, batch, item)

    def _receipt_applies(self, notification_id: str, step: Step, batch: _Batch, item: E) -> bool:
        """Whether the receipt `step` names a send of its notification (`receipt_matching`);
        one that comes before any is held, one that names none is counted and dropped."""
        key = notification_id.encode()
        current = self._latest(key, batch)
        match = receipt_matches_sent(current, step)
        if match is None:
            waiting = self._held_of(key, batch)
            if all(held.event_id != step.event_id for held in waiting):
                self._hold(key, notification_id, kept_held([*waiting, step]), batch, item)
                self.stats.receipts_held += 1
            return False
        if not match:
            self.stats.receipts_rejected += 1
            log.warning(
                "receipt %s for %s ignored: %s message %s was not sent for it",
                step.event_id,
                notification_id,
                step.provider,
                step.provider_message_id,
            )
        return match

    def _release_receipts(
        self, record: SourceRecord, notification_id: str, batch: _Batch, item: E
    ) -> None:
        """The receipts held for the notification, now that it has a `sent`: applied if they
        name it, dropped if not."""
        key = notification_id.encode()
        waiting = self._held_of(key, batch)
        if not waiting:
            return
        self._hold(key, notification_id, (), batch, item)
        for step in waiting:
            if self._receipt_applies(notification_id, step, batch, item):
                self._apply(record, notification_id, step, Facts(), None, batch, item)

    def _hold(
        self, key: bytes, notification_id: str, steps: tuple[Step, ...], batch: _Batch, item: E
    ) -> None:
        """Make `steps` the receipts the notification's entry holds (a `Waiting` entry when no
        status of it was read yet), written with the entry; what an earlier version held in
        `held_receipts` is in `steps` now, or released, so its key goes."""
        entry = self._entry(key, batch)
        if entry is not None:
            if entry.held != steps:
                self._write(key, replace(entry, held=steps), batch, item)
        elif steps:
            self._write(key, Waiting(notification_id=notification_id, held=steps), batch, item)
        if self._held_keys is not None and key in self._held_keys:
            batch.legacy_released.setdefault(key, item)

    def _held_of(self, key: bytes, batch: _Batch) -> list[Step]:
        """The receipts held for the notification: in its entry, and, for one an earlier
        version held, in `held_receipts` (until this batch takes them over)."""
        entry = self._entry(key, batch)
        held = list(entry.held) if entry is not None else []
        if key in batch.legacy_released:
            return held
        if self._held_keys is None:
            self._held_keys = set(self._held.keys())
        if key not in self._held_keys:
            return held
        known = {step.event_id for step in held}
        legacy = [step for step in held_steps(self._held.get(key)) if step.event_id not in known]
        return [*legacy, *held]

    def _publish(
        self,
        delivery: Delivery,
        held: tuple[UUID, ...],
        record: SourceRecord,
        batch: _Batch,
        item: E,
    ) -> Delivery:
        """Queue the transitions of the receipt steps `held` (new ones, and what the outbox
        still holds), and their suppression reports, once the user is known; the delivery as
        it is to be written, every step of `held` in its outbox until the publish is
        acknowledged (`_empty_outbox`)."""
        key = delivery.notification_id.encode()
        if delivery.user_id is not None:
            queued = batch.publishing[key]
            now = self._clock()
            for event_id in held:
                if event_id in queued:
                    continue  # already queued by an earlier record of this batch
                step = delivery.step(event_id)
                assert step is not None, "a held step is in the timeline"
                event = receipt_status(step, delivery, now)
                try:
                    published = status_record(event, self._encode)
                    report = report_record(event, now, self._encode)
                except PoisonError as exc:  # left in the outbox; the record, re-driven, retries
                    self._set_aside(record, exc, batch)
                    continue
                batch.published.append(published)
                if report is not None:
                    batch.reports.append(report)
                batch.transitions.append((record, event))
                queued.add(event_id)
        if held != delivery.unpublished:
            delivery = replace(delivery, unpublished=held)
            self._write(key, delivery, batch, item)
        elif key not in batch.writes:  # leftovers only: `_empty_outbox` rewrites this entry
            self._write(key, delivery, batch, item)
        return delivery

    @staticmethod
    def _set_aside(record: SourceRecord, error: PoisonError, batch: _Batch) -> None:
        """Dead-letter `record` once, however many of its steps cannot be encoded."""
        if record not in batch.unencodable:
            batch.unencodable.add(record)
            batch.rejected[record.topic].append(set_aside(record, error))

    def _empty_outbox(self, batch: _Batch) -> None:
        """Take the published steps out of the outbox: the publish is acknowledged."""
        for key, published in batch.publishing.items():
            delivery, item = batch.writes[key]
            assert isinstance(delivery, Delivery), "a publishing notification has a delivery"
            left = tuple(e for e in delivery.unpublished if e not in published)
            delivery = replace(delivery, unpublished=left)
            batch.deliveries[delivery.notification_id] = delivery
            self._write(key, delivery, batch, item)

    def _write_table(self, batch: _Batch, which: Callable[[bytes], bool]) -> None:
        """Write the batch's table entries, and delete the released `held_receipts` keys, of
        the keys `which` accepts."""
        for key, (delivery, item) in batch.writes.items():
            if which(key):
                self._store_entry(key, delivery, item)
        for key, item in batch.legacy_released.items():
            if not which(key):
                continue
            with self._scope(item):
                if key in self._held:
                    del self._held[key]
            if self._held_keys is not None:
                self._held_keys.discard(key)

    def _write(self, key: bytes, delivery: Entry, batch: _Batch, item: E) -> None:
        batch.writes[key] = (delivery, item)

    def _store_entry(self, key: bytes, delivery: Entry, item: E) -> None:
        with self._scope(item):  # the changelog partition of the key's own events
            self._table[key] = to_entry(delivery)
        self._remember(key, delivery)

    def _fold(
        self, notification_id: str, step: Step, facts: Facts, batch: _Batch, item: E
    ) -> tuple[Delivery, bool]:
        key = notification_id.encode()
        current = self._entry(key, batch)
        if isinstance(current, Waiting):  # its first status: a delivery, holding the receipts
            delivery, added = fold(None, notification_id, step, facts)
            delivery = replace(delivery, held=current.held)
        else:
            delivery, added = fold(current, notification_id, step, facts)
        if added:
            self._write(key, delivery, batch, item)
            self.stats.transitions += 1
        return delivery, added

    def _latest(self, key: bytes, batch: _Batch) -> Delivery | None:
        """The notification's delivery as this batch leaves it so far (None: no status of it
        was read yet)."""
        entry = self._entry(key, batch)
        return entry if isinstance(entry, Delivery) else None

    def _entry(self, key: bytes, batch: _Batch) -> Entry | None:
        """The notification's entry as this batch leaves it so far: the batch's pending
        entry, else what this tracker remembers writing or reading, else the table's."""
        pending = batch.writes.get(key)
        if pending is not None:
            return pending[0]
        known = self._parsed.get(key)
        if known is not None:
            return known
        entry = parse_entry(self._table.get(key))
        if entry is not None:
            self._remember(key, entry)
        return entry

    def _remember(self, key: bytes, delivery: Entry) -> None:
        self._parsed.pop(key, None)
        self._parsed[key] = delivery
        if len(self._parsed) > self._cache_entries:
            del self._parsed[next(iter(self._parsed))]  # the least recently written

    @staticmethod
    def _sender(
        sink: RecordSink, records: Sequence[OutgoingRecord]
    ) -> Callable[[], Awaitable[None]]:
        return lambda: sink.send_all(records)

    async def _retry(self, attempt: Callable[[], Awaitable[T]], what: str) -> T:
        return await retry_retriable(
            attempt,
            backoff=self._backoff,
            what=f"track_deliveries: {what}",
            sleep=self._sleep,
            on_retry=self._count_retry,
        )

    def _count_retry(self, error: RetriableError, delay_s: float) -> None:
        self.stats.retries += 1
