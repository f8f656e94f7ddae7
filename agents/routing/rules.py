"""Which events cause which notifications: a table of rules, data rather than code.

Adding a notification is adding a row to `RULES` (and its templates): neither agent changes.
A rule names its causing event type, the template, the category and its channels. Channels come
in `ChannelChoice`s: each choice yields at most one notification, on the first of its
alternatives the user can be reached on (and, for a non-critical notification, has not switched
off); `opt_in` choices are sent only to users who switched that channel on explicitly. So
"email, plus whatsapp or sms when opted in" is two choices, `(email)` and `(whatsapp, sms)` opt-in,
and "push, else email" is one choice `(push, email)`.

The router (`notification_routing`) resolves the choices against the user's contact record, which
only it has (orders events are keyed by order id, contacts by user id).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from agents.routing.contacts import Contact
from schemas.notifications import (
    Channel,
    NotificationCategory,
    NotificationRequested,
    NotificationRequestEvent,
)
from streams.name_ids import NameIds

# The namespace of every notification id: uuid5 of "<causing event id>/<rule>[/<channel>]".
NOTIFICATION_NAMESPACE = uuid.UUID("6f1d3c2a-8b4e-4f5a-9c7d-0e1f2a3b4c5d")
NOTIFICATION_IDS = NameIds(NOTIFICATION_NAMESPACE)
REQUEST_AGENT_SOURCE = "request_notifications"


@dataclass(frozen=True, slots=True)
class ChannelChoice:
    alternatives: tuple[Channel, ...]
    # Sent only when the user switched the channel on for the category (never by default).
    opt_in: bool = False


@dataclass(frozen=True, slots=True)
class NotificationRule:
    name: str
    event_type: str
    template: str
    category: NotificationCategory
    channels: tuple[ChannelChoice, ...]
    # Template variable -> field of the causing event's payload (its value as text).
    variables: Mapping[str, str] = field(default_factory=dict)
    # Asked for only when one of these payload fields names a value the user's contact record did
    # not hold before the event (empty: always). The names changed are the `changed` variable.
    only_if_changed: tuple[str, ...] = ()
    # Also sent to the email address the user had before the event, when the event changed it
    # (the `previous_email` variable: the router adds that address as one more email).
    to_previous_email: bool = False


_ORDER_VARIABLES = {"order_id": "id", "total_minor": "total_minor", "currency": "currency"}
_EMAIL = (ChannelChoice(("email",)),)

RULES: tuple[NotificationRule, ...] = (
    NotificationRule("user-created-welcome", "user.created", "welcome", "account", _EMAIL),
    NotificationRule(
        "user-updated-profile-notice",
        "user.updated",
        "profile-updated",
        "account",
        _EMAIL,
        only_if_changed=("email", "phone", "name"),
        to_previous_email=True,
    ),
    NotificationRule(
        "user-verified-confirmation", "user.verified", "verification-confirmed", "account", _EMAIL
    ),
    NotificationRule(
        "password-reset",
        "auth.password-reset-requested",
        "password-reset",
        "critical",
        _EMAIL,
        variables={"ip": "ip"},
    ),
    NotificationRule(
        "password-changed-alert",
        "auth.password-changed",
        "security-alert",
        "critical",
        _EMAIL,
        variables={"ip": "ip"},
    ),
    NotificationRule(
        "suspicious-login-alert",
        "auth.suspicious-login",
        "security-alert",
        "critical",
        (ChannelChoice(("email",)), ChannelChoice(("sms",))),
        variables={"ip": "ip"},
    ),
    NotificationRule(
        "order-paid-confirmation",
        "order.paid",
        "order-confirmation",
        "orders",
        (ChannelChoice(("email",)), ChannelChoice(("whatsapp", "sms"), opt_in=True)),
        variables=_ORDER_VARIABLES,
    ),
    NotificationRule(
        "order-fulfilled-shipped",
        "order.fulfilled",
        "order-shipped",
        "orders",
        (ChannelChoice(("push", "email")),),
        variables=_ORDER_VARIABLES,
    ),
    NotificationRule(
        "order-refunded",
        "order.refunded",
        "order-refunded",
        "orders",
        _EMAIL,
        variables=_ORDER_VARIABLES,
    ),
)


def rules_for(
    event_type: str, rules: tuple[NotificationRule, ...] = RULES
) -> list[NotificationRule]:
    return [rule for rule in rules if rule.event_type == event_type]


def rule_named(
    name: str | None, rules: tuple[NotificationRule, ...] = RULES
) -> NotificationRule | None:
    return next((rule for rule in rules if rule.name == name), None)


def intent_id(causing_event_id: str, rule: str) -> str:
    """The id of a rule's request for one causing event: the same for every redelivery."""
    return NOTIFICATION_IDS.text(f"{causing_event_id}/{rule}")


def channel_notification_id(causing_event_id: str, rule: str, channel: str) -> str:
    """The id of one notification (one channel) for a causing event and rule."""
    return NOTIFICATION_IDS.text(f"{causing_event_id}/{rule}/{channel}")


class CausingEvent(Protocol):
    """What the rules read of an event of any family (users, auth, orders)."""

    @property
    def event_id(self) -> uuid.UUID: ...

    @property
    def event_type(self) -> str: ...

    @property
    def occurred_at(self) -> datetime: ...

    @property
    def correlation_id(self) -> str: ...

    @property
    def payload(self) -> Any: ...


def changed_fields(rule: NotificationRule, payload: Any, previous: Contact | None) -> list[str]:
    """The fields of `rule.only_if_changed` that `payload` sets to a new value."""
    changed = []
    for name in rule.only_if_changed:
        value = getattr(payload, name, None)
        if value is not None and (previous is None or getattr(previous, name, None) != value):
            changed.append(name)
    removed = getattr(payload, "phone_removed", False) is True
    had_phone = previous is None or previous.phone is not None
    if "phone" in rule.only_if_changed and removed and had_phone and "phone" not in changed:
        changed.append("phone")
    return changed


def _variables(
    rule: NotificationRule, payload: Any, previous: Contact | None
) -> dict[str, str] | None:
    """The request's template variables, or None when the rule does not apply to `payload`."""
    variables = {
        name: str(value)
        for name, path in rule.variables.items()
        if (value := getattr(payload, path, None)) is not None
    }
    if rule.only_if_changed:
        changed = changed_fields(rule, payload, previous)
        if not changed:
            return None
        variables["changed"] = ", ".join(changed)
        if rule.to_previous_email and "email" in changed and previous and previous.email:
            variables["previous_email"] = previous.email
    return variables


def requests_for(
    event: CausingEvent,
    *,
    now: datetime,
    rules: tuple[NotificationRule, ...] = RULES,
    previous: Contact | None = None,
) -> list[NotificationRequestEvent]:
    """The notification requests `event` causes: one per matching rule, channels left to the
    router. Ids derive from the event id and rule only, so a redelivered event asks again under
    the same ids and the router drops the repeat. `previous`: the user's contact record before
    `event` (for the rules that ask only when a contact point changed)."""
    user_id = getattr(event.payload, "user_id", None)
    if not isinstance(user_id, str):
        return []
    causing_id = str(event.event_id)
    requests = []
    for rule in rules_for(event.event_type, rules):
        variables = _variables(rule, event.payload, previous)
        if variables is None:
            continue
        request_id = intent_id(causing_id, rule.name)
        payload = NotificationRequested(
            notification_id=request_id,
            user_id=user_id,
            category=rule.category,
            template=rule.template,
            variables=variables,
            rule=rule.name,
            caused_by_event_id=causing_id,
            caused_at=event.occurred_at,
        )
        requests.append(
            NotificationRequestEvent(
                event_id=NOTIFICATION_IDS.uuid(f"{request_id}/requested"),
                event_type="notification.requested",
                occurred_at=event.occurred_at,
                ingested_at=now,
                source=f"agent:{REQUEST_AGENT_SOURCE}",
                correlation_id=event.correlation_id,
                causation_id=causing_id,
                payload=payload,
            )
        )
    return requests
