"""The rule table: which events ask for which notifications, under which ids."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from agents.routing.rules import (
    RULES,
    ChannelChoice,
    NotificationRule,
    channel_notification_id,
    intent_id,
    requests_for,
    rule_named,
)
from tests.unit.agents.notification_factories import (
    NOON,
    USER,
    auth_event,
    order_event,
    user_created,
    user_event,
)

EXPECTED = {
    "user.created": ("user-created-welcome", "welcome", "account"),
    "user.verified": ("user-verified-confirmation", "verification-confirmed", "account"),
    "auth.password-reset-requested": ("password-reset", "password-reset", "critical"),
    "auth.password-changed": ("password-changed-alert", "security-alert", "critical"),
    "auth.suspicious-login": ("suspicious-login-alert", "security-alert", "critical"),
    "order.paid": ("order-paid-confirmation", "order-confirmation", "orders"),
    "order.fulfilled": ("order-fulfilled-shipped", "order-shipped", "orders"),
    "order.refunded": ("order-refunded", "order-refunded", "orders"),
}


def _event(event_type: str) -> Any:
    if event_type == "user.created":
        return user_created()
    if event_type.startswith("user."):
        return user_event(event_type)
    if event_type.startswith("auth."):
        extra = {"reason": "brute-force"} if event_type == "auth.suspicious-login" else {}
        return auth_event(event_type, **extra)
    return order_event(event_type)


@pytest.mark.parametrize("event_type", sorted(EXPECTED))
def test_each_rule_asks_for_its_notification(event_type: str) -> None:
    event = _event(event_type)
    (request,) = requests_for(event, now=NOON)
    rule, template, category = EXPECTED[event_type]
    payload = request.payload
    assert (payload.rule, payload.template, payload.category) == (rule, template, category)
    assert payload.user_id == USER
    assert payload.channel is None  # resolved by the router, which knows the contact
    assert payload.caused_by_event_id == str(event.event_id)
    assert payload.caused_at == event.occurred_at
    assert payload.notification_id == intent_id(str(event.event_id), rule)
    assert request.causation_id == str(event.event_id)
    assert request.correlation_id == event.correlation_id
    assert request.source == "agent:request_notifications"


def test_order_variables_come_from_the_payload() -> None:
    (request,) = requests_for(order_event("order.paid"), now=NOON)
    assert request.payload.variables == {
        "order_id": "ord-1",
        "total_minor": "4998",
        "currency": "EUR",
    }
    (reset,) = requests_for(auth_event("auth.password-reset-requested"), now=NOON)
    assert reset.payload.variables == {"ip": "203.0.113.7"}
    (no_ip,) = requests_for(auth_event("auth.password-reset-requested", ip=None), now=NOON)
    assert no_ip.payload.variables == {}


@pytest.mark.parametrize(
    "event",
    [user_event("user.deleted"), auth_event("auth.logout", ip=None), order_event("order.created")],
)
def test_events_without_a_rule_ask_for_nothing(event: Any) -> None:
    assert requests_for(event, now=NOON) == []


def test_ids_are_deterministic_per_event_rule_and_channel() -> None:
    event_id = uuid.uuid4()
    first = requests_for(order_event("order.paid", event_id=event_id), now=NOON)
    again = requests_for(order_event("order.paid", event_id=event_id), now=NOON)
    other = requests_for(order_event("order.paid"), now=NOON)
    assert [r.payload.notification_id for r in first] == [r.payload.notification_id for r in again]
    assert [r.event_id for r in first] == [r.event_id for r in again]
    assert first[0].payload.notification_id != other[0].payload.notification_id
    ids = {channel_notification_id(str(event_id), "r", c) for c in ("email", "sms")}
    ids.add(intent_id(str(event_id), "r"))
    assert len(ids) == 3
    assert channel_notification_id("e", "r", "sms") == channel_notification_id("e", "r", "sms")


def test_a_rule_is_data() -> None:
    marketing = NotificationRule(
        "refund-survey", "order.refunded", "survey", "marketing", (ChannelChoice(("email",)),)
    )
    rules = (*RULES, marketing)
    templates = [
        r.payload.template
        for r in requests_for(order_event("order.refunded"), now=NOON, rules=rules)
    ]
    assert templates == ["order-refunded", "survey"]
    assert rule_named("refund-survey", rules) is marketing
    assert rule_named("nope") is None
    assert len({rule.name for rule in RULES}) == len(RULES)
