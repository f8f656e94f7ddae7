"""The analytics records: keys, deterministic ids, and the Avro round trip of every topic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agents.metrics.aggregation import window_record
from schemas.analytics import (
    ANALYTICS_RECORDS,
    AuthWindow,
    DeliveryWindow,
    EventsWindow,
    OrdersWindow,
    WindowResult,
)
from schemas.contracts import ANALYTICS_CONTRACTS, BY_EVENT_TYPE, BY_SUBJECT, contract_for_model
from schemas.registry import SchemaSet
from streams.kafka.wire import decode, encode

START = datetime(2026, 11, 21, 12, 5, tzinfo=UTC)
WINDOW = {
    "kind": "hopping",
    "window_start": START,
    "window_end": START + timedelta(minutes=5),
    "window_size_s": 300,
    "window_step_s": 60,
}
RESULTS: list[WindowResult] = [
    EventsWindow(**WINDOW, family="users", events=3, by_type={"user.created": 3}),
    OrdersWindow(
        **WINDOW,
        currency="EUR",
        events=4,
        orders_created=1,
        orders_paid=2,
        revenue_minor=3001,
        average_order_value_minor=1500,
        cancellations=0,
        refunds=1,
        refunded_minor=10,
    ),
    AuthWindow(
        **WINDOW, events=2, logins=1, login_failures=1, suspicious_logins=0, by_type={"a": 2}
    ),
    DeliveryWindow(
        **WINDOW,
        channel="email",
        events=2,
        outcomes={"delivered": 1, "bounced": 1},
        delivered=1,
        failed=0,
        bounced=1,
        spam=0,
        latency_samples=1,
        latency_p50_ms=812.5,
        latency_p95_ms=812.5,
        latency_p99_ms=None,
    ),
]


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: type(r).__name__)
def test_every_window_record_round_trips_through_its_topics_schema(result: WindowResult) -> None:
    published = START + timedelta(minutes=5, seconds=31)
    topic, envelope = window_record(result, published)
    raw = encode(envelope)
    assert int.from_bytes(raw[1:5], "big") == SchemaSet.load().latest(f"{topic}-value").id
    back = decode(raw, type(envelope))
    assert back == envelope
    assert back.model_dump()["payload"] == result.model_dump()
    assert contract_for_model(type(envelope)).key(envelope) == result.key


def test_keys_name_kind_size_start_and_dimension() -> None:
    assert [r.key for r in RESULTS] == [
        "hopping:300:2026-11-21T12:05:00Z:users",
        "hopping:300:2026-11-21T12:05:00Z:EUR",
        "hopping:300:2026-11-21T12:05:00Z:all",
        "hopping:300:2026-11-21T12:05:00Z:email",
    ]


def test_a_windows_event_id_depends_on_its_topic_and_key_only() -> None:
    published = START + timedelta(minutes=6)
    first = window_record(RESULTS[0], published)[1]
    later = window_record(RESULTS[0], published + timedelta(hours=1))[1]
    other = window_record(RESULTS[0].model_copy(update={"family": "auth"}), published)[1]
    assert first.event_id == later.event_id != other.event_id


def test_outputs_are_decodable_but_not_producible_event_types() -> None:
    assert {c.subject for c in ANALYTICS_CONTRACTS} == {f"{t}-value" for t in ANALYTICS_RECORDS}
    for contract in ANALYTICS_CONTRACTS:
        assert BY_SUBJECT[contract.subject] is contract
        assert not set(contract.event_types) & set(BY_EVENT_TYPE)
