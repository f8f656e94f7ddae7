"""dispatch_notifications + retry_notifications in a real worker, against the provider sandbox.

One sandbox and one worker for the module (retry delays 0.2 s and 0.5 s); each test uses its own
notification ids. The breaker test stops the sandbox's sendgrid, so it runs last.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka import AIOKafkaProducer

from agents.dispatch.dispatcher import ATTEMPT_HEADER, DEAD_LETTER_ATTEMPTS_HEADER
from streams.kafka.dead_letters import read_dead_letter
from streams.settings import Settings
from tests.integration.agents.conftest import sandboxed_worker_settings
from tests.integration.agents.dispatch_support import (
    TopicTap,
    dispatch_value,
    new_notification_id,
    sandbox_messages,
    set_outage,
    states,
    statuses,
    tapped,
    when,
)
from tests.integration.cli.support import cli
from tests.integration.kafka_io import topic_catalog
from tests.integration.sandbox_process import SandboxProcess
from tests.integration.worker_process import WorkerProcess, eventually, own_topics

DELAYS_S = (0.2, 0.5)
# Above the 6 consecutive sendgrid failures of the fail/redrive test, so the circuit opens only in
# the outage test.
BREAKER_THRESHOLD = 10


@pytest.fixture(scope="module")
def worker_settings(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    # Receipts go nowhere: these tests look at sends and statuses, not at tracking.
    settings = sandboxed_worker_settings(
        stack_settings,
        tmp_path_factory.mktemp("worker-data"),
        retry_delays_s=DELAYS_S,
        timeout_s=5.0,
        breaker_failure_threshold=BREAKER_THRESHOLD,
        breaker_open_s=60.0,
    )
    with own_topics(settings):
        yield settings


@pytest.fixture(scope="module")
def worker(sandbox: SandboxProcess, worker: WorkerProcess) -> WorkerProcess:
    """The module's worker (conftest's), started once the sandbox answers."""
    return worker


@pytest.fixture(scope="module")
async def dlq_tap(worker_settings: Settings) -> AsyncIterator[TopicTap]:
    async with tapped(
        worker_settings, topic_catalog(worker_settings).notifications_dlq.name
    ) as tap:
        yield tap


async def dispatch(
    producer: AIOKafkaProducer, settings: Settings, channel: str, recipient: str
) -> str:
    notification_id = new_notification_id()
    topic = topic_catalog(settings).for_topic("notifications.dispatch").name
    value = dispatch_value(notification_id, channel, recipient)
    await producer.send_and_wait(topic, value, key=notification_id.encode())
    return notification_id


async def test_every_channel_is_sent_through_its_provider_and_marked_sent(
    worker: WorkerProcess,
    sandbox: SandboxProcess,
    producer: AIOKafkaProducer,
    status_tap: TopicTap,
    worker_settings: Settings,
) -> None:
    sends = {
        "sendgrid": ("email", "ada@example.com"),
        "twilio": ("sms", "+15551230000"),
        "fcm": ("push", "device-token-abc"),
        "meta": ("whatsapp", "+15551239999"),
    }
    ids = {
        provider: await dispatch(producer, worker_settings, channel, recipient)
        for provider, (channel, recipient) in sends.items()
    }
    for provider, notification_id in ids.items():
        await eventually(
            when(lambda n=notification_id: ("sent", 1) in states(status_tap, n)),
            what=f"{provider} notification sent",
            worker=worker,
        )
        assert states(status_tap, notification_id) == [("sending", 1), ("sent", 1)]
        sent = statuses(status_tap, notification_id)[-1]
        [received] = await sandbox_messages(sandbox.http_url, notification_id)
        assert received["provider"] == sent.provider == provider
        assert sent.provider_message_id is not None
        assert received["provider_message_id"] in sent.provider_message_id


async def test_a_dispatch_record_read_again_is_not_sent_again(
    worker: WorkerProcess,
    sandbox: SandboxProcess,
    producer: AIOKafkaProducer,
    status_tap: TopicTap,
    worker_settings: Settings,
) -> None:
    """The same attempt's record again (as a crash or a rebalance hands it to a worker again):
    the sent ledger answers it, the provider gets nothing, `sent` is published again with the
    same event id."""
    notification_id = await dispatch(producer, worker_settings, "email", "ada@example.com")
    await eventually(
        when(lambda: ("sent", 1) in states(status_tap, notification_id)),
        what="first dispatch sent",
        worker=worker,
    )
    topic = topic_catalog(worker_settings).for_topic("notifications.dispatch").name
    value = dispatch_value(notification_id, "email", "ada@example.com")
    await producer.send_and_wait(topic, value, key=notification_id.encode())
    await eventually(
        when(lambda: states(status_tap, notification_id).count(("sent", 1)) == 2),
        what="the repeat answered from the ledger",
        worker=worker,
    )
    assert states(status_tap, notification_id) == [("sending", 1), ("sent", 1), ("sent", 1)]
    first, again = [s for s in statuses(status_tap, notification_id) if s.state == "sent"]
    assert again.provider_message_id == first.provider_message_id
    assert len(await sandbox_messages(sandbox.http_url, notification_id)) == 1


async def test_a_failing_recipient_is_retried_on_each_delay_then_dead_lettered_and_redriven(
    worker: WorkerProcess,
    sandbox: SandboxProcess,
    producer: AIOKafkaProducer,
    status_tap: TopicTap,
    dlq_tap: TopicTap,
    worker_settings: Settings,
) -> None:
    notification_id = await dispatch(producer, worker_settings, "email", "x@fail.test")
    await eventually(
        when(lambda: ("failed", 3) in states(status_tap, notification_id)),
        what="failing notification failed after 3 attempts",
        worker=worker,
    )
    assert states(status_tap, notification_id) == [
        ("sending", 1),
        ("retrying", 1),
        ("sending", 2),
        ("retrying", 2),
        ("sending", 3),
        ("failed", 3),
    ]
    assert len(await sandbox_messages(sandbox.http_url, notification_id)) == 3
    await eventually(
        when(lambda: bool(dlq_tap.keyed(notification_id))), what="dead letter", worker=worker
    )
    [letter] = dlq_tap.keyed(notification_id)
    provenance = read_dead_letter(letter.headers)
    assert provenance.error_type == "AttemptsExhaustedError"
    assert "HTTP 500" in provenance.error_message
    assert provenance.source_topic.endswith("notifications.dispatch.retry-0.5s")
    assert letter.header(DEAD_LETTER_ATTEMPTS_HEADER) == "3"
    assert letter.header(ATTEMPT_HEADER) is None

    listed = await cli(worker_settings, "dlq", "list", "notifications")
    assert listed.code == 0, listed.stderr
    [line] = [line for line in listed.lines if line["key"] == notification_id]
    assert (line["error_type"], line["redriven"]) == ("AttemptsExhaustedError", False)

    result = await cli(worker_settings, "dlq", "redrive", "notifications", "--all")
    assert result.code == 0, result.stderr
    assert [line["status"] for line in result.lines] == ["redriven"] * len(result.lines)
    assert any(line["dlq_offset"] == letter.offset for line in result.lines)
    # Re-driven: sent again from attempt 1 (and, still failing, dead-lettered again).
    await eventually(
        when(lambda: states(status_tap, notification_id).count(("failed", 3)) == 2),
        what="re-driven notification tried 3 more times",
        worker=worker,
    )
    assert states(status_tap, notification_id).count(("sending", 1)) == 2
    assert len(await sandbox_messages(sandbox.http_url, notification_id)) == 6


async def test_an_invalid_recipient_is_dead_lettered_without_retry(
    worker: WorkerProcess,
    sandbox: SandboxProcess,
    producer: AIOKafkaProducer,
    status_tap: TopicTap,
    dlq_tap: TopicTap,
    worker_settings: Settings,
) -> None:
    notification_id = await dispatch(producer, worker_settings, "sms", "not-a-phone")
    await eventually(
        when(lambda: bool(dlq_tap.keyed(notification_id))), what="dead letter", worker=worker
    )
    [letter] = dlq_tap.keyed(notification_id)
    provenance = read_dead_letter(letter.headers)
    assert provenance.error_type == "PermanentSendError"
    assert "twilio: HTTP 400" in provenance.error_message
    assert provenance.source_topic.endswith("notifications.dispatch")
    await eventually(
        when(lambda: ("failed", 1) in states(status_tap, notification_id)),
        what="failed status",
        worker=worker,
    )
    assert states(status_tap, notification_id) == [("sending", 1), ("failed", 1)]
    assert await sandbox_messages(sandbox.http_url, notification_id) == []


async def test_a_sendgrid_outage_opens_its_breaker_and_email_fails_over_to_smtp(
    worker: WorkerProcess,
    sandbox: SandboxProcess,
    producer: AIOKafkaProducer,
    status_tap: TopicTap,
    worker_settings: Settings,
) -> None:
    # A success first: sendgrid's consecutive-failure count starts from zero.
    healthy = await dispatch(producer, worker_settings, "email", "first@example.com")
    await eventually(
        when(lambda: ("sent", 1) in states(status_tap, healthy)), what="sent", worker=worker
    )
    await set_outage(sandbox.http_url, "sendgrid", down=True)
    try:
        ids = [
            await dispatch(producer, worker_settings, "email", f"user{n}@example.com")
            for n in range(2 * BREAKER_THRESHOLD)
        ]
        for notification_id in ids:
            await eventually(
                when(lambda n=notification_id: sent_through(status_tap, n) is not None),
                what=f"{notification_id} sent despite the outage",
                worker=worker,
            )
    finally:
        await set_outage(sandbox.http_url, "sendgrid", down=False)
    assert {sent_through(status_tap, n) for n in ids} == {"smtp"}
    retried = [n for n in ids if ("retrying", 1) in states(status_tap, n)]
    # The failures that opened the circuit were retried (not lost), and went through smtp too.
    assert len(retried) >= BREAKER_THRESHOLD
    for notification_id in ids:
        [received] = await sandbox_messages(sandbox.http_url, notification_id)
        assert received["provider"] == "smtp"


def sent_through(tap: TopicTap, notification_id: str) -> str | None:
    """The provider of the notification's `sent` status, once there is one."""
    sent = [s.provider for s in statuses(tap, notification_id) if s.state == "sent"]
    return sent[0] if sent else None
