"""Dispatch batches with fakes: outcomes, retry planning, dead letters and status transitions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from agents.dispatch.dispatcher import (
    ATTEMPT_HEADER,
    DEAD_LETTER_ATTEMPTS_HEADER,
    DUE_HEADER,
    DispatchRecord,
    NotificationDispatcher,
    RetryPlan,
    batch_wait_s,
    due_at_ms,
    plan_retry,
)
from agents.retry import Backoff
from schemas.notifications import NotificationDispatchEvent, NotificationStatusEvent
from streams.kafka.dead_letters import read_dead_letter
from streams.kafka.wire import decode, encode
from streams.providers.base import (
    OutboundMessage,
    PermanentSendError,
    RetriableSendError,
    SendResult,
)
from streams.runtime import OutgoingRecord, SourceRecord
from tests.unit.fakes import FakeSink

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
DELAYS_S = (1.0, 5.0, 30.0)


def dispatch_event(notification_id: str, recipient: str = "ada@example.com") -> bytes:
    event = NotificationDispatchEvent.model_validate(
        {
            "event_id": uuid.uuid4(),
            "event_type": "notification.dispatch-requested",
            "occurred_at": NOW,
            "ingested_at": NOW,
            "source": "test",
            "correlation_id": "corr-1",
            "payload": {
                "notification_id": notification_id,
                "user_id": "user-1",
                "category": "account",
                "channel": "email",
                "recipient": recipient,
                "locale": "en",
                "subject": "Welcome",
                "body": "Hello",
                "template": "welcome",
                "rule": "welcome",
                "attempt": 1,
                "caused_at": NOW - timedelta(seconds=2),
                "critical": False,
            },
        }
    )
    return encode(event)


def record(
    notification_id: str,
    *,
    recipient: str = "ada@example.com",
    headers: tuple[tuple[str, bytes], ...] = (),
    offset: int = 0,
    topic: str = "notifications.dispatch",
    value: bytes | None = None,
) -> DispatchRecord:
    raw = value if value is not None else dispatch_event(notification_id, recipient)
    source = SourceRecord(topic, 2, offset, notification_id.encode(), raw)
    return DispatchRecord(source, headers, int(NOW.timestamp() * 1000))


class ScriptedSender:
    """Answers per recipient: an exception to raise, or success."""

    def __init__(self, errors: dict[str, Exception] | None = None) -> None:
        self.errors = errors or {}
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        error = self.errors.get(message.recipient)
        if error is not None:
            raise error
        return SendResult("sendgrid", f"msg-{message.notification_id}")


class Harness:
    def __init__(
        self,
        sender: ScriptedSender,
        status: FakeSink | None = None,
        ledger: dict[bytes, dict[str, Any]] | None = None,
    ) -> None:
        self.status = status or FakeSink()
        self.retries = [FakeSink() for _ in DELAYS_S]
        self.dead_letters = FakeSink()
        self.sleeps: list[float] = []

        async def sleep(delay_s: float) -> None:
            self.sleeps.append(delay_s)

        self.dispatcher = NotificationDispatcher(
            sender=sender,
            decode=lambda raw: decode(raw, NotificationDispatchEvent),
            encode=encode,
            status=self.status,
            retries=self.retries,
            dead_letters=self.dead_letters,
            delays_s=DELAYS_S,
            backoff=Backoff(initial_s=0.01, max_s=0.01),
            clock=lambda: NOW,
            sleep=sleep,
            ledger=ledger,
        )

    def states(self) -> list[tuple[str, str, int | None]]:
        events = [decode(r.value, NotificationStatusEvent) for r in self.status.sent]
        return [(e.payload.notification_id, e.payload.state, e.payload.attempt) for e in events]

    def status_events(self) -> list[Any]:
        return [decode(r.value, NotificationStatusEvent).payload for r in self.status.sent]


def headers_of(out: OutgoingRecord) -> dict[str, str]:
    return {name: value.decode() for name, value in out.headers}


def test_plan_retry_follows_the_delays_then_gives_up() -> None:
    assert plan_retry(1, DELAYS_S, None) == RetryPlan(0, 1.0)
    assert plan_retry(2, DELAYS_S, None) == RetryPlan(1, 5.0)
    assert plan_retry(3, DELAYS_S, None) == RetryPlan(2, 30.0)
    assert plan_retry(4, DELAYS_S, None) is None


def test_plan_retry_honours_retry_after_by_picking_a_topic_that_covers_it() -> None:
    assert plan_retry(1, DELAYS_S, 0.5) == RetryPlan(0, 1.0)
    assert plan_retry(1, DELAYS_S, 3.0) == RetryPlan(1, 3.0)
    assert plan_retry(1, DELAYS_S, 12.0) == RetryPlan(2, 12.0)
    # Beyond the last delay: capped at it, on the last topic. A provider's (or an attacker's)
    # Retry-After of a day must not park a notification for a day.
    assert plan_retry(2, DELAYS_S, 120.0) == RetryPlan(2, 30.0)
    assert plan_retry(1, DELAYS_S, 86400.0) == RetryPlan(2, 30.0)


def test_a_retry_record_is_due_after_its_topics_delay_or_its_due_header() -> None:
    plain = record("n-1")
    start_ms = plain.timestamp_ms
    assert due_at_ms(plain, 5.0) == start_ms + 5000
    later = record("n-1", headers=((DUE_HEADER, str(start_ms + 60_000).encode()),))
    assert due_at_ms(later, 5.0) == start_ms + 60_000
    now_s = start_ms / 1000 + 2.0
    assert batch_wait_s([plain, later], 5.0, now_s) == pytest.approx(58.0)
    assert batch_wait_s([plain], 1.0, now_s) == 0.0
    assert batch_wait_s([], 1.0, now_s) == 0.0


async def test_a_sent_notification_publishes_sending_then_sent_with_the_provider_id() -> None:
    harness = Harness(ScriptedSender())
    await harness.dispatcher.process([record("n-1"), record("n-2", offset=1)])
    assert harness.states() == [
        ("n-1", "sending", 1),
        ("n-2", "sending", 1),
        ("n-1", "sent", 1),
        ("n-2", "sent", 1),
    ]
    sent = harness.status_events()[2]
    assert (sent.provider, sent.provider_message_id) == ("sendgrid", "msg-n-1")
    assert (sent.channel, sent.category, sent.template) == ("email", "account", "welcome")
    assert sent.caused_at == NOW - timedelta(seconds=2)
    assert all(not sink.sent for sink in harness.retries)
    assert not harness.dead_letters.sent
    assert harness.dispatcher.stats.sent == 2


async def test_a_retriable_failure_goes_to_the_first_retry_topic_with_the_original_value() -> None:
    error = RetriableSendError("sendgrid", "HTTP 500: boom")
    harness = Harness(ScriptedSender({"x@fail.test": error}))
    failing = record("n-1", recipient="x@fail.test")
    await harness.dispatcher.process([failing])
    [retry] = harness.retries[0].sent
    assert (retry.key, retry.value) == (failing.source.key, failing.source.value)
    headers = headers_of(retry)
    assert headers[ATTEMPT_HEADER] == "2"
    assert int(headers[DUE_HEADER]) == int(NOW.timestamp() * 1000) + 1000
    assert harness.states() == [("n-1", "sending", 1), ("n-1", "retrying", 1)]
    reason = harness.status_events()[1].reason
    assert "HTTP 500: boom" in reason
    assert "attempt 2 due 2026-11-21T12:00:01" in reason


async def test_the_attempt_header_decides_the_next_topic_and_the_last_one_dead_letters() -> None:
    error = RetriableSendError("sendgrid", "HTTP 503")
    harness = Harness(ScriptedSender({"x@fail.test": error}))
    second = record("n-2", recipient="x@fail.test", headers=((ATTEMPT_HEADER, b"2"),))
    last = record(
        "n-4",
        recipient="x@fail.test",
        headers=((ATTEMPT_HEADER, b"4"),),
        topic="notifications.dispatch.retry-30s",
        offset=9,
    )
    await harness.dispatcher.process([second, last])
    assert [r.key for r in harness.retries[1].sent] == [b"n-2"]
    [letter] = harness.dead_letters.sent
    assert letter.value == last.source.value
    provenance = read_dead_letter(letter.headers)
    assert provenance.error_type == "AttemptsExhaustedError"
    assert "attempt 4 failed, none left: sendgrid: HTTP 503" in provenance.error_message
    assert (provenance.source_topic, provenance.source_offset) == (
        "notifications.dispatch.retry-30s",
        9,
    )
    assert headers_of(letter)[DEAD_LETTER_ATTEMPTS_HEADER] == "4"
    # The dead letter does not carry the attempt on: re-driven, it starts again at 1.
    assert ATTEMPT_HEADER not in headers_of(letter)
    assert ("n-4", "failed", 4) in harness.states()


async def test_retry_after_moves_the_retry_to_a_longer_topic() -> None:
    error = RetriableSendError("twilio", "HTTP 429", retry_after_s=4.0)
    harness = Harness(ScriptedSender({"x@slow.test": error}))
    await harness.dispatcher.process([record("n-1", recipient="x@slow.test")])
    [retry] = harness.retries[1].sent
    assert int(headers_of(retry)[DUE_HEADER]) == int(NOW.timestamp() * 1000) + 4000


async def test_a_permanent_failure_is_dead_lettered_at_once_and_marked_failed() -> None:
    error = PermanentSendError("sendgrid", "HTTP 400: invalid recipient")
    harness = Harness(ScriptedSender({"bad@": error}))
    await harness.dispatcher.process([record("n-1", recipient="bad@"), record("n-2", offset=1)])
    [letter] = harness.dead_letters.sent
    provenance = read_dead_letter(letter.headers)
    assert provenance.error_type == "PermanentSendError"
    assert provenance.error_message == "sendgrid: HTTP 400: invalid recipient"
    assert all(not sink.sent for sink in harness.retries)
    failed = [p for p in harness.status_events() if p.state == "failed"]
    assert [(p.notification_id, p.provider, p.reason) for p in failed] == [
        ("n-1", "sendgrid", "sendgrid: HTTP 400: invalid recipient")
    ]
    assert ("n-2", "sent", 1) in harness.states()


async def test_a_notification_failed_for_good_is_logged_with_its_ids_and_position(
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = PermanentSendError("sendgrid", "HTTP 400: invalid recipient")
    harness = Harness(ScriptedSender({"bad@": error}))
    with caplog.at_level("WARNING", logger="agents.dispatch.dispatcher"):
        await harness.dispatcher.process([record("n-1", recipient="bad@", offset=7)])
    [line] = caplog.records
    fields = {name: getattr(line, name) for name in ("notification_id", "correlation_id")}
    assert fields == {"notification_id": "n-1", "correlation_id": "corr-1"}
    assert uuid.UUID(line.event_id)
    position = (line.topic, line.partition, line.offset)
    assert position == ("notifications.dispatch", 2, 7)


async def test_an_undecodable_record_is_dead_lettered_without_a_send() -> None:
    sender = ScriptedSender()
    harness = Harness(sender)
    await harness.dispatcher.process([record("n-1", value=b"not avro")])
    assert not sender.sent
    assert not harness.status.sent
    [letter] = harness.dead_letters.sent
    assert letter.value == b"not avro"
    assert read_dead_letter(letter.headers).error_type == "BadMagicByteError"


async def test_kafka_away_while_writing_outcomes_is_retried_not_lost() -> None:
    harness = Harness(ScriptedSender(), status=FakeSink(failures=2))
    await harness.dispatcher.process([record("n-1")])
    assert harness.states() == [("n-1", "sending", 1), ("n-1", "sent", 1)]
    assert harness.dispatcher.stats.kafka_retries == 2


async def test_status_event_ids_are_stable_across_a_reprocessed_batch() -> None:
    harness = Harness(ScriptedSender())
    batch = [record("n-1")]
    await harness.dispatcher.process(batch)
    await harness.dispatcher.process(batch)
    ids = [decode(r.value, NotificationStatusEvent).event_id for r in harness.status.sent]
    assert ids[:2] == ids[2:]
    assert ids[0] != ids[1]


async def test_each_attempt_is_sent_with_its_idempotency_key() -> None:
    sender = ScriptedSender()
    await Harness(sender).dispatcher.process([record("n-1", headers=((ATTEMPT_HEADER, b"3"),))])
    assert [m.idempotency_key for m in sender.sent] == ["n-1/3"]


async def test_an_attempt_in_the_sent_ledger_is_not_sent_again_when_read_again() -> None:
    """A worker crashed after the ledger write reached Kafka, before the offset was committed:
    the next owner reads the record again and publishes `sent` from the ledger, sending nothing."""
    ledger: dict[bytes, dict[str, Any]] = {}
    sender = ScriptedSender()
    first = Harness(sender, ledger=ledger)
    await first.dispatcher.process([record("n-1")])
    assert set(ledger) == {b"n-1/1"}
    again = Harness(sender, ledger=ledger)
    await again.dispatcher.process([record("n-1"), record("n-2", offset=1)])
    assert [m.notification_id for m in sender.sent] == ["n-1", "n-2"]
    assert again.states() == [("n-2", "sending", 1), ("n-1", "sent", 1), ("n-2", "sent", 1)]
    resent = again.status_events()[1]
    assert (resent.provider, resent.provider_message_id) == ("sendgrid", "msg-n-1")
    first_sent_id = decode(first.status.sent[1].value, NotificationStatusEvent).event_id
    assert decode(again.status.sent[1].value, NotificationStatusEvent).event_id == first_sent_id
    assert (again.dispatcher.stats.resends_avoided, again.dispatcher.stats.sent) == (1, 1)


async def test_only_accepted_sends_enter_the_ledger() -> None:
    """A failed attempt is retried as the next attempt, so it must not look sent."""
    ledger: dict[bytes, dict[str, Any]] = {}
    failing = {"x@fail.test": RetriableSendError("sendgrid", "HTTP 500: boom")}
    harness = Harness(ScriptedSender(failing), ledger=ledger)
    await harness.dispatcher.process([record("n-1", recipient="x@fail.test"), record("n-2")])
    assert list(ledger) == [b"n-2/1"]
    assert ledger[b"n-2/1"]["provider_message_id"] == "msg-n-2"


async def test_the_ledger_is_read_and_written_in_the_scope_of_its_record() -> None:
    """In the worker the scope makes the write go to the record's own changelog partition, and
    the read look in that partition's store alone (outside any, a key not there yet, every new
    attempt's, is looked for in every partition's)."""
    scoped: list[str] = []

    class Ledger(dict[bytes, dict[str, Any]]):
        def __setitem__(self, key: bytes, value: dict[str, Any]) -> None:
            scoped.append(f"{key.decode()} written in {current}")
            super().__setitem__(key, value)

        def get(self, key: bytes, default: Any = None) -> Any:  # type: ignore[override]
            scoped.append(f"{key.decode()} read in {current}")
            return super().get(key, default)

    current = "no scope"

    @contextmanager
    def scope_of(name: str) -> Iterator[None]:
        nonlocal current
        current = name
        yield
        current = "no scope"

    one = record("n-1")
    scoped_record = DispatchRecord(
        one.source, one.headers, one.timestamp_ms, partial(scope_of, "n-1's")
    )
    await Harness(ScriptedSender(), ledger=Ledger()).dispatcher.process([scoped_record])
    assert scoped == ["n-1/1 read in n-1's", "n-1/1 written in n-1's"]


async def test_an_attempt_twice_in_one_batch_is_sent_and_reported_once() -> None:
    sender = ScriptedSender()
    harness = Harness(sender, ledger={})
    await harness.dispatcher.process([record("n-1"), record("n-1", offset=1)])
    assert [m.notification_id for m in sender.sent] == ["n-1"]
    assert harness.states() == [("n-1", "sending", 1), ("n-1", "sent", 1)]
    assert harness.dispatcher.stats.resends_avoided == 1
