"""The delivery fold: precedence, event time, idempotence and order-independence."""

from __future__ import annotations

import itertools

from agents.tracking.state import Delivery, Facts, Step, fold, receipt_step, status_step
from schemas.notifications import NotificationReceiptEvent, NotificationStatusEvent
from tests.unit.agents.delivery_factories import T0, at, receipt_event, status_event

Event = NotificationStatusEvent | NotificationReceiptEvent
N = "n-1"


def folded(events: list[Event]) -> Delivery | None:
    delivery: Delivery | None = None
    for event in events:
        found: tuple[Step, Facts] | None
        if isinstance(event, NotificationStatusEvent):
            found = status_step(event)
        else:
            found = receipt_step(event)
        if found is not None:
            delivery, _ = fold(delivery, N, *found)
    return delivery


def test_the_happy_path_ends_delivered_with_every_transition_timed() -> None:
    events: list[Event] = [
        status_event(N, "queued", 0),
        status_event(N, "sending", 1, attempt=1),
        status_event(N, "sent", 2, attempt=1, provider="sendgrid", provider_message_id="m-1"),
        receipt_event(N, "delivered", 3),
    ]
    delivery = folded(events)
    assert delivery is not None
    assert delivery.state == "delivered"
    assert [s.state for s in delivery.timeline] == ["queued", "sending", "sent", "delivered"]
    assert delivery.first_at("queued") == T0
    assert delivery.first_at("delivered") == at(3)
    assert delivery.attempts == 1
    assert (delivery.provider, delivery.provider_message_id) == ("sendgrid", f"msg-{N}")
    assert (delivery.user_id, delivery.channel, delivery.category) == ("user-1", "email", "account")


def test_a_late_sending_never_reverts_delivered() -> None:
    delivery = folded([receipt_event(N, "delivered", 5), status_event(N, "sending", 1)])
    assert delivery is not None
    assert delivery.state == "delivered"
    assert [s.state for s in delivery.timeline] == ["sending", "delivered"]


def test_a_bounce_or_complaint_after_delivery_moves_it_on_but_an_older_one_does_not() -> None:
    later = folded([receipt_event(N, "delivered", 5), receipt_event(N, "complained", 9)])
    assert later is not None
    assert later.state == "spam"
    earlier = folded([receipt_event(N, "delivered", 5), receipt_event(N, "bounced", 2)])
    assert earlier is not None
    assert earlier.state == "delivered"


def test_a_bounce_in_the_same_second_as_the_delivery_moves_it_on() -> None:
    """Providers report whole seconds: a message accepted, then bounced within the second.
    A bounce or complaint can follow a delivery, never the other way round, so on a tie of
    times the delivery is the earlier of the two, in either order of arrival."""
    for first, second in (("delivered", "bounced"), ("bounced", "delivered")):
        delivery = folded([receipt_event(N, first, 5), receipt_event(N, second, 5)])
        assert delivery is not None
        assert delivery.state == "bounced"
    spam = folded([receipt_event(N, "complained", 5), receipt_event(N, "delivered", 5)])
    assert spam is not None
    assert spam.state == "spam"


def test_terminal_states_win_over_any_outcome() -> None:
    delivery = folded([status_event(N, "cancelled", 1), receipt_event(N, "delivered", 9)])
    assert delivery is not None
    assert delivery.state == "cancelled"


def test_the_same_transition_twice_changes_nothing() -> None:
    event = status_event(N, "queued", 0)
    first, added = fold(None, N, *status_step(event))
    again, added_again = fold(first, N, *status_step(event))
    assert added
    assert not added_again
    assert again is first


def test_opened_and_clicked_are_not_delivery_states() -> None:
    assert receipt_step(receipt_event(N, "opened", 1)) is None
    assert receipt_step(receipt_event(N, "clicked", 1)) is None


def test_retries_count_attempts_and_keep_the_last_error() -> None:
    delivery = folded(
        [
            status_event(N, "sending", 1, attempt=1),
            status_event(N, "retrying", 2, attempt=1, reason="HTTP 500"),
            status_event(N, "sending", 3, attempt=2),
            status_event(N, "retrying", 4, attempt=2, reason="timeout"),
            status_event(N, "failed", 9, attempt=3, reason="HTTP 503"),
        ]
    )
    assert delivery is not None
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("failed", 3, "HTTP 503")


def test_every_permutation_with_duplicates_converges_to_one_delivery() -> None:
    events: list[Event] = [
        status_event(N, "queued", 0),
        status_event(N, "sending", 1, attempt=1),
        status_event(N, "retrying", 2, attempt=1, reason="HTTP 500"),
        status_event(N, "sent", 3, attempt=2, provider="sendgrid", provider_message_id="m-2"),
        receipt_event(N, "delivered", 4),
        receipt_event(N, "complained", 8, reason="user marked spam"),
    ]
    expected = folded(events)
    assert expected is not None
    assert expected.state == "spam"
    for order in itertools.permutations(events):
        assert folded([*order, order[0], order[-1]]) == expected
