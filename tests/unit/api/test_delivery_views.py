"""The stats body's rates (the listing's cursors are `api.query`'s, tested there)."""

from __future__ import annotations

from api.notifications import stats_body
from streams.stores.delivery_store import DeliveryStats


def test_rates_are_over_the_notifications_that_reached_an_outcome() -> None:
    stats = DeliveryStats("channel", "email", None, 10, 6, 1, 2, 1, 1.0, 2.0, 3.0)
    body = stats_body(stats)
    assert body["outcomes"] == 10
    assert body["rates"] == {"delivered": 0.6, "failed": 0.1, "bounced": 0.2, "spam": 0.1}
    empty = stats_body(DeliveryStats("all", None, None, 3, 0, 0, 0, 0, None, None, None))
    assert empty["rates"]["delivered"] is None
