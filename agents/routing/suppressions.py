"""A user's suppressed addresses (deliverability), kept beside the contact record. Pure.

The router keeps one `UserSuppressions` per user id (table `notification_suppressions`, same key
and partition as `contacts`): the addresses of the user that bounced or drew a spam complaint,
per channel (an email address, a phone number for sms or for whatsapp, a push token). A
notification to a suppressed address is not sent (`notification_routing`). Suppression is per
ADDRESS: a user who moves to a new address (`user.updated`) is reachable again at once, and the
old address stays suppressed should it come back.

A report (`suppression.reported`) names the notification that bounced, not the address: the
router remembers where each notification it dispatched went (`RoutingState.sent_to`, as long as
it remembers the id itself), so the address is the one the message was sent to, even when the
user changed address since. Reports are applied at the provider's event time, so applying one
again (a redelivery, a replay) changes nothing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agents.routing.policy import RoutingState
from schemas.notifications import Channel
from schemas.suppressions import (
    SuppressionEvent,
    SuppressionKind,
    SuppressionLifted,
    SuppressionReported,
)
from streams.redaction import redact
from streams.settings import NotificationSettings
from streams.stores.suppression_store import SuppressionRow, suppression_id

# A temporary failure: an SMTP 4xx reply ("452 4.2.2 mailbox full") or a 4.x.x enhanced status.
_SOFT_REASON = re.compile(r"^\s*4\d\d(?!\d)|(?<![\d.])4\.\d{1,3}\.\d{1,3}(?![\d.])")


def is_soft_bounce(reason: str | None) -> bool:
    """Whether a bounce's reason says the failure is temporary (mailbox full, greylisted)."""
    return reason is not None and _SOFT_REASON.search(reason) is not None


def address_key(channel: str, address: str) -> str:
    return f"{channel}:{address}"


class SuppressedAddress(BaseModel):
    """One address of the user with deliverability trouble; suppressed once `kind` is set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel: Channel
    address: str
    kind: SuppressionKind | None = None
    # When it was suppressed (epoch s, the provider's time of the report that did it).
    since_s: float | None = None
    # The provider's words on that report, and the notification it was about.
    reason: str | None = None
    notification_id: str | None = None
    # The soft bounces within the window, oldest first: (epoch s, notification id). Providers
    # report whole seconds, so two messages bouncing in one second are told apart by their
    # notification; a report read again (same time, same notification) counts once.
    soft_bounces: tuple[tuple[float, str], ...] = ()

    @field_validator("soft_bounces", mode="before")
    @classmethod
    def _times_alone(cls, value: Any) -> Any:
        """Entries written before the notification was kept: times alone."""
        if isinstance(value, list | tuple):
            return tuple((t, "") if isinstance(t, int | float) else t for t in value)
        return value

    @property
    def suppressed(self) -> bool:
        return self.kind is not None

    def status_reason(self) -> str:
        """The reason on the status of a notification not sent to it."""
        assert self.since_s is not None
        when = datetime.fromtimestamp(self.since_s, UTC).isoformat(timespec="seconds")
        return f"suppressed: {self.kind} {when}"


class UserSuppressions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # `address_key(channel, address)` -> the address's record.
    addresses: dict[str, SuppressedAddress] = Field(default_factory=dict)

    def held(self, channel: str, address: str | None) -> SuppressedAddress | None:
        """The suppression that holds `address` on `channel`, or None when it may be used."""
        if address is None:
            return None
        found = self.addresses.get(address_key(channel, address))
        return found if found is not None and found.suppressed else None

    def suppressed(self) -> list[SuppressedAddress]:
        return [entry for entry in self.addresses.values() if entry.suppressed]

    def to_table(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_table(cls, value: dict[str, Any] | None) -> UserSuppressions:
        return cls() if value is None else cls.model_validate(value)


def apply_report(
    state: UserSuppressions,
    report: SuppressionReported,
    address: str,
    at_s: float,
    *,
    soft_bounce_limit: int,
    soft_bounce_window_s: float,
) -> UserSuppressions:
    """`state` after the report that the message to `address` bounced or drew a complaint at
    `at_s`. An address suppressed already stays as it is (its first cause is the one shown)."""
    key = address_key(report.channel, address)
    entry = state.addresses.get(key) or SuppressedAddress(channel=report.channel, address=address)
    if entry.suppressed:
        return state
    cause = {"since_s": at_s, "reason": report.reason, "notification_id": report.notification_id}
    if report.problem == "complaint":
        entry = entry.model_copy(update={"kind": "complained", **cause})
    elif report.problem == "hard_bounce":
        entry = entry.model_copy(update={"kind": "bounced", **cause})
    else:
        bounce = (at_s, report.notification_id)
        recent = sorted(
            {b for b in (*entry.soft_bounces, bounce) if b[0] > at_s - soft_bounce_window_s}
        )
        entry = entry.model_copy(update={"soft_bounces": tuple(recent)})
        if len(recent) >= soft_bounce_limit:
            entry = entry.model_copy(update={"kind": "bounced", **cause})
    return UserSuppressions(addresses={**state.addresses, key: entry})


def lift(state: UserSuppressions, channel: str, address: str) -> UserSuppressions:
    """`state` without the address (its soft bounces forgotten too)."""
    key = address_key(channel, address)
    if key not in state.addresses:
        return state
    return UserSuppressions(addresses={k: v for k, v in state.addresses.items() if k != key})


def fold_suppression(
    current: UserSuppressions,
    routing: RoutingState,
    event: SuppressionEvent,
    settings: NotificationSettings,
) -> UserSuppressions | None:
    """The user's suppressions after `event`; None for a report on a notification whose address
    the router no longer remembers (nothing to suppress: the caller counts and drops it)."""
    payload = event.payload
    if isinstance(payload, SuppressionLifted):
        return lift(current, payload.channel, payload.address)
    address = routing.sent_to.get(payload.notification_id)
    if address is None:
        return None
    return apply_report(
        current,
        payload,
        address,
        event.occurred_at.timestamp(),
        soft_bounce_limit=settings.soft_bounce_limit,
        soft_bounce_window_s=settings.soft_bounce_window_s,
    )


def suppression_rows(user_id: str, state: UserSuppressions) -> list[SuppressionRow]:
    """The user's suppressed addresses as rows of the PostgreSQL view."""
    rows = []
    for entry in state.suppressed():
        assert entry.kind is not None
        assert entry.since_s is not None
        rows.append(
            SuppressionRow(
                suppression_id=suppression_id(entry.channel, entry.address, user_id),
                channel=entry.channel,
                address=entry.address,
                user_id=user_id,
                kind=entry.kind,
                reason=redact(entry.reason),  # provider text may echo addresses
                notification_id=entry.notification_id,
                suppressed_at=datetime.fromtimestamp(entry.since_s, UTC),
                soft_bounces=len(entry.soft_bounces),
            )
        )
    return rows
