"""A batch of status + receipt records through the tracker, with fakes for Kafka and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agents.tracking.receipt_matching import held_entry
from agents.tracking.state import Waiting, fold, from_entry, parse_entry, receipt_step, to_entry
from agents.tracking.tracker import is_own_record, is_tracked
from schemas.notifications import NotificationStatusEvent
from streams.kafka.wire import decode
from streams.runtime import SourceRecord
from tests.unit.agents.delivery_factories import T0, at, receipt_event, status_event
from tests.unit.agents.tracking.harness import (
    TOPICS,
    FailingSink,
    FakeStore,
    Harness,
    receipt,
    receipt_step_of,
    record,
    sent,
    status,
)


async def test_a_batch_folds_into_the_table_and_writes_once() -> None:
    h = Harness()
    await h.tracker.process(
        [
            status(status_event("n-1", "queued", 0)),
            status(status_event("n-1", "sending", 1, attempt=1)),
            status(status_event("n-2", "suppressed", 0, reason="opted-out")),
        ]
    )
    assert len(h.store.calls) == 1
    rows, steps = h.store.calls[0]
    by_id = {row.notification_id: row for row in rows}
    assert (by_id["n-1"].state, by_id["n-1"].queued_at, by_id["n-1"].attempts) == (
        "sending",
        T0,
        1,
    )
    assert (by_id["n-2"].state, by_id["n-2"].reason) == ("suppressed", "opted-out")
    assert len(steps) == 3
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    assert entry.state == "sending"
    assert h.status_out.sent == []  # what came from notifications.status is never re-published


async def test_a_receipt_is_published_as_a_status_transition_with_the_known_facts() -> None:
    h = Harness()
    await h.tracker.process(
        [status(status_event("n-1", "sent", 1)), receipt(receipt_event("n-1", "complained", 5))]
    )
    [out] = h.status_out.sent
    event = decode(out.value, NotificationStatusEvent)
    assert out.key == b"n-1"
    assert (event.payload.state, event.payload.user_id, event.payload.channel) == (
        "spam",
        "user-1",
        "email",
    )
    assert event.occurred_at == at(5)
    # Reading it back (the agent consumes the status topic too) is a no-op step, not a loop.
    before = dict(h.table)
    await h.tracker.process([record(TOPICS.status, out.value or b"")])
    assert h.table == before
    assert len(h.status_out.sent) == 1


async def test_each_new_transition_goes_to_metrics_once_with_its_cause() -> None:
    h = Harness()
    sent = status(status_event("n-1", "sent", 1))
    delivered = receipt(receipt_event("n-1", "delivered", 5))
    late = status(status_event("n-1", "sending", 0, attempt=1))
    await h.tracker.process([sent, delivered, late, sent])
    # The late "sending" is a step of the timeline (it happened), the repeated "sent" is not.
    assert [(cause, event.payload.state) for cause, event in h.transitions] == [
        (sent, "sent"),
        (delivered, "delivered"),
        (late, "sending"),
    ]
    delivered_event = h.transitions[1][1]
    assert delivered_event.occurred_at == at(5)
    assert delivered_event.payload.caused_at is not None
    # The same records again (a replay): nothing new, so nothing counted twice.
    await h.tracker.process([sent, delivered, late])
    assert len(h.transitions) == 3


async def test_a_receipt_before_its_send_is_held_then_applied_and_published_once() -> None:
    h = Harness()
    early = receipt(receipt_event("n-1", "delivered", 5))
    await h.tracker.process([early])
    assert from_entry(h.table[b"n-1"]) is None  # held, not applied: no send is recorded yet
    assert h.tracker.stats.receipts_held == 1
    await h.tracker.process([status(status_event("n-1", "queued", 0))])
    assert h.status_out.sent == []  # still held: queued is no send
    await h.tracker.process([sent("n-1", 1)])
    (out,) = h.status_out.sent
    event = decode(out.value, NotificationStatusEvent)
    assert (event.payload.state, event.payload.user_id, event.payload.category) == (
        "delivered",
        "user-1",
        "account",
    )
    assert event.occurred_at == at(5)
    assert [e.payload.state for _, e in h.transitions] == ["queued", "sent", "delivered"]
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    assert (entry.state, entry.unpublished, entry.held) == ("delivered", (), ())
    assert h.held.writes == []
    # Published once: more statuses later publish nothing more for it.
    await h.tracker.process([status(status_event("n-1", "sending", 1, attempt=1)), early])
    assert len(h.status_out.sent) == 1


async def test_a_receipt_naming_a_message_never_sent_is_ignored_and_counted() -> None:
    h = Harness()
    forged = receipt(receipt_event("n-1", "delivered", 5))  # names msg-n-1
    await h.tracker.process([sent("n-1", 1, message_id="msg-other"), forged])
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    assert entry.state == "sent"
    assert h.status_out.sent == []
    assert h.tracker.stats.receipts_rejected == 1


async def test_a_held_receipt_that_names_another_send_is_dropped_when_the_send_comes() -> None:
    h = Harness()
    await h.tracker.process([receipt(receipt_event("n-1", "delivered", 5))])
    await h.tracker.process([sent("n-1", 1, message_id="msg-other")])
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    assert entry.state == "sent"
    assert (h.tracker.stats.receipts_rejected, h.status_out.sent) == (1, [])
    assert entry.held == ()


async def test_a_receipt_for_a_send_without_a_message_id_is_applied() -> None:
    """A provider that answered without an id: the receipt cannot be checked, so it counts."""
    h = Harness()
    await h.tracker.process([status(status_event("n-1", "sent", 1, provider="smtp"))])
    await h.tracker.process([receipt(receipt_event("n-1", "delivered", 5))])
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    assert entry.state == "delivered"


async def test_opened_receipts_change_nothing_and_publish_nothing() -> None:
    h = Harness()
    await h.tracker.process([receipt(receipt_event("n-1", "opened", 5))])
    assert (h.table, h.status_out.sent, h.store.calls) == ({}, [], [])


async def test_poison_goes_to_the_dead_letters_of_its_own_topic() -> None:
    h = Harness()
    await h.tracker.process(
        [
            record(TOPICS.receipts, b"\xffnot avro", offset=7),
            status(status_event("n-1", "queued", 0)),
        ]
    )
    assert [r.value for r in h.dlq[TOPICS.receipts].sent] == [b"\xffnot avro"]
    assert h.dlq[TOPICS.status].sent == []
    assert b"n-1" in h.table


async def test_an_unavailable_database_is_retried_until_it_is_back() -> None:
    h = Harness(FakeStore(failures=3))
    await h.tracker.process([status(status_event("n-1", "queued", 0))])
    assert h.sleeps == [0.1, 0.2, 0.4]
    assert len(h.store.calls) == 1
    assert h.tracker.stats.retries == 3


async def test_a_repeated_receipt_is_published_once() -> None:
    h = Harness()
    repeated = receipt(receipt_event("n-1", "delivered", 5))
    await h.tracker.process([status(status_event("n-1", "sent", 1)), repeated])
    await h.tracker.process([repeated])
    assert len(h.status_out.sent) == 1


async def test_the_agents_own_transitions_are_recognised_by_their_headers() -> None:
    h = Harness()
    sent, delivered = status_event("n-1", "sent", 1), receipt_event("n-1", "delivered", 5)
    await h.tracker.process([status(sent), receipt(delivered)])
    [out] = h.status_out.sent
    assert is_own_record(out.headers)
    assert is_own_record(dict(out.headers))
    assert not is_own_record(status_event_headers())
    assert not is_own_record(None)
    # The wiring reads every status record but those (`test_suppression_reports` has the
    # exception: an earlier version's).
    assert not is_tracked(out.headers)
    assert not is_tracked(dict(out.headers))
    assert is_tracked(status_event_headers())
    assert is_tracked(None)


def status_event_headers() -> list[tuple[str, bytes]]:
    return [("event_id", b"x"), ("source", b"agent:dispatch_notifications")]


async def test_an_entry_replaced_behind_the_trackers_back_is_read_again() -> None:
    h = Harness()
    await h.tracker.process([status(status_event("n-1", "queued", 0))])
    # Another tracker's newer state arrives through the changelog (say, after a rebalance).
    other = Harness()
    await other.tracker.process(
        [
            status(status_event("n-1", "queued", 0)),
            sent("n-1", 2),
            receipt(receipt_event("n-1", "delivered", 9)),
        ]
    )
    h.table[b"n-1"] = other.table[b"n-1"]
    h.tracker.forget()  # as the worker's table recovery does after every rebalance
    await h.tracker.process([status(status_event("n-1", "sending", 1))])
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    assert [s.state for s in entry.timeline] == ["queued", "sending", "sent", "delivered"]


async def test_a_batch_writes_each_notification_once_in_its_last_scope() -> None:
    h = Harness()
    queued = status(status_event("n-1", "queued", 0))
    sending = status(status_event("n-1", "sending", 1, attempt=1))
    other = status(status_event("n-2", "queued", 0))
    sent = status(status_event("n-1", "sent", 2, attempt=1))
    await h.tracker.process([queued, sending, other, sent])
    assert h.table.writes == [(b"n-1", sent), (b"n-2", other)]
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    assert entry.state == "sent"
    _rows, steps = h.store.calls[0]
    assert len(steps) == 4


async def _crashed_while_publishing(delivered: SourceRecord) -> Harness:
    """A tracker that folded `n-1`'s sent status, then died publishing `delivered`'s
    transition: what its store holds is what the worker restarts with."""
    crashing = Harness(status_out=FailingSink())
    await crashing.tracker.process([status(status_event("n-1", "sent", 1))])
    with pytest.raises(RuntimeError, match="killed"):
        await crashing.tracker.process([delivered])
    return crashing


async def test_a_transition_whose_publish_never_returned_leaves_the_table_as_it_was() -> None:
    """Nothing of the receipt is written before Kafka acknowledged its transition."""
    crashed = await _crashed_while_publishing(receipt(receipt_event("n-1", "delivered", 5)))
    entry = from_entry(crashed.table[b"n-1"])
    assert entry is not None
    assert (entry.state, entry.unpublished) == ("sent", ())


async def test_the_record_read_again_after_a_crash_publishes_its_transition_then() -> None:
    """The same worker restarts on its own store and reads the receipt again (its offset was
    never committed): the step is new to the table, so it is folded and published, under the
    id the lost publish had."""
    delivered = receipt(receipt_event("n-1", "delivered", 5))
    crashed = await _crashed_while_publishing(delivered)
    restarted = Harness()
    restarted.table.update(crashed.table)
    await restarted.tracker.process([delivered])
    [published] = restarted.status_out.sent
    event = decode(published.value, NotificationStatusEvent)
    assert event.payload.state == "delivered"
    again = Harness()
    await again.tracker.process([status(status_event("n-1", "sent", 1)), delivered])
    assert decode(again.status_out.sent[0].value, NotificationStatusEvent).event_id == (
        event.event_id
    )
    entry = from_entry(restarted.table[b"n-1"])
    assert entry is not None
    assert (entry.state, entry.unpublished) == ("delivered", ())


async def test_a_held_receipt_stays_held_until_the_publish_of_its_release_returns() -> None:
    early = receipt(receipt_event("n-1", "delivered", 5))
    crashing = Harness(status_out=FailingSink())
    await crashing.tracker.process([early])
    with pytest.raises(RuntimeError, match="killed"):
        await crashing.tracker.process([sent("n-1", 1)])
    # Still held: the sent status is read again, and releases it then.
    assert parse_entry(crashing.table[b"n-1"]) == Waiting(
        notification_id="n-1", held=(receipt_step_of(early),)
    )
    restarted = Harness()
    restarted.table.update(crashing.table)
    await restarted.tracker.process([sent("n-1", 1)])
    [published] = restarted.status_out.sent
    assert decode(published.value, NotificationStatusEvent).payload.state == "delivered"
    entry = from_entry(restarted.table[b"n-1"])
    assert entry is not None
    assert (entry.state, entry.held) == ("delivered", ())


async def test_an_outbox_an_earlier_version_left_is_published_by_the_next_record() -> None:
    """Earlier versions wrote every receipt step to the outbox before publishing it."""
    h = Harness()
    await h.tracker.process([sent("n-1", 1)])
    delivered = receipt_event("n-1", "delivered", 5)
    found = receipt_step(delivered)
    assert found is not None
    step, facts = found
    current = from_entry(h.table[b"n-1"])
    folded, _ = fold(current, "n-1", step, facts)
    h.table[b"n-1"] = to_entry(replace(folded, unpublished=(step.event_id,)))
    h.tracker.forget()  # a restart on that store
    await h.tracker.process([receipt(delivered)])
    [published] = h.status_out.sent
    assert decode(published.value, NotificationStatusEvent).payload.state == "delivered"
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    assert (entry.state, entry.unpublished) == ("delivered", ())


async def test_a_published_transition_leaves_the_outbox_and_is_not_published_again() -> None:
    h = Harness()
    delivered = receipt(receipt_event("n-1", "delivered", 5))
    await h.tracker.process([status(status_event("n-1", "sent", 1)), delivered, delivered])
    await h.tracker.process([delivered])
    assert len(h.status_out.sent) == 1
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    assert entry.unpublished == ()


async def test_entries_the_tracker_wrote_are_not_read_from_the_table_again() -> None:
    h = Harness()
    await h.tracker.process([status(status_event("n-1", "queued", 0))])
    await h.tracker.process([status(status_event("n-1", "sending", 1, attempt=1)), sent("n-1", 2)])
    await h.tracker.process([receipt(receipt_event("n-1", "delivered", 5))])
    assert h.table.reads == [b"n-1"]  # once, before the tracker knew the notification
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    assert [s.state for s in entry.timeline] == ["queued", "sending", "sent", "delivered"]


async def test_a_failed_batch_has_every_entry_read_from_the_table_again() -> None:
    """What a failed batch staged may never have reached the table: it is not trusted."""
    h = Harness()
    await h.tracker.process([status(status_event("n-1", "queued", 0))])
    h.table.broken = True
    with pytest.raises(OSError, match="store write failed"):
        await h.tracker.process([status(status_event("n-1", "sending", 1, attempt=1))])
    h.table.broken = False
    h.table.reads.clear()
    await h.tracker.process([sent("n-1", 2)])
    assert h.table.reads == [b"n-1"]
    entry = from_entry(h.table[b"n-1"])
    assert entry is not None
    assert [s.state for s in entry.timeline] == ["queued", "sent"]


async def test_a_send_with_no_receipt_held_does_not_read_the_held_receipts() -> None:
    h = Harness()
    await h.tracker.process([status(status_event("n-1", "queued", 0)), sent("n-1", 1)])
    assert h.held.reads == []
    # Held by an earlier version before a rebalance: found once the tracker forgot what it knew.
    h.held[b"n-2"] = held_entry([receipt_step_of(receipt(receipt_event("n-2", "delivered", 5)))])
    h.tracker.forget()
    await h.tracker.process([sent("n-2", 1), sent("n-3", 1)])
    assert h.held.reads == [b"n-2"]
    (out,) = h.status_out.sent
    assert decode(out.value, NotificationStatusEvent).payload.notification_id == "n-2"
    assert b"n-2" not in h.held


async def test_every_table_read_is_made_in_the_scope_of_the_record_that_needs_it() -> None:
    """In the worker the scope is the record's partition: a read in it looks in that
    partition's store alone, where a read outside any looks in every partition's (a key the
    store has not seen yet, every new notification's, costs one lookup per partition)."""
    h = Harness()
    queued = record(TOPICS.status, status(status_event("n-1", "queued", 0)).value, offset=1)
    early = record(TOPICS.receipts, receipt(receipt_event("n-2", "delivered", 5)).value, 2)
    h.held[b"n-3"] = held_entry([receipt_step_of(receipt(receipt_event("n-3", "delivered", 5)))])
    sent_n3 = record(TOPICS.status, sent("n-3", 1).value, offset=3)
    await h.tracker.process([queued, early, sent_n3])
    cause = {b"n-1": queued, b"n-2": early, b"n-3": sent_n3}
    reads = [*h.table.read_scopes, *h.held.read_scopes]
    assert {key for key, _ in reads} == {b"n-1", b"n-2", b"n-3"}
    assert all(scope is cause[key] for key, scope in reads)


async def test_rows_carry_the_providers_text_for_the_store_to_redact() -> None:
    """What a provider said about a failed send reaches the state's reason and last error and
    the timeline step's reason; the store redacts it as it writes (its integration test)."""
    h = Harness()
    reason = "550 mailbox jane.doe@example.com unknown, call +14155550123"
    await h.tracker.process([status(status_event("n-1", "failed", 1, reason=reason))])
    [(rows, steps)] = h.store.calls
    assert (rows[0].reason, rows[0].last_error, steps[0].reason) == (reason, reason, reason)
