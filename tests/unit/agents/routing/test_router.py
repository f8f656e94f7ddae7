"""The router's decisions: channels, opt-outs, quiet hours, throttles, waiting, dedupe, erasure."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agents.routing.contacts import Contact
from agents.routing.policy import Deferral, RoutingState, quiet_hours_end
from agents.routing.router import Routing, erase_user, plan
from agents.routing.rules import channel_notification_id, rule_named
from schemas.notifications import NotificationRequestEvent
from streams.settings import ThrottleLimit
from tests.unit.agents.notification_factories import (
    NOON,
    auth_event,
    contact,
    order_event,
    preferences,
    quiet,
    request_for,
    router,
    user_created,
)

RAW = b"\x00raw request record"


def _route(
    request: NotificationRequestEvent,
    who: Contact | None,
    state: RoutingState | None = None,
    deferred: dict[str, Deferral] | None = None,
    release: str | None = None,
    now: datetime = NOON,
    **kwargs: Any,
) -> Routing:
    return router(*kwargs.get("throttles", ())).route(
        request,
        lambda: RAW,
        contact=who,
        state=state or RoutingState(),
        deferred=deferred or {},
        release=release,
        now=now,
    )


def _channels(routing: Routing) -> list[tuple[str, str]]:
    return sorted((d.channel, d.recipient) for d in routing.dispatches)


def _states(routing: Routing) -> list[tuple[str, str | None]]:
    return [(s.payload.state, s.payload.reason) for s in routing.statuses]


# Channels per rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "channels"),
    [
        (user_created(), [("email", "ada@example.com")]),
        (auth_event("auth.password-reset-requested"), [("email", "ada@example.com")]),
        (auth_event("auth.password-changed"), [("email", "ada@example.com")]),
        (
            auth_event("auth.suspicious-login", reason="brute-force"),
            [("email", "ada@example.com"), ("sms", "+33612345678")],
        ),
        (order_event("order.paid"), [("email", "ada@example.com")]),
        (order_event("order.fulfilled"), [("push", "tok-1")]),
        (order_event("order.refunded"), [("email", "ada@example.com")]),
    ],
)
def test_each_rule_dispatches_on_its_channels(event: Any, channels: list[tuple[str, str]]) -> None:
    routing = _route(request_for(event), contact())
    assert _channels(routing) == channels
    assert _states(routing) == [("queued", None)] * len(channels)
    for dispatch in routing.dispatches:
        assert dispatch.notification_id == channel_notification_id(
            str(event.event_id), request_for(event).payload.rule or "", dispatch.channel
        )
        assert dispatch.attempt == 1
        assert dispatch.caused_at == event.occurred_at
        assert dispatch.critical == (request_for(event).payload.category == "critical")


def test_order_paid_adds_whatsapp_or_sms_only_when_opted_in() -> None:
    request = request_for(order_event("order.paid"))
    both = _route(request, contact(preferences=preferences()))
    assert _channels(both) == [("email", "ada@example.com"), ("whatsapp", "+33612345678")]
    sms_only = _route(request, contact(preferences=preferences(orders_whatsapp=False)))
    assert _channels(sms_only) == [("email", "ada@example.com"), ("sms", "+33612345678")]
    neither = preferences(orders_whatsapp=False, orders_sms=False)
    assert _channels(_route(request, contact(preferences=neither))) == [
        ("email", "ada@example.com")
    ]
    no_phone = _route(request, contact(phone=None, preferences=preferences()))
    assert _channels(no_phone) == [("email", "ada@example.com")]
    assert _states(no_phone) == [("queued", None)]  # an opt-in extra is not owed: no status


def test_order_fulfilled_is_push_else_email() -> None:
    request = request_for(order_event("order.fulfilled"))
    assert _channels(_route(request, contact(push_token=None))) == [("email", "ada@example.com")]
    push_off = contact(preferences=preferences(orders_push=False))
    assert _channels(_route(request, push_off)) == [("email", "ada@example.com")]


# Opt-outs and critical -------------------------------------------------------------------------


def test_an_opt_out_suppresses_with_its_reason() -> None:
    request = request_for(order_event("order.refunded"))
    routing = _route(request, contact(preferences=preferences(orders_email=False)))
    assert routing.dispatches == []
    assert _states(routing) == [("suppressed", "opted-out")]
    status = routing.statuses[0].payload
    assert (status.channel, status.category, status.template) == (
        "email",
        "orders",
        "order-refunded",
    )
    fulfilled = request_for(order_event("order.fulfilled"))
    all_off = contact(preferences=preferences(orders_push=False, orders_email=False))
    assert _states(_route(fulfilled, all_off)) == [("suppressed", "opted-out")]


def test_no_contact_point_suppresses_with_its_reason() -> None:
    routing = _route(request_for(order_event("order.refunded")), contact(email=None))
    assert _states(routing) == [("suppressed", "no-contact")]


def test_critical_ignores_opt_outs_quiet_hours_and_throttles() -> None:
    everything_off = preferences(
        **{
            f"{cat}_{ch}": False
            for cat in ("security", "account", "orders", "marketing")
            for ch in ("email", "sms", "push", "whatsapp")
        }
    )
    who = contact(preferences=everything_off, quiet_hours=quiet("00:00", "23:59", "UTC"))
    limits = (ThrottleLimit(channel="email", limit=1, window_s=3600),)
    state = RoutingState()
    for _ in range(3):
        request = request_for(auth_event("auth.suspicious-login", reason="brute-force"))
        routing = _route(request, who, state, throttles=limits)
        assert _channels(routing) == [("email", "ada@example.com"), ("sms", "+33612345678")]
        state = routing.state
    assert state.sends == {}  # critical sends are not counted either


# Quiet hours -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("utc", "ends"),
    [
        # 22:00-07:00 in Paris (UTC+1 in November) spans midnight.
        ("2026-11-21T20:59", None),
        ("2026-11-21T21:00", "2026-11-22T07:00+01:00"),
        ("2026-11-21T23:30", "2026-11-22T07:00+01:00"),
        ("2026-11-22T05:59", "2026-11-22T07:00+01:00"),
        ("2026-11-22T06:00", None),
        ("2026-11-21T12:00", None),
    ],
)
def test_quiet_hours_span_midnight_in_the_users_time_zone(utc: str, ends: str | None) -> None:
    now = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    end = quiet_hours_end(quiet("22:00", "07:00"), "Europe/Paris", now)
    assert end == (None if ends is None else datetime.fromisoformat(ends))


def test_quiet_hours_use_their_own_zone_and_same_day_windows() -> None:
    now = datetime(2026, 11, 21, 12, 30, tzinfo=UTC)
    assert quiet_hours_end(quiet("12:00", "13:00", "UTC"), "Asia/Tokyo", now) == datetime(
        2026, 11, 21, 13, 0, tzinfo=UTC
    )
    assert quiet_hours_end(quiet("12:00", "13:00"), "Asia/Tokyo", now) is None  # 21:30 there
    assert quiet_hours_end(None, "UTC", now) is None
    assert quiet_hours_end(quiet("12:00", "13:00"), None, now) is not None  # UTC by default


def test_quiet_hours_defer_then_release_routes_the_one_channel() -> None:
    who = contact(quiet_hours=quiet("12:00", "13:00", "UTC"))
    request = request_for(order_event("order.refunded"))
    routing = _route(request, who)
    assert routing.dispatches == []
    assert _states(routing) == [("deferred", "quiet-hours until 2026-11-21T13:00+00:00")]
    (deferral,) = routing.defer
    nid = routing.statuses[0].payload.notification_id
    assert (deferral.notification_id, deferral.kind, deferral.channel) == (
        nid,
        "quiet-hours",
        "email",
    )
    assert deferral.due_s == datetime(2026, 11, 21, 13, 0, tzinfo=UTC).timestamp()
    assert base64.b64decode(deferral.request) == RAW
    assert routing.state.deferred == [nid]
    entries = {nid: deferral}
    # The same request again while deferred (a redelivery): nothing new.
    again = _route(request, who, routing.state, entries, now=NOON + timedelta(minutes=5))
    assert (again.dispatches, again.statuses, again.defer) == ([], [], [])
    # Released once the quiet hours are over.
    later = NOON + timedelta(hours=1)
    released = _route(request, who, routing.state, entries, release=nid, now=later)
    assert [d.notification_id for d in released.dispatches] == [nid]
    assert _states(released) == [("queued", None)]
    assert released.undefer == [nid]
    assert released.state.deferred == []
    # A second release (the timer sent it twice): routed already.
    twice = _route(request, who, released.state, {}, release=nid, now=later)
    assert (twice.dispatches, twice.statuses) == ([], [])


# Throttles -------------------------------------------------------------------------------------


def test_throttle_counts_per_channel_and_category_in_a_sliding_window() -> None:
    limits = (
        ThrottleLimit(channel="email", limit=2, window_s=3600),
        ThrottleLimit(channel="email", category="account", limit=5, window_s=60),
    )
    state = RoutingState()
    outcomes = []
    for minute in (0, 10, 20, 61, 71):
        request = request_for(order_event("order.refunded"))
        routing = _route(
            request, contact(), state, now=NOON + timedelta(minutes=minute), throttles=limits
        )
        outcomes.append(_states(routing)[0])
        state = routing.state
    reason = "throttled: at most 2 email orders notifications per 3600 s"
    # 2 allowed, the third suppressed (it is not counted); at minute 61 the window holds only
    # the send of minute 10, at minute 71 only that of minute 61.
    assert outcomes == [
        ("queued", None),
        ("queued", None),
        ("suppressed", reason),
        ("queued", None),
        ("queued", None),
    ]
    # Another category has its own count (and its own limit).
    welcome = _route(
        request_for(user_created()),
        contact(),
        state,
        now=NOON + timedelta(minutes=72),
        throttles=limits,
    )
    assert _states(welcome) == [("queued", None)]


def test_suppressed_and_throttled_ids_are_remembered_so_repeats_are_silent() -> None:
    request = request_for(order_event("order.refunded"))
    who = contact(preferences=preferences(orders_email=False))
    first = _route(request, who)
    assert _states(first) == [("suppressed", "opted-out")]
    assert _route(request, who, first.state).statuses == []


# Deduplication ---------------------------------------------------------------------------------


def test_a_redelivered_request_is_dispatched_once_and_forgotten_after_the_ttl() -> None:
    request = request_for(order_event("order.paid"))
    first = _route(request, contact())
    assert len(first.dispatches) == 1
    again = _route(request, contact(), first.state, now=NOON + timedelta(minutes=30))
    assert (again.dispatches, again.statuses) == ([], [])
    much_later = _route(request, contact(), first.state, now=NOON + timedelta(hours=2))
    assert len(much_later.dispatches) == 1  # the factories' dedupe TTL is an hour


# Waiting for the contact record ---------------------------------------------------------------


def test_a_request_before_its_user_waits_then_routes_or_gives_up() -> None:
    request = request_for(order_event("order.refunded"))
    rid = request.payload.notification_id
    waiting = _route(request, None)
    (deferral,) = waiting.defer
    assert (deferral.notification_id, deferral.kind) == (rid, "contact")
    assert deferral.due_s == NOON.timestamp() + 600
    assert waiting.statuses == []
    entries = {rid: deferral}
    # Redelivered while waiting: still waiting, nothing new.
    assert _route(request, None, waiting.state, entries).defer == []
    # The user appeared and the record was released: routed, the wait is over.
    routed = _route(request, contact(), waiting.state, entries, release=rid)
    assert _channels(routed) == [("email", "ada@example.com")]
    assert routed.undefer == [rid]
    # Nobody appeared within the wait: suppressed, no-contact, under the channel's id.
    late = NOON + timedelta(seconds=601)
    gave_up = _route(request, None, waiting.state, entries, release=rid, now=late)
    assert _states(gave_up) == [("suppressed", "no-contact")]
    assert gave_up.statuses[0].payload.notification_id == channel_notification_id(
        request.payload.caused_by_event_id or "", "order-refunded", "email"
    )
    assert gave_up.undefer == [rid]


def test_an_external_request_keeps_its_id_on_its_channel() -> None:
    base = request_for(order_event("order.refunded"))
    payload = base.payload.model_copy(
        update={
            "notification_id": "ext-1",
            "rule": None,
            "caused_by_event_id": None,
            "channel": "sms",
        }
    )
    request = base.model_copy(update={"payload": payload})
    routing = _route(request, contact())
    assert [(d.notification_id, d.channel) for d in routing.dispatches] == [("ext-1", "sms")]
    assert rule_named(None) is None


def test_plan_without_rule_or_channel_follows_preferences() -> None:
    base = request_for(order_event("order.refunded")).payload
    request = base.model_copy(update={"rule": None, "channel": None})
    prefs = preferences(orders_email=False, orders_push=False, orders_whatsapp=False)
    planned = plan(request, None, contact(preferences=prefs))
    assert [p.channel for p in planned] == ["sms"]
    critical = request.model_copy(update={"category": "critical"})
    assert [p.channel for p in plan(critical, None, contact(push_token=None))] == [
        "email",
        "sms",
        "whatsapp",
    ]


# Erasure ---------------------------------------------------------------------------------------


def test_erasure_cancels_every_deferred_notification() -> None:
    who = contact(quiet_hours=quiet("12:00", "13:00", "UTC"))
    routing = _route(request_for(order_event("order.refunded")), who)
    (deferral,) = routing.defer
    changes = erase_user("usr-1", routing.state, {deferral.notification_id: deferral}, NOON)
    assert [
        (c.payload.notification_id, c.payload.state, c.payload.reason, c.payload.channel)
        for c in changes
    ] == [(deferral.notification_id, "cancelled", "user-deleted", "email")]
    assert erase_user("usr-1", RoutingState(), {}, NOON) == []
