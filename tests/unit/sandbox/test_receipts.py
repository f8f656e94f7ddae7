"""Receipt batching: nothing posted before the delay, at most batch_max per post, one webhook id
per batch across its retries, retries on 5xx/429/no answer, drops on other 4xx. A fake clock,
sleep and poster stand in for time and the API."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from sandbox.outcomes import Channel
from sandbox.receipts import Receipt, ReceiptBatcher, Verdict, receipts_body, verdict_for
from tests.unit.fakes import FakeClock


@dataclass
class FakePoster:
    """Answers with the queued statuses in turn (then 202), recording every call."""

    answers: list[int | None] = field(default_factory=list)
    calls: list[tuple[str, list[Receipt], str]] = field(default_factory=list)

    async def __call__(
        self, provider: str, receipts: Sequence[Receipt], webhook_id: str
    ) -> int | None:
        self.calls.append((provider, list(receipts), webhook_id))
        return self.answers.pop(0) if self.answers else 202


def _receipt(number: int, state: str = "delivered") -> Receipt:
    return Receipt(f"n-{number}", f"m-{number}", state, 1_700_000_000.25, Channel.EMAIL)


def _batcher(poster: FakePoster, clock: FakeClock, batch_max: int = 500) -> ReceiptBatcher:
    return ReceiptBatcher(
        "sendgrid", poster, delay_s=0.25, batch_max=batch_max, clock=clock, sleep=clock.sleep
    )


async def test_nothing_is_posted_before_the_delay() -> None:
    clock, poster = FakeClock(100.0), FakePoster()
    batcher = _batcher(poster, clock)
    for number in range(3):
        batcher.add(_receipt(number))
    # Binary fractions, so that the clock adds up exactly.
    clock.now_s += 0.125
    assert await batcher.step() == 0
    assert batcher.next_due_in_s() == 0.125
    clock.now_s += 0.125
    assert await batcher.step() == 3
    assert [[r.notification_id for r in receipts] for _, receipts, _ in poster.calls] == [
        ["n-0", "n-1", "n-2"]
    ]
    assert batcher.pending == 0
    assert (batcher.stats.posted_batches, batcher.stats.posted_receipts) == (1, 3)


async def test_batches_hold_at_most_batch_max_in_arrival_order() -> None:
    clock, poster = FakeClock(100.0), FakePoster()
    batcher = _batcher(poster, clock, batch_max=500)
    for number in range(1200):
        batcher.add(_receipt(number))
    clock.now_s += 0.25
    while await batcher.step():
        pass
    sizes = [len(receipts) for _, receipts, _ in poster.calls]
    assert sizes == [500, 500, 200]
    posted = [r.notification_id for _, receipts, _ in poster.calls for r in receipts]
    assert posted == [f"n-{number}" for number in range(1200)]
    assert len({webhook_id for _, _, webhook_id in poster.calls}) == 3


async def test_only_due_receipts_are_taken() -> None:
    clock, poster = FakeClock(100.0), FakePoster()
    batcher = _batcher(poster, clock)
    batcher.add(_receipt(1))
    clock.now_s += 0.125
    batcher.add(_receipt(2))
    clock.now_s += 0.125
    await batcher.step()
    assert [r.notification_id for r in poster.calls[0][1]] == ["n-1"]
    assert batcher.pending == 1


async def test_retriable_answers_retry_the_same_batch_with_backoff() -> None:
    clock, poster = FakeClock(100.0), FakePoster(answers=[503, None, 429, 202])
    batcher = _batcher(poster, clock)
    batcher.add(_receipt(1))
    clock.now_s += 0.25
    await batcher.step()
    assert len(poster.calls) == 4
    assert len({webhook_id for _, _, webhook_id in poster.calls}) == 1
    assert clock.slept_s == [0.2, 0.5, 1.0]
    assert batcher.stats.retries == 3
    assert batcher.stats.posted_receipts == 1
    assert batcher.stats.in_flight == 0


async def test_backoff_stops_growing_at_its_last_step() -> None:
    clock, poster = FakeClock(100.0), FakePoster(answers=[500] * 7)
    batcher = _batcher(poster, clock)
    batcher.add(_receipt(1))
    clock.now_s += 0.25
    await batcher.step()
    assert clock.slept_s == [0.2, 0.5, 1.0, 2.0, 5.0, 5.0, 5.0]


async def test_a_refused_batch_is_dropped_not_retried() -> None:
    clock, poster = FakeClock(100.0), FakePoster(answers=[422])
    batcher = _batcher(poster, clock)
    batcher.add(_receipt(1))
    batcher.add(_receipt(2))
    clock.now_s += 0.25
    await batcher.step()
    assert len(poster.calls) == 1
    assert (batcher.stats.dropped, batcher.stats.posted_receipts) == (2, 0)
    assert batcher.stats.last_error == "HTTP 422"


def test_a_full_queue_drops_new_receipts_instead_of_growing() -> None:
    clock, poster = FakeClock(100.0), FakePoster()
    batcher = ReceiptBatcher(
        "fcm", poster, delay_s=0.2, batch_max=10, clock=clock, sleep=clock.sleep, pending_max=2
    )
    for number in range(5):
        batcher.add(_receipt(number))
    assert (batcher.pending, batcher.stats.dropped) == (2, 3)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (202, Verdict.DONE),
        (200, Verdict.DONE),
        (None, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
        (400, Verdict.DROP),
        (401, Verdict.DROP),
        (404, Verdict.DROP),
        (422, Verdict.DROP),
    ],
)
def test_verdicts(status: int | None, verdict: Verdict) -> None:
    assert verdict_for(status) is verdict


def test_body_shape() -> None:
    bounced = Receipt("n-1", "m-1", "bounced", 1_700_000_000.25, Channel.SMS, "unknown handset")
    body = json.loads(receipts_body([_receipt(0), bounced]))
    assert body == {
        "receipts": [
            {
                "notification_id": "n-0",
                "provider_message_id": "m-0",
                "state": "delivered",
                "occurred_at": "2023-11-14T22:13:20.250Z",
                "channel": "email",
            },
            {
                "notification_id": "n-1",
                "provider_message_id": "m-1",
                "state": "bounced",
                "occurred_at": "2023-11-14T22:13:20.250Z",
                "channel": "sms",
                "reason": "unknown handset",
            },
        ]
    }


class StopLoopError(Exception):
    pass


class OneLoop:
    """The poster's sleep: notes how long it was asked to wait, then ends the loop."""

    def __init__(self) -> None:
        self.slept_s: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept_s.append(seconds)
        raise StopLoopError


async def run_once(batcher: ReceiptBatcher) -> None:
    with pytest.raises(StopLoopError):
        await batcher.run()


async def test_the_poster_posts_full_batches_back_to_back_then_waits_its_interval() -> None:
    clock, poster, loop = FakeClock(100.0), FakePoster(), OneLoop()
    batcher = ReceiptBatcher(
        "twilio", poster, delay_s=0.25, batch_max=500, clock=clock, sleep=loop.sleep
    )
    for number in range(1200):
        batcher.add(_receipt(number))
    clock.now_s += 0.25
    await run_once(batcher)
    assert [len(receipts) for _, receipts, _ in poster.calls] == [500, 500, 200]
    assert loop.slept_s == [batcher.interval_s]


async def test_the_poster_sleeps_until_the_oldest_receipt_is_due() -> None:
    clock, poster, loop = FakeClock(100.0), FakePoster(), OneLoop()
    batcher = ReceiptBatcher(
        "fcm", poster, delay_s=0.25, batch_max=500, clock=clock, sleep=loop.sleep
    )
    batcher.add(_receipt(1))
    clock.now_s += 0.125
    await run_once(batcher)
    assert poster.calls == []
    assert loop.slept_s == [0.125]
