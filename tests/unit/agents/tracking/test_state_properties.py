"""Properties of the delivery fold: every field is a function of the SET of transitions seen.

A transition is identified by its (state, event time), as the module says: the generated steps of
one notification never share both, and a redelivery is an exact copy. Times are drawn from a few
seconds and states from every rank, so rank and time ties come up in most examples.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.tracking.state import STATE_RANK, Delivery, Facts, Step, fold, from_entry, to_entry

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
NOTIFICATION = "n-1"
_ERRORS = {"retrying", "failed", "bounced", "spam"}
FACTS = Facts(
    user_id="user-1",
    channel="email",
    category="account",
    template="welcome",
    caused_at=T0 - timedelta(seconds=1),
)
# What receipts carry (providers rarely know our users), and a status that names everything.
PARTIAL_FACTS = (Facts(), Facts(channel="email"), Facts(user_id="user-1", channel="email"), FACTS)


@st.composite
def steps(draw: st.DrawFn) -> tuple[Step, Facts]:
    step = Step(
        state=draw(st.sampled_from(sorted(STATE_RANK))),
        occurred_at=T0 + timedelta(seconds=draw(st.integers(0, 4))),
        event_id=draw(st.uuids(version=4)),
        reason=draw(st.none() | st.sampled_from(("timeout", "mailbox full"))),
        attempt=draw(st.none() | st.integers(1, 3)),
        provider=draw(st.none() | st.sampled_from(("sendgrid", "twilio"))),
        provider_message_id=draw(st.none() | st.sampled_from(("m-1", "m-2"))),
    )
    return step, draw(st.sampled_from(PARTIAL_FACTS))


histories = st.lists(
    steps(), min_size=1, max_size=10, unique_by=(lambda s: (s[0].state, s[0].occurred_at))
).filter(lambda h: len({s.event_id for s, _ in h}) == len(h))


@st.composite
def redelivered(draw: st.DrawFn, history: list[tuple[Step, Facts]]) -> list[tuple[Step, Facts]]:
    extra = draw(st.lists(st.sampled_from(history), max_size=len(history) * 2))
    shuffled: list[tuple[Step, Facts]] = draw(st.permutations([*history, *extra]))
    return shuffled


def fold_all(history: list[tuple[Step, Facts]]) -> tuple[Delivery, int]:
    """The delivery, through its JSON table entry between steps as the tracker keeps it, and
    how many steps the fold reported as new."""
    entry = None
    new = 0
    for step, facts in history:
        delivery, is_new = fold(from_entry(entry), NOTIFICATION, step, facts)
        entry = to_entry(delivery)
        new += is_new
    final = from_entry(entry)
    assert final is not None
    return final, new


@settings(max_examples=200)
@given(data=st.data(), history=histories)
def test_any_order_with_duplicates_gives_the_same_delivery(
    data: st.DataObject, history: list[tuple[Step, Facts]]
) -> None:
    again = data.draw(redelivered(history))
    first, _ = fold_all(history)
    second, new = fold_all(again)
    assert second == first
    assert to_entry(second) == to_entry(first)
    # Each transition is new exactly once, however often it arrives.
    assert new == len(history)


@settings(max_examples=200)
@given(history=histories)
def test_the_delivery_follows_the_documented_rules(history: list[tuple[Step, Facts]]) -> None:
    delivery, _ = fold_all(history)
    seen = [step for step, _ in history]
    assert delivery.current == max(seen, key=lambda s: s.version)
    # A late "sending" never reverts a later-ranked state.
    assert all(STATE_RANK[delivery.state] >= STATE_RANK[s.state] for s in seen)
    implied = [
        1
        if s.state in {"sending", "retrying", "sent", "delivered", "failed", "bounced", "spam"}
        else 0
        for s in seen
    ]
    assert delivery.attempts == max(
        max((s.attempt or i) for s, i in zip(seen, implied, strict=True)), 0
    )
    with_provider = [s for s in seen if s.provider is not None]
    assert delivery.provider_step == max(with_provider, key=lambda s: s.recency, default=None)
    errors = [s for s in seen if s.state in _ERRORS and s.reason is not None]
    assert delivery.error_step == max(errors, key=lambda s: s.recency, default=None)
    assert delivery.timeline == tuple(sorted(seen, key=lambda s: (s.occurred_at, s.state)))
    assert delivery.created_at == min(s.occurred_at for s in seen)
    assert delivery.updated_at == max(s.occurred_at for s in seen)
    for name in ("user_id", "channel", "category", "template", "caused_at"):
        known = {getattr(f, name) for _, f in history} - {None}
        assert getattr(delivery, name) == (known.pop() if known else None)
