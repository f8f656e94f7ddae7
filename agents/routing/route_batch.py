"""One batch of route_notifications, written against small protocols so fakes can test it.

(`RequestBatch`, the other notification agent's, is in `notification_requests`.)
`RouteBatch` (route_notifications): users events fold into the user's contact (kept in the user's
`notification_routing` entry, see `agents.routing.recipients`) and, being keyed by user id
already, are turned into requests and routed in place (no hop through
`notifications.requests`: a user.created is one consumed record, not three); requests are routed
(see `notification_routing`) into dispatches, status events, deferrals; deferred requests are
released by sending their record again with a `tributary.release` header naming the id released;
`notifications.suppressions` events (bounce and complaint reports, operators' lifts) fold into the
user's suppressed addresses (`notification_suppressions`, see `agents.routing.suppressions`),
which every batch that touched them rewrites in PostgreSQL, after its sends and table writes.

Order within a batch, for at-least-once without loss: events are folded against an in-memory
overlay of the tables (so later events of the batch see earlier ones), then every output record
is sent and acknowledged by Kafka, and only then the tables are written and offsets acknowledged.
A crash in between re-processes the batch: at worst a notification is dispatched twice under the
same id (the dispatcher and tracking see the same id), never lost.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import Callable, MutableMapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from agents.dead_letters import set_aside
from agents.retry import Backoff, Sleep, retry_retriable
from agents.routing.contacts import Contact, fold_contact
from agents.routing.policy import Deferral, RoutingState
from agents.routing.recipients import Recipients
from agents.routing.router import Router, Routing, StatusChange, erase_user
from agents.routing.rules import NOTIFICATION_IDS, requests_for
from agents.routing.suppressions import UserSuppressions, fold_suppression, suppression_rows
from schemas.notifications import (
    NotificationDispatch,
    NotificationDispatchEvent,
    NotificationRequestEvent,
    NotificationStatusEvent,
)
from schemas.suppressions import SuppressionEvent
from schemas.users import UserDeleted, UserEvent
from streams.errors import PoisonError, RetriableError
from streams.runtime import OutgoingRecord, RecordSink, SourceRecord
from streams.stores.suppression_store import SuppressionRow

log = logging.getLogger(__name__)

E = TypeVar("E")
Table = MutableMapping[bytes, dict[str, Any]]
RELEASE_HEADER = "tributary.release"
ROUTE_SOURCE = "agent:route_notifications"


@dataclass(slots=True)
class NotificationStats:
    batches: int = 0
    events: int = 0
    requests: int = 0
    dispatches: int = 0
    statuses: int = 0
    releases: int = 0
    dead_letters: int = 0
    retries: int = 0
    # `notifications.suppressions` events folded, and bounce reports naming a notification the
    # router no longer remembers the address of (older than `dedupe_ttl_s`): dropped.
    suppression_events: int = 0
    reports_unmatched: int = 0
    suppression_rows: int = 0


async def send_records(
    sink: RecordSink,
    records: Sequence[OutgoingRecord],
    backoff: Backoff,
    sleep: Sleep,
    what: str,
    stats: NotificationStats,
) -> None:
    def count_retry(_error: RetriableError, _delay_s: float) -> None:
        stats.retries += 1

    if records:
        await retry_retriable(
            lambda: sink.send_all(records),
            backoff=backoff,
            what=what,
            sleep=sleep,
            on_retry=count_retry,
        )


class _Overlay:
    """A table seen through this batch's pending writes; `flush` applies them in `scope`.

    Each key is read from the table once per batch (a user.created reads its user's routing
    state for the contact update and again for the welcome it routes): a Faust table read
    (sensors, RocksDB, JSON) costs more than the fold that uses it. What is read is parsed into
    models by every caller, never changed in place.
    """

    def __init__(self, table: Table) -> None:
        self._table = table
        self._pending: dict[bytes, tuple[dict[str, Any] | None, Any]] = {}
        self._read: dict[bytes, dict[str, Any] | None] = {}

    def get(self, key: bytes) -> dict[str, Any] | None:
        if key in self._pending:
            return self._pending[key][0]
        if key in self._read:
            return self._read[key]
        value = self._read[key] = self._table.get(key)
        return value

    def put(self, key: bytes, value: dict[str, Any] | None, item: Any) -> None:
        self._pending[key] = (value, item)

    def flush(self, scope: Callable[[Any], AbstractContextManager[None]]) -> None:
        for key, (value, item) in self._pending.items():
            with scope(item):
                if value is not None:
                    self._table[key] = value
                elif self._table.get(key) is not None:
                    del self._table[key]
        self._pending.clear()
        self._read.clear()


@dataclass(frozen=True, slots=True)
class RouteSinks:
    dispatch: RecordSink
    status: RecordSink
    requests: RecordSink
    request_dead_letters: RecordSink
    user_dead_letters: RecordSink
    suppression_dead_letters: RecordSink


class SuppressionSink(Protocol):
    async def replace(self, user_ids: Sequence[str], rows: Sequence[SuppressionRow]) -> int: ...


@dataclass(frozen=True, slots=True)
class SuppressionFeed:
    """Deliverability in route_notifications: the `notifications.suppressions` topic, the
    `notification_suppressions` table (by user id) and its PostgreSQL view."""

    topic: str
    decode: Callable[[bytes | None], SuppressionEvent]
    table: Table
    store: SuppressionSink


class RouteBatch(Generic[E]):
    """route_notifications: users events and requests -> contacts, dispatches and statuses."""

    def __init__(
        self,
        *,
        router: Router,
        users_topic: str,
        decode_user: Callable[[bytes | None], UserEvent],
        decode_request: Callable[[bytes | None], NotificationRequestEvent],
        encode: Callable[[BaseModel], bytes],
        routing: Table,
        legacy_contacts: Table,
        deferred: Table,
        suppressions: SuppressionFeed,
        sinks: RouteSinks,
        describe: Callable[[E], SourceRecord],
        release_of: Callable[[E], str | None],
        scope: Callable[[E], AbstractContextManager[None]],
        clock: Callable[[], datetime],
        backoff: Backoff,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`routing`: `notification_routing`, each user's routing state and contact;
        `legacy_contacts`: the `contacts` table earlier versions kept contacts in."""
        self._router = router
        self._users_topic = users_topic
        self._decode_user = decode_user
        self._decode_request = decode_request
        self._encode = encode
        self._tables = (routing, legacy_contacts, deferred, suppressions.table)
        self._suppressions = suppressions
        self._sinks = sinks
        self._describe = describe
        self._release_of = release_of
        self._scope = scope
        self._clock = clock
        self._backoff = backoff
        self._sleep = sleep
        self.stats = NotificationStats()

    async def process(self, batch: Sequence[E]) -> None:
        now = self._clock()
        routing, legacy_contacts, deferred, suppressions = (_Overlay(t) for t in self._tables)
        tables = (Recipients(routing, legacy_contacts), deferred, suppressions)
        out = _Outbox()
        for item in batch:
            record = self._describe(item)
            with self._scope(item):  # a table read looks in the record's partition alone
                if record.topic == self._users_topic:
                    self._user_event(item, record, tables, out, now)
                elif record.topic == self._suppressions.topic:
                    self._suppression_event(item, record, tables, out)
                else:
                    self._request(item, record, tables, out, now)
        await self._send(out)
        rows = self._suppression_rows(suppressions, out.touched_users)
        for table in tables:
            table.flush(self._scope)
        await self._materialize(out.touched_users, rows)
        self.stats.batches += 1
        self.stats.events += len(batch)

    def _user_event(
        self, item: E, record: SourceRecord, tables: _Tables, out: _Outbox, now: datetime
    ) -> None:
        recipients, deferred, suppressions = tables
        try:
            event = self._decode_user(record.value)
        except PoisonError as exc:
            out.user_dead_letters.append(set_aside(record, exc))
            return
        user_id = event.payload.user_id
        key = user_id.encode()
        before = recipients.contact(key)
        contact = fold_contact(Contact.from_table(before) if before else None, event)
        state = RoutingState.from_table(recipients.routing(key))
        entries = _deferrals(deferred, state)
        if isinstance(event.payload, UserDeleted):
            for change in erase_user(user_id, state, entries, now):
                out.statuses.append(_status_record(change, event.correlation_id, event.event_id))
            for nid in state.deferred:
                deferred.put(nid.encode(), None, item)
            recipients.put_contact(key, None, item)
            recipients.put_routing(key, None, item)
            suppressions.put(key, None, item)
            out.touched_users.add(user_id)
            return
        assert contact is not None
        previous = Contact.from_table(before) if before else None
        recipients.put_contact(key, contact.to_table(), item)
        for entry in entries.values():
            if entry.kind == "contact":  # its user can be reached now: route it at once
                out.releases.append(release_record(entry))
        # After the contact update: the event may be the one that gives the user a contact.
        for request in requests_for(event, now=now, rules=self._router.rules, previous=previous):
            self.stats.requests += 1
            encoded = partial(self._encode, request)
            self._route(item, record, request, encoded, None, tables, out, now)

    def _request(
        self, item: E, record: SourceRecord, tables: _Tables, out: _Outbox, now: datetime
    ) -> None:
        try:
            event = self._decode_request(record.value)
        except PoisonError as exc:
            self._reject(record, exc, out)
            return
        release = self._release_of(item)
        value = record.value or b""
        self._route(item, record, event, lambda: value, release, tables, out, now)

    def _route(
        self,
        item: E,
        record: SourceRecord,
        event: NotificationRequestEvent,
        raw: Callable[[], bytes],
        release: str | None,
        tables: _Tables,
        out: _Outbox,
        now: datetime,
    ) -> None:
        recipients, deferred, suppressions = tables
        try:
            key = event.payload.user_id.encode()
            contact_value = recipients.contact(key)
            state = RoutingState.from_table(recipients.routing(key))
            entries = _deferrals(deferred, state)
            if release is not None and release not in state.deferred:
                entries = {**entries, **_deferrals(deferred, RoutingState(deferred=[release]))}
            result = self._router.route(
                event,
                raw,
                contact=Contact.from_table(contact_value) if contact_value else None,
                state=state,
                deferred=entries,
                release=release,
                now=now,
                suppressions=UserSuppressions.from_table(suppressions.get(key)),
            )
        except PoisonError as exc:
            self._reject(record, exc, out)
            return
        self._apply(item, event, result, recipients, deferred, out, now)

    def _suppression_event(
        self, item: E, record: SourceRecord, tables: _Tables, out: _Outbox
    ) -> None:
        """A bounce or complaint report, or an operator's lift, folded into the user's
        suppressed addresses (the view of the user is rewritten, changed or not: a replay after
        a crash between the table and the view repairs the view)."""
        recipients, _deferred, suppressions = tables
        try:
            event = self._suppressions.decode(record.value)
        except PoisonError as exc:
            out.suppression_dead_letters.append(set_aside(record, exc))
            return
        self.stats.suppression_events += 1
        user_id = event.payload.user_id
        key = user_id.encode()
        current = UserSuppressions.from_table(suppressions.get(key))
        state = RoutingState.from_table(recipients.routing(key))
        folded = fold_suppression(current, state, event, self._router.settings)
        if folded is None:
            self.stats.reports_unmatched += 1
            log.warning(
                "suppression report %s names notification %s, whose address is not remembered",
                event.event_id,
                getattr(event.payload, "notification_id", None),
            )
            return
        if folded != current:
            suppressions.put(key, folded.to_table() if folded.addresses else None, item)
        out.touched_users.add(user_id)

    @staticmethod
    def _suppression_rows(suppressions: _Overlay, user_ids: set[str]) -> list[SuppressionRow]:
        rows: list[SuppressionRow] = []
        for user_id in sorted(user_ids):
            state = UserSuppressions.from_table(suppressions.get(user_id.encode()))
            rows.extend(suppression_rows(user_id, state))
        return rows

    async def _materialize(self, user_ids: set[str], rows: list[SuppressionRow]) -> None:
        """The touched users' rows of the PostgreSQL view: one transaction per batch."""
        if not user_ids:
            return
        users = sorted(user_ids)

        def count_retry(_error: RetriableError, _delay_s: float) -> None:
            self.stats.retries += 1

        written = await retry_retriable(
            lambda: self._suppressions.store.replace(users, rows),
            backoff=self._backoff,
            what="writing suppressions",
            sleep=self._sleep,
            on_retry=count_retry,
        )
        self.stats.suppression_rows += written

    @staticmethod
    def _reject(record: SourceRecord, exc: PoisonError, out: _Outbox) -> None:
        out.dead_letters.append(set_aside(record, exc))

    def _apply(
        self,
        item: E,
        event: NotificationRequestEvent,
        result: Routing,
        recipients: Recipients,
        deferred: _Overlay,
        out: _Outbox,
        now: datetime,
    ) -> None:
        recipients.put_routing(event.payload.user_id.encode(), result.state.to_table(), item)
        for nid in result.undefer:  # first: a released notification may be deferred again
            deferred.put(nid.encode(), None, item)
        for entry in result.defer:
            deferred.put(entry.notification_id.encode(), entry.to_table(), item)
        for dispatch in result.dispatches:
            out.dispatches.append(_dispatch_record(dispatch, event, now))
        for change in result.statuses:
            out.statuses.append(_status_record(change, event.correlation_id, event.event_id))

    async def _send(self, out: _Outbox) -> None:
        sends = (
            (self._sinks.dispatch, [self._encoded(r) for r in out.dispatches], "dispatches"),
            (self._sinks.status, [self._encoded(r) for r in out.statuses], "status events"),
            (self._sinks.requests, out.releases, "released requests"),
            (self._sinks.request_dead_letters, out.dead_letters, "request dead letters"),
            (self._sinks.user_dead_letters, out.user_dead_letters, "users dead letters"),
            (
                self._sinks.suppression_dead_letters,
                out.suppression_dead_letters,
                "suppressions dead letters",
            ),
        )
        await asyncio.gather(
            *(
                send_records(
                    sink, records, self._backoff, self._sleep, f"sending {what}", self.stats
                )
                for sink, records, what in sends
            )
        )
        self.stats.dispatches += len(out.dispatches)
        self.stats.statuses += len(out.statuses)
        self.stats.releases += len(out.releases)
        self.stats.dead_letters += (
            len(out.dead_letters) + len(out.user_dead_letters) + len(out.suppression_dead_letters)
        )

    def _encoded(self, keyed: tuple[str, BaseModel]) -> OutgoingRecord:
        key, event = keyed
        return OutgoingRecord(key=key.encode(), value=self._encode(event))


@dataclass(slots=True)
class _Outbox:
    dispatches: list[tuple[str, BaseModel]] = field(default_factory=list)
    statuses: list[tuple[str, BaseModel]] = field(default_factory=list)
    releases: list[OutgoingRecord] = field(default_factory=list)
    dead_letters: list[OutgoingRecord] = field(default_factory=list)
    user_dead_letters: list[OutgoingRecord] = field(default_factory=list)
    suppression_dead_letters: list[OutgoingRecord] = field(default_factory=list)
    # Users whose suppressions the batch folded (or erased): their view rows are rewritten.
    touched_users: set[str] = field(default_factory=set)


_Tables = tuple[Recipients, _Overlay, _Overlay]


def _deferrals(deferred: _Overlay, state: RoutingState) -> dict[str, Deferral]:
    found = {}
    for nid in state.deferred:
        value = deferred.get(nid.encode())
        if value is not None:
            found[nid] = Deferral.from_table(value)
    return found


def release_record(entry: Deferral) -> OutgoingRecord:
    """The deferred request's own record again, keyed by its user, naming what it releases."""
    return OutgoingRecord(
        key=entry.user_id.encode(),
        value=base64.b64decode(entry.request),
        headers=((RELEASE_HEADER, entry.notification_id.encode()),),
    )


def _status_record(
    change: StatusChange, correlation_id: str, cause: uuid.UUID
) -> tuple[str, BaseModel]:
    payload = change.payload
    nid = payload.notification_id
    event = NotificationStatusEvent(
        event_id=NOTIFICATION_IDS.uuid(f"{nid}/{payload.state}/{payload.reason}"),
        event_type="notification.status-changed",
        occurred_at=change.at,
        ingested_at=change.at,
        source=ROUTE_SOURCE,
        correlation_id=correlation_id,
        causation_id=str(cause),
        payload=payload,
    )
    return nid, event


def _dispatch_record(
    dispatch: NotificationDispatch, request: NotificationRequestEvent, now: datetime
) -> tuple[str, BaseModel]:
    nid = dispatch.notification_id
    event = NotificationDispatchEvent(
        event_id=NOTIFICATION_IDS.uuid(f"{nid}/dispatch/{dispatch.attempt}"),
        event_type="notification.dispatch-requested",
        occurred_at=now,
        ingested_at=now,
        source=ROUTE_SOURCE,
        correlation_id=request.correlation_id,
        causation_id=str(request.event_id),
        payload=dispatch,
    )
    return nid, event
