"""What the tracker's bounced/spam transitions report: suppression events by user (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agents.deliverability.reports import problem_of, report_for, report_record
from schemas.suppressions import SuppressionEvent, SuppressionReported
from streams.kafka.wire import decode, encode
from tests.unit.agents.delivery_factories import status_event

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("state", "reason", "problem"),
    [
        ("bounced", "550 5.1.1 mailbox does not exist", "hard_bounce"),
        ("bounced", None, "hard_bounce"),
        ("bounced", "452 4.2.2 mailbox full", "soft_bounce"),
        ("spam", None, "complaint"),
        ("delivered", None, None),
        ("failed", "500 provider down", None),
    ],
)
def test_only_bounces_and_complaints_are_problems(
    state: str, reason: str | None, problem: str | None
) -> None:
    assert problem_of(state, reason) == problem


def test_a_report_is_keyed_by_user_timed_by_the_provider_and_stable_per_transition() -> None:
    status = status_event("n-1", "bounced", 5, reason="550 5.1.1 no such user")
    report = report_for(status, NOW)
    assert report is not None
    assert report.payload == SuppressionReported(
        user_id="user-1",
        notification_id="n-1",
        channel="email",
        problem="hard_bounce",
        reason="550 5.1.1 no such user",
    )
    assert report.occurred_at == status.occurred_at
    assert report.causation_id == str(status.event_id)
    assert report_for(status, NOW).event_id == report.event_id  # type: ignore[union-attr]


def test_no_report_without_a_user_or_a_channel() -> None:
    assert report_for(status_event("n-1", "spam", 5, user_id="unknown"), NOW) is None
    assert report_for(status_event("n-1", "spam", 5, channel=None), NOW) is None


def test_a_report_record_is_keyed_by_user_and_none_for_a_delivery() -> None:
    status = status_event("n-2", "spam", 2)
    record = report_record(status, NOW, encode)
    assert record is not None
    assert (record.key, record.headers) == (b"user-1", ())
    assert decode(record.value, SuppressionEvent) == report_for(status, NOW)
    assert report_record(status_event("n-1", "delivered", 1), NOW, encode) is None
