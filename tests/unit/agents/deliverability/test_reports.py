"""report_undeliverable: the tracker's bounced/spam transitions -> suppression reports by user."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agents.deliverability.reports import ReportBatch, problem_of, report_for
from agents.retry import Backoff
from schemas.notifications import NotificationStatusEvent
from schemas.suppressions import SuppressionEvent, SuppressionReported
from streams.kafka.wire import decode, encode
from streams.runtime import SourceRecord
from tests.unit.agents.delivery_factories import status_event
from tests.unit.fakes import FakeSink

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


async def test_a_batch_reports_problems_and_dead_letters_what_does_not_decode() -> None:
    reports, dead = FakeSink(), FakeSink()
    batch: ReportBatch[SourceRecord] = ReportBatch(
        decode=lambda raw: decode(raw, NotificationStatusEvent),
        encode=encode,
        reports=reports,
        dead_letters=dead,
        describe=lambda record: record,
        backoff=Backoff(),
        clock=lambda: NOW,
    )
    records = [
        SourceRecord("status", 0, 0, b"n-1", encode(status_event("n-1", "delivered", 1))),
        SourceRecord("status", 0, 1, b"n-2", encode(status_event("n-2", "spam", 2))),
        SourceRecord("status", 0, 2, b"n-3", b"junk"),
    ]
    await batch.process(records)
    (sent,) = reports.sent
    assert sent.key == b"user-1"
    event = decode(sent.value, SuppressionEvent)
    assert (event.payload.notification_id, event.payload.problem) == ("n-2", "complaint")  # type: ignore[union-attr]
    (letter,) = dead.sent
    assert letter.value == b"junk"
    assert (batch.stats.reports, batch.stats.dead_letters) == (1, 1)
