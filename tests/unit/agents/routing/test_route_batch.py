"""route_notifications' batches with fake tables and sinks: what is sent, stored, in what order."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from agents.retry import Backoff
from agents.routing.policy import RoutingState
from agents.routing.route_batch import (
    RELEASE_HEADER,
    RouteBatch,
    RouteSinks,
    SuppressionFeed,
)
from agents.routing.router import Router
from agents.routing.rules import RULES
from schemas.notifications import (
    NotificationDispatchEvent,
    NotificationRequestEvent,
    NotificationStatusEvent,
)
from schemas.suppressions import SuppressionEvent
from schemas.users import UserEvent
from streams.kafka.wire import decode, encode
from streams.runtime import SourceRecord
from tests.unit.agents.batch_fakes import ScopeStack
from tests.unit.agents.notification_factories import (
    NOON,
    USER,
    envelope,
    order_event,
    quiet,
    request_for,
    router,
    user_created,
    user_event,
)
from tests.unit.fakes import FakeSink, FakeSuppressionStore

USERS, AUTH, ORDERS = "users.events", "auth.events", "orders.events"
REQUESTS = "notifications.requests"
SUPPRESSIONS = "notifications.suppressions"


@dataclass
class Item:
    """A consumed record as the batches see it (Faust's event in the worker)."""

    record: SourceRecord
    release: str | None = None


class Table(dict[bytes, dict[str, Any]]):
    def __init__(self, log: list[str], name: str, scopes: ScopeStack[Item]) -> None:
        super().__init__()
        self.log, self.name = log, name
        self.reads: list[bytes] = []
        self.scopes = scopes
        # Per read, the item in scope (None: no scope).
        self.read_scopes: list[tuple[bytes, Item | None]] = []

    def __setitem__(self, key: bytes, value: dict[str, Any]) -> None:
        self.log.append(f"write {self.name}")
        super().__setitem__(key, value)

    def get(self, key: bytes, default: Any = None) -> Any:  # type: ignore[override]
        self.reads.append(key)
        self.read_scopes.append((key, self.scopes.current))
        return super().get(key, default)


def item(topic: str, event: BaseModel | None, raw: bytes | None = None, **kw: Any) -> Item:
    value = encode(event) if event is not None else raw
    return Item(SourceRecord(topic, 0, 0, b"k", value), **kw)


def without_user_rules() -> Router:
    """A router whose users events only set contacts (no welcome), so a test's user setup
    dispatches nothing of its own."""
    return replace(router(), rules=tuple(r for r in RULES if not r.event_type.startswith("user.")))


class Rig:
    def __init__(
        self,
        now: datetime = NOON,
        routes: Router | None = None,
        encoder: Callable[[BaseModel], bytes] = encode,
    ) -> None:
        self.log: list[str] = []
        self.now = now
        self.scopes: ScopeStack[Item] = ScopeStack()
        # Where earlier versions kept contacts (`legacy_contacts`); the routing entry holds them.
        self.contacts = Table(self.log, "contacts", self.scopes)
        self.routing = Table(self.log, "routing", self.scopes)
        self.deferred = Table(self.log, "deferred", self.scopes)
        self.dispatch = FakeSink(log=self.log, name="dispatch")
        self.status, self.requests, self.dead_letters = FakeSink(), FakeSink(), FakeSink()
        self.users_dead_letters = FakeSink()
        self.suppressions = Table(self.log, "suppressions", self.scopes)
        self.suppression_store = FakeSuppressionStore(log=self.log)
        self.suppression_dead_letters = FakeSink()
        self.sinks = RouteSinks(
            dispatch=self.dispatch,
            status=self.status,
            requests=self.requests,
            request_dead_letters=self.dead_letters,
            user_dead_letters=self.users_dead_letters,
            suppression_dead_letters=self.suppression_dead_letters,
        )
        self.batch: RouteBatch[Item] = RouteBatch(
            router=routes or without_user_rules(),
            users_topic=USERS,
            decode_user=lambda raw: decode(raw, UserEvent),
            decode_request=lambda raw: decode(raw, NotificationRequestEvent),
            encode=encoder,
            routing=self.routing,
            legacy_contacts=self.contacts,
            deferred=self.deferred,
            suppressions=SuppressionFeed(
                topic=SUPPRESSIONS,
                decode=lambda raw: decode(raw, SuppressionEvent),
                table=self.suppressions,
                store=self.suppression_store,
            ),
            sinks=self.sinks,
            describe=lambda i: i.record,
            release_of=lambda i: i.release,
            scope=self.scopes.scope,
            clock=lambda: self.now,
            backoff=Backoff(),
        )

    def sent(self, sink: FakeSink, model: type[Any]) -> list[Any]:
        return [decode(r.value, model) for r in sink.sent]


async def test_contact_then_request_dispatches_and_tables_are_written_after_the_sends() -> None:
    rig = Rig()
    request = request_for(order_event("order.paid"))
    await rig.batch.process([item(USERS, user_created()), item(REQUESTS, request)])
    (dispatch,) = rig.sent(rig.dispatch, NotificationDispatchEvent)
    assert (dispatch.payload.channel, dispatch.payload.recipient) == ("email", "ada@example.com")
    assert rig.dispatch.sent[0].key == dispatch.payload.notification_id.encode()
    assert dispatch.occurred_at == NOON
    (queued,) = rig.sent(rig.status, NotificationStatusEvent)
    assert (queued.payload.state, queued.source) == ("queued", "agent:route_notifications")
    assert queued.causation_id == str(request.event_id)
    assert rig.log[0] == "sent dispatch"
    # The contact and the routing state of the user: one entry, one write (one changelog record).
    assert rig.log[1:] == ["write routing"]
    entry = dict(rig.routing[USER.encode()])
    assert entry.pop("contact")["email"] == "ada@example.com"
    state = RoutingState.from_table(entry)
    assert dispatch.payload.notification_id in state.seen
    assert dict(rig.contacts) == {}
    # The same request in a later batch: nothing sent again.
    await rig.batch.process([item(REQUESTS, request)])
    assert len(rig.dispatch.sent) == 1


async def test_a_user_event_is_routed_in_place_after_its_contact_update() -> None:
    rig = Rig(routes=router())
    created = user_created()
    await rig.batch.process([item(USERS, created)])
    (dispatch,) = rig.sent(rig.dispatch, NotificationDispatchEvent)
    assert (dispatch.payload.template, dispatch.payload.recipient) == ("welcome", "ada@example.com")
    assert dispatch.payload.caused_at == created.occurred_at
    (queued,) = rig.sent(rig.status, NotificationStatusEvent)
    assert queued.payload.state == "queued"
    assert rig.requests.sent == []  # no hop through notifications.requests
    assert rig.batch.stats.requests == 1
    # The same event again (a redelivery): the routing table drops the repeat.
    await rig.batch.process([item(USERS, created)])
    assert len(rig.dispatch.sent) == 1


async def test_a_batch_reads_each_users_tables_once() -> None:
    """A user.created reads its routing state for the contact update and again for the welcome
    it routes in place: from the table once, the second time from what the batch read."""
    rig = Rig(routes=router())
    await rig.batch.process([item(USERS, user_created())])
    assert len(rig.dispatch.sent) == 1
    assert rig.routing.reads == [USER.encode()]
    assert rig.contacts.reads == [USER.encode()]  # no entry yet: an earlier version's contact?
    assert rig.suppressions.reads == [USER.encode()]
    # The next batch reads the table again (what a batch read is not kept past its end); the
    # entry holds the contact now, so the earlier versions' table is not looked at.
    await rig.batch.process([item(USERS, user_event("user.updated", locale="en-GB"))])
    assert rig.routing.reads == [USER.encode(), USER.encode()]
    assert rig.contacts.reads == [USER.encode()]


async def test_a_request_before_its_user_is_released_when_the_user_appears() -> None:
    rig = Rig()
    request = request_for(order_event("order.refunded"))
    await rig.batch.process([item(REQUESTS, request)])
    rid = request.payload.notification_id
    assert rig.dispatch.sent == []
    assert rid.encode() in rig.deferred
    await rig.batch.process([item(USERS, user_created())])
    (release,) = rig.requests.sent
    assert release.headers == ((RELEASE_HEADER, rid.encode()),)
    assert release.key == USER.encode()
    assert release.value == encode(request)
    await rig.batch.process([item(REQUESTS, request, release=rid)])
    assert len(rig.dispatch.sent) == 1
    assert rid.encode() not in rig.deferred


async def test_poison_and_unrenderable_requests_are_dead_lettered() -> None:
    rig = Rig()
    good = request_for(order_event("order.paid"))
    broken = good.model_copy(
        update={
            "payload": good.payload.model_copy(
                update={"template": "no-such-template", "notification_id": "other"}
            )
        }
    )
    await rig.batch.process(
        [
            item(USERS, user_created()),
            item(REQUESTS, None, raw=b"\x00\x00\x00\x00\x03garbage"),
            item(REQUESTS, broken),
            item(REQUESTS, good),
            item(USERS, None, raw=b"junk"),
        ]
    )
    assert len(rig.dead_letters.sent) == 2
    assert [r.value for r in rig.users_dead_letters.sent] == [b"junk"]
    assert len(rig.dispatch.sent) == 1
    headers = dict(rig.dead_letters.sent[1].headers)
    assert b"TemplateRenderError" in headers["dlq.error.type"]


async def deferred_until_one(rig: Rig) -> tuple[UserEvent, NotificationRequestEvent]:
    """A user opted in everywhere, quiet 11:00-13:00 UTC, and a refund request deferred by it."""
    prefs = user_event(
        "user.preferences-updated",
        categories={
            c: {"email": True, "sms": True, "push": True, "whatsapp": True}
            for c in ("security", "account", "orders", "marketing")
        },
        quiet_hours=quiet("11:00", "13:00", "UTC").model_dump(mode="json"),
    )
    request = request_for(order_event("order.refunded"))
    await rig.batch.process(
        [item(USERS, user_created()), item(USERS, prefs), item(REQUESTS, request)]
    )
    return prefs, request


async def test_deletion_erases_the_user_and_cancels_what_is_deferred() -> None:
    rig = Rig()
    await deferred_until_one(rig)
    (deferred,) = rig.sent(rig.status, NotificationStatusEvent)
    assert deferred.payload.state == "deferred"
    assert len(rig.deferred) == 1
    rig.now = NOON + timedelta(minutes=1)
    await rig.batch.process([item(USERS, user_event("user.deleted"))])
    cancelled = rig.sent(rig.status, NotificationStatusEvent)[-1]
    assert (cancelled.payload.state, cancelled.payload.reason) == ("cancelled", "user-deleted")
    assert cancelled.payload.notification_id == deferred.payload.notification_id
    assert (dict(rig.contacts), dict(rig.routing), dict(rig.deferred)) == ({}, {}, {})


# Contacts as earlier versions kept them (table `contacts`) -----------------------------------


async def legacy_user(rig: Rig, routed: list[str] | None = None) -> None:
    """`USER` as an earlier version left it: the contact in `contacts`, the routing state
    (having routed `routed`) in `notification_routing` without one."""
    created = Rig(routes=router())
    await created.batch.process([item(USERS, user_created())])
    entry = dict(created.routing[USER.encode()])
    dict.__setitem__(rig.contacts, USER.encode(), entry.pop("contact"))
    seen = dict.fromkeys(routed or (), 4e9)
    state = RoutingState.from_table(entry).model_copy(update={"seen": seen})
    dict.__setitem__(rig.routing, USER.encode(), state.to_table())


async def test_an_earlier_versions_contact_is_used_and_taken_over_by_the_users_entry() -> None:
    rig = Rig()
    await legacy_user(rig)
    request = request_for(order_event("order.paid"))
    await rig.batch.process([item(REQUESTS, request)])
    (dispatch,) = rig.sent(rig.dispatch, NotificationDispatchEvent)
    assert dispatch.payload.recipient == "ada@example.com"
    # Written once, the entry holds the contact, and the old table no longer does.
    assert rig.routing[USER.encode()]["contact"]["email"] == "ada@example.com"
    assert dict(rig.contacts) == {}
    reads = len(rig.contacts.reads)
    await rig.batch.process([item(REQUESTS, request_for(order_event("order.refunded")))])
    assert len(rig.sent(rig.dispatch, NotificationDispatchEvent)) == 2
    assert len(rig.contacts.reads) == reads


async def test_an_earlier_versions_routing_state_still_drops_what_it_routed() -> None:
    request = request_for(order_event("order.paid"))
    first = Rig()
    await first.batch.process([item(USERS, user_created()), item(REQUESTS, request)])
    (dispatch,) = first.sent(first.dispatch, NotificationDispatchEvent)
    rig = Rig()
    await legacy_user(rig, routed=[dispatch.payload.notification_id])
    await rig.batch.process([item(REQUESTS, request)])
    assert rig.dispatch.sent == []


async def test_deleting_a_user_erases_the_contact_an_earlier_version_kept() -> None:
    rig = Rig()
    await legacy_user(rig)
    await rig.batch.process([item(USERS, user_event("user.deleted"))])
    assert (dict(rig.contacts), dict(rig.routing)) == ({}, {})


async def test_deleting_a_user_erases_a_leftover_copy_beside_the_entry() -> None:
    """A crash between the entry's write and the old key's delete can leave both: the entry's
    contact is the one read, and the erasure removes the copy too."""
    rig = Rig()
    await rig.batch.process([item(USERS, user_created())])
    dict.__setitem__(rig.contacts, USER.encode(), {"email": "old@example.com"})
    await rig.batch.process([item(REQUESTS, request_for(order_event("order.paid")))])
    (dispatch,) = rig.sent(rig.dispatch, NotificationDispatchEvent)
    assert dispatch.payload.recipient == "ada@example.com"
    await rig.batch.process([item(USERS, user_event("user.deleted"))])
    assert (dict(rig.contacts), dict(rig.routing)) == ({}, {})


async def test_a_release_into_new_quiet_hours_is_deferred_again() -> None:
    rig = Rig()
    prefs, request = await deferred_until_one(rig)
    (nid,) = [key.decode() for key in rig.deferred]
    later = prefs.model_copy(
        update={
            "payload": prefs.payload.model_copy(
                update={"quiet_hours": quiet("12:00", "15:00", "UTC")}
            )
        }
    )
    rig.now = NOON + timedelta(hours=1, minutes=1)
    await rig.batch.process([item(USERS, later), item(REQUESTS, request, release=nid)])
    assert rig.dispatch.sent == []
    assert [key.decode() for key in rig.deferred] == [nid]
    states = [e.payload.reason for e in rig.sent(rig.status, NotificationStatusEvent)]
    assert states == [
        "quiet-hours until 2026-11-21T13:00+00:00",
        "quiet-hours until 2026-11-21T15:00+00:00",
    ]


# Suppressions --------------------------------------------------------------------------------


def suppression_event(event_type: str, **payload: Any) -> SuppressionEvent:
    return SuppressionEvent.model_validate(envelope(event_type, {"user_id": USER, **payload}))


def bounce_of(notification_id: str, problem: str = "hard_bounce") -> SuppressionEvent:
    return suppression_event(
        "suppression.reported",
        notification_id=notification_id,
        channel="email",
        problem=problem,
        reason="550 5.1.1 mailbox does not exist",
    )


async def _dispatched(rig: Rig, event: Any) -> str:
    before = len(rig.dispatch.sent)
    await rig.batch.process([item(REQUESTS, request_for(event))])
    (dispatch,) = rig.sent(rig.dispatch, NotificationDispatchEvent)[before:]
    return str(dispatch.payload.notification_id)


async def test_a_bounce_suppresses_the_address_in_table_and_view_and_the_next_send() -> None:
    rig = Rig()
    await rig.batch.process([item(USERS, user_created())])
    first = await _dispatched(rig, order_event("order.paid"))
    rig.log.clear()
    await rig.batch.process([item(SUPPRESSIONS, bounce_of(first))])
    # The table first (with the batch's offsets), then the view.
    assert rig.log == ["write suppressions", "write view"]
    (row,) = rig.suppression_store.rows[USER]
    assert (row.channel, row.address, row.kind, row.notification_id) == (
        "email",
        "ada@example.com",
        "bounced",
        first,
    )
    await rig.batch.process([item(REQUESTS, request_for(order_event("order.refunded")))])
    assert len(rig.dispatch.sent) == 1
    suppressed = [s.payload for s in rig.sent(rig.status, NotificationStatusEvent)]
    assert (suppressed[-1].state, suppressed[-1].reason) == (
        "suppressed",
        "suppressed: bounced 2026-11-21T12:00:00+00:00",
    )
    # The same report again (a redelivery): the table is unchanged, the view written again.
    writes = rig.suppression_store.writes
    await rig.batch.process([item(SUPPRESSIONS, bounce_of(first))])
    assert rig.suppression_store.writes == writes + 1
    assert len(rig.suppression_store.rows[USER]) == 1


async def test_a_lift_frees_the_address_and_empties_the_view() -> None:
    rig = Rig()
    await rig.batch.process([item(USERS, user_created())])
    first = await _dispatched(rig, order_event("order.paid"))
    await rig.batch.process([item(SUPPRESSIONS, bounce_of(first, "complaint"))])
    lifted = suppression_event("suppression.lifted", channel="email", address="ada@example.com")
    await rig.batch.process([item(SUPPRESSIONS, lifted)])
    assert USER not in rig.suppression_store.rows
    assert USER.encode() not in rig.suppressions
    await _dispatched(rig, order_event("order.refunded"))


async def test_a_report_on_a_forgotten_notification_is_counted_and_dropped() -> None:
    rig = Rig()
    await rig.batch.process([item(USERS, user_created())])
    await rig.batch.process([item(SUPPRESSIONS, bounce_of("never-sent"))])
    assert rig.batch.stats.reports_unmatched == 1
    assert USER.encode() not in rig.suppressions
    await _dispatched(rig, order_event("order.paid"))


async def test_deleting_the_user_erases_its_suppressions_and_rows() -> None:
    rig = Rig()
    await rig.batch.process([item(USERS, user_created())])
    first = await _dispatched(rig, order_event("order.paid"))
    await rig.batch.process([item(SUPPRESSIONS, bounce_of(first))])
    assert rig.suppression_store.rows[USER]
    await rig.batch.process([item(USERS, user_event("user.deleted"))])
    assert USER.encode() not in rig.suppressions
    assert USER not in rig.suppression_store.rows


async def test_an_undecodable_suppression_record_is_dead_lettered() -> None:
    rig = Rig()
    await rig.batch.process([item(SUPPRESSIONS, None, raw=b"junk")])
    (letter,) = rig.suppression_dead_letters.sent
    assert letter.value == b"junk"
    assert rig.suppression_store.writes == 0


async def test_a_changed_email_is_noticed_at_both_addresses_in_one_batch() -> None:
    rig = Rig(routes=router())
    await rig.batch.process([item(USERS, user_created())])
    welcome = len(rig.dispatch.sent)
    await rig.batch.process(
        [
            item(USERS, user_event("user.updated", email="ada@new.example.com")),
            item(USERS, user_event("user.updated", locale="en-GB")),
        ]
    )
    notices = rig.sent(rig.dispatch, NotificationDispatchEvent)[welcome:]
    assert sorted(d.payload.recipient for d in notices) == [
        "ada@example.com",
        "ada@new.example.com",
    ]
    assert {d.payload.template for d in notices} == {"profile-updated"}


class CountingEncoder:
    """The codec's encode, counting the models it was asked to encode, by type."""

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def __call__(self, event: BaseModel) -> bytes:
        self.encoded.append(type(event).__name__)
        return encode(event)


async def test_a_request_made_from_a_users_event_is_encoded_only_when_it_is_deferred() -> None:
    counting = CountingEncoder()
    rig = Rig(routes=router(), encoder=counting)
    await rig.batch.process([item(USERS, user_created())])
    assert len(rig.dispatch.sent) == 1  # the welcome, routed in place
    assert "NotificationRequestEvent" not in counting.encoded
    quiet_now = user_event(
        "user.preferences-updated",
        categories={"account": {"email": True, "sms": True, "push": True, "whatsapp": True}},
        quiet_hours=quiet("11:00", "13:00", "UTC").model_dump(mode="json"),
    )
    await rig.batch.process([item(USERS, quiet_now), item(USERS, user_event("user.verified"))])
    (entry,) = rig.deferred.values()
    kept = decode(base64.b64decode(entry["request"]), NotificationRequestEvent)
    assert kept.payload.template == "verification-confirmed"
    assert counting.encoded.count("NotificationRequestEvent") == 1


async def test_every_table_read_is_made_in_the_scope_of_the_users_record() -> None:
    """In the worker the scope is the record's partition, where its user's entries live: a read
    in it looks in that partition's store alone, where a read outside any looks in every
    partition's (a user the store has not seen yet costs one lookup per partition)."""
    rig = Rig(routes=router())
    ada, bob = item(USERS, user_created()), item(USERS, user_created("usr-2"))
    paid = item(REQUESTS, request_for(order_event("order.paid")))
    gone = item(USERS, user_event("user.deleted", "usr-2"))
    await rig.batch.process([ada, bob, paid, gone])
    await rig.batch.process([item(REQUESTS, request_for(order_event("order.paid", "usr-3")))])
    user_of = {id(ada): USER, id(bob): "usr-2", id(paid): USER, id(gone): "usr-2"}
    reads = [
        read
        for table in (rig.routing, rig.contacts, rig.suppressions)
        for read in table.read_scopes
    ]
    assert {key for key, _ in reads} == {USER.encode(), b"usr-2", b"usr-3"}
    assert all(scope is not None for _, scope in reads)
    assert all(key.decode() == user_of.get(id(scope), "usr-3") for key, scope in reads if scope)
