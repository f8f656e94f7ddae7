"""Suppressed addresses: what a report does to them, how the router honours them, and the
user.updated notice (its condition and its copy to the previous email address)."""

from __future__ import annotations

from typing import Any

import pytest

from agents.routing.contacts import Contact
from agents.routing.policy import RoutingState
from agents.routing.router import Routing
from agents.routing.rules import changed_fields, requests_for, rule_named
from agents.routing.suppressions import (
    UserSuppressions,
    apply_report,
    fold_suppression,
    is_soft_bounce,
    lift,
    suppression_rows,
)
from schemas.notifications import NotificationRequestEvent
from schemas.suppressions import SuppressionEvent, SuppressionReported
from streams.settings import NotificationSettings
from tests.unit.agents.notification_factories import (
    NOON,
    USER,
    auth_event,
    contact,
    envelope,
    order_event,
    request_for,
    router,
    user_event,
)

DAY_S = 24 * 3600.0
T0 = NOON.timestamp()
SETTINGS = NotificationSettings(soft_bounce_limit=3, soft_bounce_window_s=7 * 24 * 3600)


def report(
    problem: str, channel: str = "email", nid: str = "n-1", **kw: Any
) -> SuppressionReported:
    return SuppressionReported(
        user_id=USER, notification_id=nid, channel=channel, problem=problem, **kw
    )


def applied(state: UserSuppressions, problem: str, at_s: float, **kw: Any) -> UserSuppressions:
    return apply_report(
        state,
        report(problem, **kw),
        "ada@example.com",
        at_s,
        soft_bounce_limit=3,
        soft_bounce_window_s=7 * DAY_S,
    )


@pytest.mark.parametrize(
    ("reason", "soft"),
    [
        ("452 4.2.2 mailbox full", True),
        ("421 try again later", True),
        ("Deferred: 4.7.1 greylisted", True),
        ("550 5.1.1 mailbox does not exist", False),
        ("30005 unknown destination handset", False),
        ("UNREGISTERED device token", False),
        ("rate 4.5 too high", False),
        (None, False),
    ],
)
def test_a_bounce_is_soft_only_when_its_reason_says_temporary(
    reason: str | None, soft: bool
) -> None:
    assert is_soft_bounce(reason) is soft


def test_a_hard_bounce_or_a_complaint_suppresses_at_once_with_its_time() -> None:
    bounced = applied(UserSuppressions(), "hard_bounce", T0, reason="550 5.1.1 no such user")
    held = bounced.held("email", "ada@example.com")
    assert held is not None
    assert (held.kind, held.reason, held.notification_id) == (
        "bounced",
        "550 5.1.1 no such user",
        "n-1",
    )
    assert held.status_reason() == "suppressed: bounced 2026-11-21T12:00:00+00:00"
    complained = applied(UserSuppressions(), "complaint", T0)
    assert complained.held("email", "ada@example.com").status_reason() == (  # type: ignore[union-attr]
        "suppressed: complained 2026-11-21T12:00:00+00:00"
    )
    # Per channel and address: the same address elsewhere, another address, are free.
    assert bounced.held("sms", "ada@example.com") is None
    assert bounced.held("email", "bob@example.com") is None


def test_three_soft_bounces_within_the_window_suppress_older_ones_do_not_count() -> None:
    state = UserSuppressions()
    state = applied(state, "soft_bounce", T0 - 8 * DAY_S)  # outside the window of the third
    state = applied(state, "soft_bounce", T0 - 2 * DAY_S)
    state = applied(state, "soft_bounce", T0)
    assert state.held("email", "ada@example.com") is None
    assert len(state.addresses["email:ada@example.com"].soft_bounces) == 2
    state = applied(state, "soft_bounce", T0 + 60)
    held = state.held("email", "ada@example.com")
    assert held is not None
    assert (held.kind, held.since_s) == ("bounced", T0 + 60)


def test_soft_bounces_of_different_messages_in_the_same_second_each_count() -> None:
    """Providers report whole seconds: three messages bouncing within one are three bounces
    (a report read again, the same message at the same time, still counts once)."""
    state = applied(UserSuppressions(), "soft_bounce", T0, nid="n-1")
    state = applied(state, "soft_bounce", T0, nid="n-2")
    assert applied(state, "soft_bounce", T0, nid="n-2") == state
    assert len(state.addresses["email:ada@example.com"].soft_bounces) == 2
    state = applied(state, "soft_bounce", T0, nid="n-3")
    held = state.held("email", "ada@example.com")
    assert held is not None
    assert (held.kind, held.notification_id) == ("bounced", "n-3")


def test_soft_bounces_stored_as_times_alone_still_load() -> None:
    """Entries written before the notification was kept with each soft bounce."""
    stored = {
        "addresses": {
            "email:ada@example.com": {
                "channel": "email",
                "address": "ada@example.com",
                "soft_bounces": [T0 - 60, T0 - 30],
            }
        }
    }
    state = UserSuppressions.from_table(stored)
    state = applied(state, "soft_bounce", T0, nid="n-9")
    assert state.held("email", "ada@example.com") is not None


def test_a_report_applied_again_changes_nothing_and_the_first_cause_stays() -> None:
    once = applied(UserSuppressions(), "soft_bounce", T0)
    assert applied(once, "soft_bounce", T0) == once
    bounced = applied(UserSuppressions(), "hard_bounce", T0)
    assert applied(bounced, "hard_bounce", T0) == bounced
    assert applied(bounced, "complaint", T0 + 5) == bounced


def test_lifting_forgets_the_address_and_its_soft_bounces() -> None:
    state = applied(applied(UserSuppressions(), "soft_bounce", T0), "hard_bounce", T0 + 1)
    other = apply_report(
        state,
        report("complaint", channel="sms"),
        "+33612345678",
        T0,
        soft_bounce_limit=3,
        soft_bounce_window_s=DAY_S,
    )
    lifted = lift(other, "email", "ada@example.com")
    assert lifted.held("email", "ada@example.com") is None
    assert "email:ada@example.com" not in lifted.addresses
    assert lifted.held("sms", "+33612345678") is not None
    assert lift(lifted, "email", "ada@example.com") == lifted


def _event(payload: dict[str, Any], event_type: str = "suppression.reported") -> SuppressionEvent:
    return SuppressionEvent.model_validate(envelope(event_type, payload))


def test_the_fold_finds_the_address_the_notification_went_to_or_drops_the_report() -> None:
    routing = RoutingState(seen={"n-1": T0 + DAY_S}, sent_to={"n-1": "old@example.com"})
    bounce = _event(
        {"user_id": USER, "notification_id": "n-1", "channel": "email", "problem": "hard_bounce"}
    )
    folded = fold_suppression(UserSuppressions(), routing, bounce, SETTINGS)
    assert folded is not None
    assert folded.held("email", "old@example.com") is not None
    unknown = bounce.model_copy(
        update={"payload": bounce.payload.model_copy(update={"notification_id": "n-2"})}
    )
    assert fold_suppression(folded, routing, unknown, SETTINGS) is None
    lifted = _event(
        {"user_id": USER, "channel": "email", "address": "old@example.com"}, "suppression.lifted"
    )
    assert fold_suppression(folded, routing, lifted, SETTINGS) == UserSuppressions()
    (row,) = suppression_rows(USER, folded)
    assert (row.channel, row.address, row.user_id, row.kind) == (
        "email",
        "old@example.com",
        USER,
        "bounced",
    )
    assert row.suppressed_at == NOON


# The router ----------------------------------------------------------------------------------


def _route(
    request: NotificationRequestEvent,
    who: Contact,
    suppressions: UserSuppressions,
    state: RoutingState | None = None,
) -> Routing:
    return router().route(
        request,
        lambda: b"raw",
        contact=who,
        state=state or RoutingState(),
        deferred={},
        release=None,
        now=NOON,
        suppressions=suppressions,
    )


def _suppressed(channel: str, address: str, problem: str = "hard_bounce") -> UserSuppressions:
    return apply_report(
        UserSuppressions(),
        report(problem, channel=channel),
        address,
        T0 - 3600,
        soft_bounce_limit=3,
        soft_bounce_window_s=DAY_S,
    )


def test_a_notification_to_a_suppressed_address_is_suppressed_with_why_and_when() -> None:
    routing = _route(
        request_for(order_event("order.paid")), contact(), _suppressed("email", "ada@example.com")
    )
    assert routing.dispatches == []
    (status,) = routing.statuses
    assert (status.payload.state, status.payload.channel) == ("suppressed", "email")
    assert status.payload.reason == "suppressed: bounced 2026-11-21T11:00:00+00:00"
    assert status.payload.notification_id in routing.state.seen  # a repeat stays silent


def test_a_new_address_is_not_held_by_the_old_ones_suppression() -> None:
    routing = _route(
        request_for(order_event("order.paid")),
        contact(email="ada@new.example.com"),
        _suppressed("email", "ada@example.com", "complaint"),
    )
    assert [(d.channel, d.recipient) for d in routing.dispatches] == [
        ("email", "ada@new.example.com")
    ]
    nid = routing.dispatches[0].notification_id
    assert routing.state.sent_to == {nid: "ada@new.example.com"}


def test_a_critical_notification_to_a_suppressed_email_goes_by_sms() -> None:
    request = request_for(auth_event("auth.password-reset-requested"))
    routing = _route(request, contact(), _suppressed("email", "ada@example.com"))
    assert [(d.channel, d.recipient, d.critical) for d in routing.dispatches] == [
        ("sms", "+33612345678", True)
    ]
    states = sorted((s.payload.channel, s.payload.state) for s in routing.statuses)
    assert states == [("email", "suppressed"), ("sms", "queued")]


def test_a_critical_notification_with_no_other_channel_is_recorded_suppressed() -> None:
    request = request_for(auth_event("auth.password-changed"))
    who = contact(phone=None, push_token=None)
    routing = _route(request, who, _suppressed("email", "ada@example.com"))
    assert routing.dispatches == []
    assert [(s.payload.state, s.payload.reason) for s in routing.statuses] == [
        ("suppressed", "suppressed: bounced 2026-11-21T11:00:00+00:00")
    ]


def test_no_fallback_while_another_channel_reaches_the_user_and_none_to_a_suppressed_one() -> None:
    request = request_for(auth_event("auth.suspicious-login", reason="brute-force"))
    routing = _route(request, contact(), _suppressed("email", "ada@example.com"))
    assert [(d.channel, d.recipient) for d in routing.dispatches] == [("sms", "+33612345678")]
    # And a suppressed phone is no fallback: push is next.
    both = (
        _suppressed("email", "ada@example.com").addresses
        | _suppressed("sms", "+33612345678").addresses
    )
    routing = _route(
        request_for(auth_event("auth.password-reset-requested")),
        contact(),
        UserSuppressions(addresses=both),
    )
    assert [(d.channel, d.recipient) for d in routing.dispatches] == [("push", "tok-1")]


# The user.updated notice ---------------------------------------------------------------------


def _updated(**payload: Any) -> Any:
    return user_event("user.updated", **payload)


def test_the_notice_is_asked_only_when_email_or_phone_change() -> None:
    rule = rule_named("user-updated-profile-notice")
    assert rule is not None
    before = contact()
    assert changed_fields(rule, _updated(email="ada@example.com").payload, before) == []
    assert changed_fields(rule, _updated(locale="en-GB").payload, before) == []
    assert changed_fields(rule, _updated(phone="+33700000000").payload, before) == ["phone"]
    assert changed_fields(rule, _updated(phone_removed=True).payload, before) == ["phone"]
    assert changed_fields(rule, _updated(phone_removed=True).payload, contact(phone=None)) == []
    named = contact(name="Ada Lovelace")
    assert changed_fields(rule, _updated(name="Ada Lovelace").payload, named) == []
    assert changed_fields(rule, _updated(name="Ada King").payload, named) == ["name"]
    assert changed_fields(rule, _updated(name="Ada King", email="a@b.example").payload, named) == [
        "email",
        "name",
    ]
    assert requests_for(_updated(locale="en-GB", time_zone="UTC"), now=NOON, previous=before) == []
    assert requests_for(_updated(email="ada@example.com"), now=NOON, previous=before) == []


def test_a_new_email_notifies_the_new_and_the_previous_address() -> None:
    event = _updated(email="ada@new.example.com")
    (request,) = requests_for(event, now=NOON, previous=contact())
    assert request.payload.variables == {
        "changed": "email",
        "previous_email": "ada@example.com",
    }
    assert (request.payload.template, request.payload.category) == ("profile-updated", "account")
    routing = _route(request, contact(email="ada@new.example.com"), UserSuppressions())
    sent = sorted((d.channel, d.recipient) for d in routing.dispatches)
    assert sent == [("email", "ada@example.com"), ("email", "ada@new.example.com")]
    assert len({d.notification_id for d in routing.dispatches}) == 2
    assert all(d.subject == "Your Tributary profile was updated" for d in routing.dispatches)
    assert "ada@example.com" in routing.dispatches[0].body
    # Redelivered: the same ids, so nothing goes twice.
    again = _route(request, contact(email="ada@new.example.com"), UserSuppressions(), routing.state)
    assert again.dispatches == []


def test_a_new_phone_notifies_the_email_only() -> None:
    (request,) = requests_for(_updated(phone="+33700000000"), now=NOON, previous=contact())
    assert "previous_email" not in request.payload.variables
    routing = _route(request, contact(phone="+33700000000"), UserSuppressions())
    assert [(d.channel, d.recipient) for d in routing.dispatches] == [("email", "ada@example.com")]


def test_the_previous_address_copy_honours_its_own_suppression() -> None:
    (request,) = requests_for(_updated(email="ada@new.example.com"), now=NOON, previous=contact())
    routing = _route(
        request, contact(email="ada@new.example.com"), _suppressed("email", "ada@example.com")
    )
    assert [d.recipient for d in routing.dispatches] == ["ada@new.example.com"]
    assert [
        (s.payload.state, s.payload.channel)
        for s in routing.statuses
        if s.payload.state == "suppressed"
    ] == [("suppressed", "email")]
