"""Deliverability events: `notifications.suppressions`, keyed by USER id.

An address that bounces hard, draws a spam complaint, or bounces softly too often is suppressed:
later notifications to it are not sent. The router keeps each user's suppressed addresses beside
the user's contact record (same key, same partition), so the facts that feed it travel keyed by
user id:

- `suppression.reported`: a provider said a notification of the user bounced (hard or soft) or
  drew a complaint. The router knows which address that notification went to.
- `suppression.lifted`: an operator lifted the suppression of one address of the user.

Every change must stay backward compatible (see `schemas.notifications`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ValidationInfo, ValidatorFunctionWrapHandler, field_validator

from schemas.envelope import Contract, Envelope, Text, select_payload
from schemas.notifications import Channel, Recipient
from schemas.orders import Identifier

# What a provider reported: a bounce that will not go away, one that may, or a spam complaint.
DeliverabilityProblem = Literal["hard_bounce", "soft_bounce", "complaint"]
# Why an address is suppressed (soft bounces count as bounces once there are enough of them).
SuppressionKind = Literal["bounced", "complained"]


class SuppressionReported(Contract):
    user_id: Identifier
    # The notification whose message bounced or drew the complaint.
    notification_id: Identifier
    channel: Channel
    problem: DeliverabilityProblem
    # The provider's words (such as "550 5.1.1 mailbox does not exist").
    reason: Text | None = None


class SuppressionLifted(Contract):
    user_id: Identifier
    channel: Channel
    # The email address, phone number or push token the suppression held.
    address: Recipient
    # Who lifted it and why, for the audit trail.
    reason: Text | None = None


SuppressionPayload = SuppressionReported | SuppressionLifted
SUPPRESSION_PAYLOADS: dict[str, type[SuppressionPayload]] = {
    "suppression.reported": SuppressionReported,
    "suppression.lifted": SuppressionLifted,
}
SuppressionEventType = Literal["suppression.reported", "suppression.lifted"]


class SuppressionEvent(Envelope):
    """An event on `notifications.suppressions`."""

    event_type: SuppressionEventType
    payload: SuppressionPayload

    @field_validator("payload", mode="wrap")
    @classmethod
    def _payload_for_type(
        cls, value: Any, _handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        return select_payload(value, info.data.get("event_type"), SUPPRESSION_PAYLOADS)
