"""Receipts that come before their notification's `sent`: held in the notification's
`deliveries` entry (no `held_receipts` write), released when the `sent` comes; what an earlier
version held in `held_receipts` is still released, and its key deleted."""

from __future__ import annotations

import pytest

from agents.tracking.receipt_matching import MAX_HELD_PER_NOTIFICATION, held_entry
from agents.tracking.state import Waiting, from_entry, parse_entry, to_entry
from schemas.notifications import NotificationStatusEvent
from streams.kafka.wire import decode
from tests.unit.agents.delivery_factories import receipt_event, status_event
from tests.unit.agents.tracking.harness import (
    FailingSink,
    Harness,
    receipt,
    receipt_step_of,
    sent,
    status,
)


def published_states(h: Harness) -> list[str]:
    return [decode(r.value, NotificationStatusEvent).payload.state for r in h.status_out.sent]


async def test_a_receipt_before_its_sent_is_held_in_the_entry_and_applied_when_sent_comes() -> None:
    h = Harness()
    early = receipt(receipt_event("n-1", "delivered", 5))
    await h.tracker.process([status(status_event("n-1", "queued", 0))])
    await h.tracker.process([early])
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    assert (entry.state, entry.held) == ("queued", (receipt_step_of(early),))
    assert h.status_out.sent == []
    await h.tracker.process([sent("n-1", 1)])
    assert published_states(h) == ["delivered"]
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    assert (entry.state, entry.held, entry.unpublished) == ("delivered", (), ())
    assert (h.held.writes, h.held.deletes, h.held.reads) == ([], [], [])


async def test_a_hold_and_its_release_in_the_batches_that_fold_statuses_add_no_table_write() -> (
    None
):
    """The entry is written anyway where its statuses fold: the receipt rides along."""
    h = Harness()
    early = receipt(receipt_event("n-1", "delivered", 5))
    await h.tracker.process([status(status_event("n-1", "queued", 0)), early])
    await h.tracker.process([sent("n-1", 1)])
    assert [key for key, _ in h.table.writes] == [b"n-1", b"n-1"]
    assert published_states(h) == ["delivered"]


async def test_a_receipt_before_any_status_waits_in_an_entry_of_its_own() -> None:
    h = Harness()
    early = receipt(receipt_event("n-1", "delivered", 5))
    await h.tracker.process([early])
    assert parse_entry(h.table[b"n-1"]) == Waiting(
        notification_id="n-1", held=(receipt_step_of(early),)
    )
    await h.tracker.process([early])  # read again: held once
    assert parse_entry(h.table[b"n-1"]) == Waiting(
        notification_id="n-1", held=(receipt_step_of(early),)
    )
    await h.tracker.process([status(status_event("n-1", "queued", 0))])
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    assert (entry.state, entry.held) == ("queued", (receipt_step_of(early),))
    await h.tracker.process([sent("n-1", 1)])
    assert published_states(h) == ["delivered"]
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    assert ([s.state for s in entry.timeline], entry.held) == (["queued", "sent", "delivered"], ())
    assert h.held.writes == []


async def test_an_entry_holding_only_a_receipt_is_no_delivery_row_and_no_transition() -> None:
    h = Harness()
    await h.tracker.process(
        [receipt(receipt_event("n-1", "delivered", 5)), status(status_event("n-2", "queued", 0))]
    )
    [(rows, steps)] = h.store.calls
    assert [row.notification_id for row in rows] == ["n-2"]
    assert [step.notification_id for step in steps] == ["n-2"]
    assert [e.payload.notification_id for _, e in h.transitions] == ["n-2"]
    assert h.status_out.sent == []
    await h.tracker.process([receipt(receipt_event("n-3", "bounced", 5))])
    assert h.store.calls[1:] == []
    assert h.reports_out.sent == []
    # Its first status makes it a delivery at that status, the receipt still held.
    await h.tracker.process([status(status_event("n-1", "queued", 0))])
    [row], [step] = h.store.calls[-1]
    assert (row.notification_id, row.state, step.state) == ("n-1", "queued", "queued")
    assert [e.payload.state for _, e in h.transitions] == ["queued", "queued"]


async def test_a_receipt_an_earlier_version_held_is_released_and_its_key_deleted() -> None:
    h = Harness()
    early = receipt(receipt_event("n-1", "delivered", 5))
    await h.tracker.process([status(status_event("n-1", "queued", 0))])
    h.held[b"n-1"] = held_entry([receipt_step_of(early)])
    h.held.writes.clear()
    h.tracker.forget()  # the upgrade: a restart on the earlier version's tables
    await h.tracker.process([sent("n-1", 1)])
    assert published_states(h) == ["delivered"]
    assert (h.held.writes, h.held.deletes) == ([], [b"n-1"])
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    assert (entry.state, entry.held) == ("delivered", ())


async def test_a_new_hold_takes_over_what_an_earlier_version_held() -> None:
    h = Harness()
    old = receipt(receipt_event("n-1", "opened", 4))
    old_step = receipt_step_of(receipt(receipt_event("n-1", "delivered", 5)))
    new = receipt(receipt_event("n-1", "bounced", 6))
    h.held[b"n-1"] = held_entry([old_step])
    h.held.writes.clear()
    await h.tracker.process([old, new])  # the opened receipt is no state: never held
    assert parse_entry(h.table[b"n-1"]) == Waiting(
        notification_id="n-1", held=(old_step, receipt_step_of(new))
    )
    assert (h.held.writes, h.held.deletes) == ([], [b"n-1"])
    await h.tracker.process([sent("n-1", 1)])
    assert published_states(h) == ["delivered", "bounced"]


async def test_a_batch_failing_before_its_table_write_after_a_hold_ends_the_same() -> None:
    """Read again (its offset was never committed), it ends where a clean run does."""
    early = receipt(receipt_event("n-1", "delivered", 5))
    queued = status(status_event("n-1", "queued", 0))
    the_sent = sent("n-1", 1)
    h = Harness()
    h.table.broken = True
    with pytest.raises(OSError, match="store write failed"):
        await h.tracker.process([early, queued])
    assert dict(h.table) == {}  # nothing written, no offset committed: the records come again
    h.table.broken = False
    await h.tracker.process([early, queued])
    await h.tracker.process([the_sent])
    clean = Harness()
    await clean.tracker.process([early, queued])
    await clean.tracker.process([the_sent])
    assert dict(h.table) == dict(clean.table)
    assert h.status_out.sent == clean.status_out.sent
    assert published_states(h) == ["delivered"]


async def test_a_crash_publishing_the_release_leaves_the_receipt_held() -> None:
    """The `sent` read again releases it then."""
    early = receipt(receipt_event("n-1", "delivered", 5))
    crashing = Harness(status_out=FailingSink())
    await crashing.tracker.process([status(status_event("n-1", "queued", 0)), early])
    before = dict(crashing.table)
    with pytest.raises(RuntimeError, match="killed"):
        await crashing.tracker.process([sent("n-1", 1)])
    assert dict(crashing.table) == before
    restarted = Harness()
    restarted.table.update(crashing.table)
    await restarted.tracker.process([sent("n-1", 1)])
    assert published_states(restarted) == ["delivered"]
    entry = from_entry(restarted.table[b"n-1"])
    assert entry is not None
    assert (entry.state, entry.held) == ("delivered", ())


def test_an_entry_written_before_held_existed_loads_and_one_holding_nothing_is_written_so() -> None:
    h_entry = {
        "notification_id": "n-1",
        "current": {
            "state": "queued",
            "occurred_at": "2026-11-22T09:00:00Z",
            "event_id": "00000000-0000-0000-0000-000000000001",
        },
        "timeline": [
            {
                "state": "queued",
                "occurred_at": "2026-11-22T09:00:00Z",
                "event_id": "00000000-0000-0000-0000-000000000001",
            }
        ],
    }
    delivery = from_entry(h_entry)
    assert delivery is not None
    assert delivery.held == ()
    assert "held" not in to_entry(delivery)


async def test_a_notification_holds_at_most_its_newest_receipts() -> None:
    h = Harness()
    early = [
        receipt(receipt_event("n-1", "delivered", 5 + n))
        for n in range(MAX_HELD_PER_NOTIFICATION + 2)
    ]
    for one in early:
        await h.tracker.process([one])
    entry = parse_entry(h.table[b"n-1"])
    assert isinstance(entry, Waiting)
    assert entry.held == tuple(receipt_step_of(one) for one in early[2:])
