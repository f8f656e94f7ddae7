"""The chaos checker's own rules (what each output should hold), from hand-worked examples: the
checker is only as good as these, and it shares no code with the pipeline's folds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from scripts.chaos_check import (
    Outputs,
    burst_users,
    expected_orders,
    expected_windows,
    window_end,
    window_keys,
)
from scripts.chaos_load import Acknowledged

T0 = datetime(2026, 11, 21, 10, 15, 30, tzinfo=UTC)
OUTPUTS = Outputs(
    bootstrap="unused:9092",
    partitions={},
    topic_prefix="t-",
    database_dsn="unused",
    redis_url="unused",
    sandbox_url="unused",
    tumbling_s=60,
    hopping_s=120,
    hopping_step_s=60,
    grace_s=30,
    burst_failures=5,
    burst_window_s=600,
)


def ack(family: str, event_type: str, key: str, at: datetime) -> Acknowledged:
    body: dict[str, Any] = {}
    return Acknowledged(family, event_type, f"msg_{key}_{at}", key, at, 0.0, 1, body)


def test_an_event_falls_in_its_tumbling_window_and_every_hopping_window_covering_it() -> None:
    assert window_keys(OUTPUTS, T0, "EUR") == [
        "tumbling:60:2026-11-21T10:15:00Z:EUR",
        "hopping:120:2026-11-21T10:15:00Z:EUR",
        "hopping:120:2026-11-21T10:14:00Z:EUR",
    ]


def test_a_window_ends_its_size_after_its_start() -> None:
    assert window_end("hopping:120:2026-11-21T10:14:00Z:EUR") == datetime(
        2026, 11, 21, 10, 16, tzinfo=UTC
    )


def test_an_order_must_end_paid_once_its_payment_was_acknowledged_whatever_the_order() -> None:
    inputs = [
        ack("orders", "order.paid", "o1", T0),
        ack("orders", "order.created", "o1", T0),
        ack("orders", "order.created", "o2", T0),
    ]
    assert expected_orders(inputs) == {"o1": "paid", "o2": "pending"}


def test_windows_count_each_acknowledged_input_in_its_topic_and_dimension() -> None:
    inputs = [
        ack("orders", "order.created", "o1", T0),
        ack("orders", "order.paid", "o1", T0 + timedelta(seconds=40)),  # next minute
        ack("users", "user.created", "u1", T0),
        ack("auth", "auth.login-failed", "u1", T0),
    ]
    windows = expected_windows(OUTPUTS, inputs)
    orders = windows["analytics.orders"]
    assert orders["tumbling:60:2026-11-21T10:15:00Z:EUR"] == {"orders_created": 1}
    assert orders["tumbling:60:2026-11-21T10:16:00Z:EUR"] == {"orders_paid": 1}
    assert orders["hopping:120:2026-11-21T10:15:00Z:EUR"] == {
        "orders_created": 1,
        "orders_paid": 1,
    }
    assert windows["analytics.events"]["tumbling:60:2026-11-21T10:15:00Z:users"] == {
        "user.created": 1
    }
    assert windows["analytics.auth"]["tumbling:60:2026-11-21T10:15:00Z:all"] == {
        "login_failures": 1
    }


def test_a_burst_is_five_failures_of_one_user_within_the_window() -> None:
    five_quick = [
        ack("auth", "auth.login-failed", "u1", T0 + timedelta(seconds=n)) for n in range(5)
    ]
    four = [ack("auth", "auth.login-failed", "u2", T0 + timedelta(seconds=n)) for n in range(4)]
    spread = [
        ack("auth", "auth.login-failed", "u3", T0 + timedelta(seconds=200 * n)) for n in range(5)
    ]
    assert burst_users(OUTPUTS, five_quick + four + spread) == {"u1": T0 + timedelta(seconds=4)}
