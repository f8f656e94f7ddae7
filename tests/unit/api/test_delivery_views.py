"""Opaque cursors of the user notification listing, and the stats body's rates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.notifications import InvalidCursorError, decode_cursor, encode_cursor, stats_body
from streams.stores.delivery_store import DeliveryStats


def test_a_cursor_round_trips_and_is_url_safe() -> None:
    cursor = (datetime(2026, 11, 22, 9, 0, 0, 123000, tzinfo=UTC), "n-1:ü/+")
    text = encode_cursor(cursor)
    assert decode_cursor(text) == cursor
    assert all(c.isalnum() or c in "-_" for c in text)


@pytest.mark.parametrize(
    "text", ["", "!!!", "bm90IGpzb24", encode_cursor((datetime(2026, 1, 1, tzinfo=UTC), "x"))[:-4]]
)
def test_a_cursor_not_issued_by_the_api_is_refused(text: str) -> None:
    with pytest.raises(InvalidCursorError):
        decode_cursor(text)


def test_rates_are_over_the_notifications_that_reached_an_outcome() -> None:
    stats = DeliveryStats("channel", "email", None, 10, 6, 1, 2, 1, 1.0, 2.0, 3.0)
    body = stats_body(stats)
    assert body["outcomes"] == 10
    assert body["rates"] == {"delivered": 0.6, "failed": 0.1, "bounced": 0.2, "spam": 0.1}
    empty = stats_body(DeliveryStats("all", None, None, 3, 0, 0, 0, 0, None, None, None))
    assert empty["rates"]["delivered"] is None
