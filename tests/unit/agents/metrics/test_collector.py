"""Delivery transitions from the tracker become the same partials as status records would."""

from __future__ import annotations

from agents.metrics.collector import MetricsCollector, contribution, transition_partials
from schemas.notifications import NotificationStatusEvent
from streams.runtime import SourceRecord
from tests.unit.agents.metrics_factories import Inputs, config, status


def test_transitions_count_like_the_status_records_they_stand_for() -> None:
    window = config()
    inputs = Inputs()
    events = [status("queued", 1), status("delivered", 2, latency_s=1.5), status("bounced", 70)]
    records = inputs.records(events)
    transitions = [
        (record, event)
        for record, event in zip(records, events, strict=True)
        if isinstance(event, NotificationStatusEvent)
    ]
    assert len(transitions) == 3
    from_records = MetricsCollector(window, inputs.decode).partials(records, wall_s=5.0)
    from_transitions = transition_partials(window, transitions, wall_s=5.0)
    # The same counts; only the collector's partials list each record's (see MetricsPartial).
    assert [p.model_copy(update={"records": None}) for p in from_records] == from_transitions
    assert all(p.records is None for p in from_transitions)
    [partial] = from_records
    assert [(offset, counts) for offset, _, counts in partial.records or []] == [
        (record.offset, contribution("notifications", event))
        for record, event in zip(records, events, strict=True)
    ]


def test_one_partial_per_partition_covering_its_offsets() -> None:
    delivered = status("delivered", 2, latency_s=0.5)
    assert isinstance(delivered, NotificationStatusEvent)
    transitions = [
        (SourceRecord("receipts", 1, offset, None, b""), delivered) for offset in (7, 3, 5)
    ] + [(SourceRecord("status", 0, 9, None, b""), delivered)]
    partials = transition_partials(config(), transitions, wall_s=1.0)
    assert [(p.source, p.first_offset, p.last_offset) for p in partials] == [
        ("receipts:1", 3, 7),
        ("status:0", 9, 9),
    ]
    (pane,) = partials[0].panes.values()
    assert pane["delivery"]["email"]["outcomes"] == {"delivered": 3}
