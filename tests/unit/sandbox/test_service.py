"""A send is recorded, and queues the receipts its outcome calls for; the mailbox stays bounded."""

from __future__ import annotations

from collections.abc import Sequence

from sandbox.mailbox import Mailbox, ReceivedMessage
from sandbox.outcomes import Channel, Outcome
from sandbox.provider_requests import Send
from sandbox.receipts import Receipt, ReceiptBatcher
from sandbox.service import Sandbox, receipts_for
from streams.settings import SandboxSettings

NOW_S = 1_700_000_000.0


async def _never_post(provider: str, receipts: Sequence[Receipt], webhook_id: str) -> int | None:
    raise AssertionError("the send path must not post")


def _sandbox() -> tuple[Sandbox, ReceiptBatcher]:
    batcher = ReceiptBatcher("sendgrid", _never_post, delay_s=0.2, batch_max=500)
    sandbox = Sandbox(SandboxSettings(slow_s=0.0), {"sendgrid": batcher}, clock_s=lambda: NOW_S)
    return sandbox, batcher


def test_receipts_by_outcome() -> None:
    def states(outcome: Outcome) -> list[tuple[str, float, str | None]]:
        receipts = receipts_for(outcome, Channel.EMAIL, "n-1", "m-1", NOW_S)
        return [(r.state, r.occurred_at_s - NOW_S, r.reason) for r in receipts]

    assert states(Outcome.DELIVERED) == [("delivered", 0.0, None)]
    assert states(Outcome.SLOW) == [("delivered", 0.0, None)]
    assert states(Outcome.FAIL) == []
    [(state, _, reason)] = states(Outcome.BOUNCE)
    assert state == "bounced"
    assert reason
    delivered, complained = states(Outcome.SPAM)
    assert delivered[0] == "delivered"
    assert complained[0] == "complained"
    # The complaint is the later event, so tracking orders it after the delivery.
    assert complained[1] > delivered[1]


async def test_accept_records_and_queues_receipts() -> None:
    sandbox, batcher = _sandbox()
    outcome = await sandbox.accept("sendgrid", "ada@spam.test", "n-1", "m-1", "Hi", "Body")
    assert outcome is Outcome.SPAM
    [message] = sandbox.mailbox.for_notification("n-1")
    assert (message.provider, message.recipient, message.outcome) == (
        "sendgrid",
        "ada@spam.test",
        Outcome.SPAM,
    )
    assert batcher.pending == 2


async def test_a_failing_send_is_recorded_without_receipts() -> None:
    sandbox, batcher = _sandbox()
    assert await sandbox.accept("sendgrid", "ada@fail.test", "n-2", "m-2", None, "") is Outcome.FAIL
    assert len(sandbox.mailbox.for_notification("n-2")) == 1
    assert batcher.pending == 0


async def test_a_provider_without_a_batcher_posts_nothing() -> None:
    sandbox, batcher = _sandbox()
    assert await sandbox.accept("twilio", "+15550100004", "n-3", "SM1", None, "x") is (
        Outcome.DELIVERED
    )
    assert batcher.pending == 0
    assert sandbox.health()["received"] == 1


def _message(number: int, notification_id: str) -> ReceivedMessage:
    return ReceivedMessage(
        "fcm",
        Channel.PUSH,
        "tok",
        notification_id,
        f"m-{number}",
        Outcome.DELIVERED,
        0.0,
        None,
        "x" * 5000,
    )


def test_the_mailbox_forgets_the_oldest_first() -> None:
    mailbox = Mailbox(max_messages=3)
    for number, notification_id in enumerate(["a", "b", "a", "c", "d"]):
        mailbox.add(_message(number, notification_id))
    assert len(mailbox) == 3
    assert mailbox.received == 5
    assert [m.provider_message_id for m in mailbox.for_notification("a")] == ["m-2"]
    assert mailbox.for_notification("b") == []
    assert [m.provider_message_id for m in mailbox.recent(10)] == ["m-2", "m-3", "m-4"]
    assert [m.provider_message_id for m in mailbox.recent(1)] == ["m-4"]
    assert all(len(m.body) == 1000 for m in mailbox.recent(10))


async def test_accept_all_takes_every_send_of_a_request() -> None:
    sandbox, batcher = _sandbox()
    sends = [Send("ada@example.com", "n-4", "Hi", "x"), Send("bob@bounce.test", "n-4", "Hi", "x")]
    assert await sandbox.accept_all("sendgrid", sends, "m-4") is True
    assert [m.outcome for m in sandbox.mailbox.for_notification("n-4")] == [
        Outcome.DELIVERED,
        Outcome.BOUNCE,
    ]
    assert batcher.pending == 2


async def test_one_failing_recipient_fails_the_request_and_only_it_is_recorded() -> None:
    sandbox, batcher = _sandbox()
    sends = [Send("ada@example.com", "n-5", None, "x"), Send("bob@fail.test", "n-5", None, "x")]
    assert await sandbox.accept_all("sendgrid", sends, "m-5") is False
    [message] = sandbox.mailbox.for_notification("n-5")
    assert (message.recipient, message.outcome) == ("bob@fail.test", Outcome.FAIL)
    assert batcher.pending == 0
