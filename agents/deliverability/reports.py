"""The tracker's bounce and complaint transitions -> `suppression.reported` events on
`notifications.suppressions`, keyed by user id. Pure: `track_deliveries` calls it for each
transition it publishes (`agents.tracking.tracker`), so there is no agent of its own.

`track_deliveries` turns a provider's receipt into a status transition only once it matched the
receipt to a send of the notification (`receipt_matching`). Those transitions are the only ones
that can say `bounced` or `spam`, so they are the only ones reported, re-keyed by user for the
router, which holds the user's addresses and suppressions. The report's id derives from the
transition's, so a transition published again (a crash before its batch was committed, a replay)
reports again under the same id, and its event time is the provider's, so the router's fold of
it is the same however often it comes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel

from agents.routing.suppressions import is_soft_bounce
from schemas.notifications import NotificationStatusEvent
from schemas.suppressions import DeliverabilityProblem, SuppressionEvent, SuppressionReported
from streams.runtime import OutgoingRecord

# The reports' `source`, as it was when a separate agent of that name published them: a
# report is the same record whichever version of the worker publishes it.
SOURCE = "agent:report_undeliverable"
REPORT_NAMESPACE = uuid.UUID("9a3c6e1f-2b4d-4c8e-8f1a-5d7b9e0c3a21")
# What the tracker writes when a receipt overtook every status naming the user.
UNKNOWN_USER = "unknown"


def problem_of(state: str, reason: str | None) -> DeliverabilityProblem | None:
    """What a delivery state says about the address: None when nothing."""
    if state == "spam":
        return "complaint"
    if state == "bounced":
        return "soft_bounce" if is_soft_bounce(reason) else "hard_bounce"
    return None


def report_for(status: NotificationStatusEvent, now: datetime) -> SuppressionEvent | None:
    """The suppression report a transition amounts to, or None."""
    payload = status.payload
    problem = problem_of(payload.state, payload.reason)
    if problem is None or payload.channel is None or payload.user_id == UNKNOWN_USER:
        return None
    return SuppressionEvent(
        event_id=uuid.uuid5(REPORT_NAMESPACE, str(status.event_id)),
        event_type="suppression.reported",
        occurred_at=status.occurred_at,
        ingested_at=now,
        source=SOURCE,
        correlation_id=status.correlation_id,
        causation_id=str(status.event_id),
        payload=SuppressionReported(
            user_id=payload.user_id,
            notification_id=payload.notification_id,
            channel=payload.channel,
            problem=problem,
            reason=payload.reason,
        ),
    )


def report_record(
    status: NotificationStatusEvent, now: datetime, encode: Callable[[BaseModel], bytes]
) -> OutgoingRecord | None:
    """The record on `notifications.suppressions` a transition amounts to (key: the user id),
    or None. `encode` may raise a `PoisonError` (`UnencodableEventError`)."""
    report = report_for(status, now)
    if report is None:
        return None
    return OutgoingRecord(key=report.payload.user_id.encode(), value=encode(report))
