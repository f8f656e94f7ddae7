"""The tracker's suppression reports: each bounce or complaint it publishes on
`notifications.status` is reported by user on `notifications.suppressions`, acknowledged before
the notification's entry is written, under an id that a crash and a replay keep."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace

import pytest
from pydantic import BaseModel

from agents.deliverability.reports import REPORT_NAMESPACE
from agents.tracking.state import fold, from_entry, receipt_step, to_entry
from agents.tracking.tracker import OWN_SOURCE_HEADER, is_tracked, receipt_status
from schemas.notifications import NotificationStatusEvent
from schemas.suppressions import SuppressionEvent, SuppressionReported
from streams.kafka.wire import UnencodableEventError, decode, encode
from streams.runtime import OutgoingRecord
from tests.unit.agents.delivery_factories import at, receipt_event, status_event
from tests.unit.agents.tracking.harness import (
    TOPICS,
    CountingTable,
    FailingSink,
    Harness,
    receipt,
    sent,
    status,
)
from tests.unit.fakes import FakeSink

HARD_BOUNCE = "550 5.1.1 mailbox does not exist"


def reports_of(sink: FakeSink) -> list[tuple[bytes | None, SuppressionEvent]]:
    return [(out.key, decode(out.value, SuppressionEvent)) for out in sink.sent]


async def test_a_bounce_the_tracker_publishes_is_reported_once_by_user() -> None:
    h = Harness()
    bounce = receipt(receipt_event("n-1", "bounced", 5, reason=HARD_BOUNCE))
    await h.tracker.process([sent("n-1", 1), bounce])
    [transition] = h.status_out.sent
    published = decode(transition.value, NotificationStatusEvent)
    [(key, report)] = reports_of(h.reports_out)
    assert key == b"user-1"
    assert report.event_id == uuid.uuid5(REPORT_NAMESPACE, str(published.event_id))
    assert (report.event_type, report.source) == (
        "suppression.reported",
        "agent:report_undeliverable",
    )
    assert report.payload == SuppressionReported(
        user_id="user-1",
        notification_id="n-1",
        channel="email",
        problem="hard_bounce",
        reason=HARD_BOUNCE,
    )
    assert report.occurred_at == at(5)  # the provider's time, not the tracker's
    assert report.causation_id == str(published.event_id)
    assert h.tracker.stats.reports == 1
    # The provider repeats its receipt: the step is known, so nothing goes again. The tracker's
    # own transition is not even read back (the wiring skips it by its headers).
    await h.tracker.process([bounce])
    assert (len(h.status_out.sent), len(h.reports_out.sent)) == (1, 1)
    assert not is_tracked(transition.headers)


async def test_a_complaint_released_with_its_send_is_reported() -> None:
    """A receipt that overtook its `sent` status is published, and reported, when it comes."""
    h = Harness()
    await h.tracker.process([receipt(receipt_event("n-1", "complained", 5))])
    assert h.reports_out.sent == []
    await h.tracker.process([sent("n-1", 1)])
    [(key, report)] = reports_of(h.reports_out)
    assert (key, report.payload.problem) == (b"user-1", "complaint")  # type: ignore[union-attr]


async def test_a_delivery_and_the_statuses_of_other_agents_are_not_reported() -> None:
    h = Harness()
    await h.tracker.process(
        [
            sent("n-1", 1),
            receipt(receipt_event("n-1", "delivered", 5)),
            # A bounce not derived from a matched receipt is no evidence against the address.
            status(status_event("n-2", "bounced", 3, reason=HARD_BOUNCE)),
        ]
    )
    assert len(h.status_out.sent) == 1
    assert (h.reports_out.calls, h.tracker.stats.reports) == ([], 0)


async def test_a_crash_between_the_reports_and_the_table_reports_again_under_the_same_id() -> None:
    """The transition and its report are acknowledged, then the worker dies writing the
    entry: the receipt is read again (its offset was never committed), the step is new to the
    table, and the same report is published again: same key, same bytes."""
    crashing = Harness()
    await crashing.tracker.process([sent("n-1", 1)])
    crashing.table.broken = True
    bounce = receipt(receipt_event("n-1", "bounced", 5, reason=HARD_BOUNCE))
    with pytest.raises(OSError, match="store write failed"):
        await crashing.tracker.process([bounce])
    [lost] = crashing.reports_out.sent
    entry = from_entry(crashing.table[b"n-1"])
    assert entry is not None
    assert entry.state == "sent"
    restarted = Harness()
    restarted.table.update(crashing.table)
    await restarted.tracker.process([bounce])
    assert restarted.reports_out.sent == [lost]
    assert restarted.status_out.sent == crashing.status_out.sent
    entry = from_entry(restarted.table[b"n-1"])
    assert entry is not None
    assert (entry.state, entry.unpublished) == ("bounced", ())


class WatchedSink(FakeSink):
    """A sink failing `failures` times as Kafka does when away, noting at every attempt what
    `table` holds for `n-1` then."""

    def __init__(self, failures: int) -> None:
        super().__init__(failures)
        self.table = CountingTable()
        self.states_seen: list[str | None] = []

    async def send_all(self, records: Sequence[OutgoingRecord]) -> None:
        entry = from_entry(self.table.get(b"n-1"))
        self.states_seen.append(entry.state if entry is not None else None)
        await super().send_all(records)


async def test_a_report_kafka_does_not_acknowledge_is_retried_before_the_entry_is_written() -> None:
    watched = WatchedSink(failures=2)
    h = Harness(reports_out=watched)
    watched.table = h.table
    await h.tracker.process([sent("n-1", 1)])
    await h.tracker.process([receipt(receipt_event("n-1", "bounced", 5, reason=HARD_BOUNCE))])
    assert watched.states_seen == ["sent", "sent", "sent"]
    assert (h.sleeps, h.tracker.stats.retries) == ([0.1, 0.2], 2)
    assert len(watched.sent) == 1
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    assert entry.state == "bounced"


async def test_a_report_whose_publish_never_returns_leaves_the_entry_unwritten() -> None:
    h = Harness(reports_out=FailingSink())
    await h.tracker.process([sent("n-1", 1)])
    with pytest.raises(RuntimeError, match="killed"):
        await h.tracker.process([receipt(receipt_event("n-1", "complained", 5))])
    assert len(h.status_out.sent) == 1  # the transition went; its report did not
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    assert (entry.state, entry.unpublished) == ("sent", ())


async def test_a_bounce_an_earlier_version_left_in_the_outbox_is_reported_when_published() -> None:
    h = Harness()
    await h.tracker.process([sent("n-1", 1)])
    bounce = receipt_event("n-1", "bounced", 5, reason="452 4.2.2 mailbox full")
    found = receipt_step(bounce)
    assert found is not None
    step, facts = found
    folded, _ = fold(from_entry(h.table[b"n-1"]), "n-1", step, facts)
    h.table[b"n-1"] = to_entry(replace(folded, unpublished=(step.event_id,)))
    h.tracker.forget()  # a restart on that store
    await h.tracker.process([status(status_event("n-1", "sending", 0, attempt=1))])
    [(key, report)] = reports_of(h.reports_out)
    assert (key, report.payload.problem) == (b"user-1", "soft_bounce")  # type: ignore[union-attr]
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    assert entry.unpublished == ()


def reports_unencodable(event: BaseModel) -> bytes:
    """An encoder whose suppression schema disagrees with the model (a broken deploy)."""
    if isinstance(event, SuppressionEvent):
        raise UnencodableEventError("SuppressionEvent does not fit its schema")
    return encode(event)


async def test_a_report_that_cannot_be_encoded_keeps_its_step_in_the_outbox() -> None:
    """Neither the transition nor its report goes, the step waits in the outbox, and the
    receipt is set aside: re-driven once the schemas are fixed, it publishes both."""
    broken = Harness(encode=reports_unencodable)
    bounce = receipt(receipt_event("n-1", "bounced", 5, reason=HARD_BOUNCE))
    await broken.tracker.process([sent("n-1", 1), bounce])
    assert (broken.status_out.sent, broken.reports_out.sent) == ([], [])
    [letter] = broken.dlq[TOPICS.receipts].sent
    assert letter.value == bounce.value
    entry = from_entry(broken.table[b"n-1"])
    assert entry is not None
    assert entry.state == "bounced"
    assert len(entry.unpublished) == 1
    fixed = Harness()
    fixed.table.update(broken.table)
    await fixed.tracker.process([bounce])
    assert len(fixed.status_out.sent) == 1
    [(key, report)] = reports_of(fixed.reports_out)
    assert (key, report.payload.problem) == (b"user-1", "hard_bounce")  # type: ignore[union-attr]
    entry = from_entry(fixed.table[b"n-1"])
    assert entry is not None
    assert entry.unpublished == ()


async def test_a_bounce_an_earlier_version_published_is_reported_when_read_back() -> None:
    """That version's transitions were reported by a separate agent, which may not have got to
    the last ones before the version stopped: read back, they are reported (again: the same
    report), not folded."""
    h = Harness()
    await h.tracker.process([sent("n-1", 1), receipt(receipt_event("n-1", "delivered", 4))])
    before = dict(h.table)
    rows_before = len(h.store.calls)
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    bounce = receipt_event("n-1", "bounced", 5, reason=HARD_BOUNCE)
    found = receipt_step(bounce)
    assert found is not None
    earlier = receipt_status(found[0], entry, at(6))
    headers = [("event_id", str(earlier.event_id).encode()), OWN_SOURCE_HEADER]
    assert is_tracked(headers)
    assert is_tracked(dict(headers))
    await h.tracker.process([status(earlier), status(status_event("n-2", "queued", 0))])
    [(key, report)] = reports_of(h.reports_out)
    assert key == b"user-1"
    assert report.event_id == uuid.uuid5(REPORT_NAMESPACE, str(earlier.event_id))
    assert report.occurred_at == at(5)
    assert h.table[b"n-1"] == before[b"n-1"]
    assert [row.notification_id for row in h.store.calls[rows_before][0]] == ["n-2"]
