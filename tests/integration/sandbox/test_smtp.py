"""Mail sent with aiosmtplib to the sandbox's SMTP listener: accepted, receipts posted like the
HTTP providers'; fail, invalid recipient, missing notification header and outage answered with
the SMTP codes a sender must tell apart (4xx retry, 5xx give up)."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib
import pytest
from aiohttp import ClientSession

from tests.integration.sandbox.conftest import ReceiptReceiver
from tests.integration.sandbox.support import new_id
from tests.integration.sandbox_process import SandboxProcess


def _mail(to: str, notification_id: str | None, message_id: str | None = None) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "notifications@tributary.test"
    mail["To"] = to
    mail["Subject"] = "Your password was changed"
    mail["Message-ID"] = message_id or f"<{new_id()}@tributary.test>"
    if notification_id is not None:
        mail["X-Tributary-Notification-Id"] = notification_id
    mail.set_content("If this was not you, reset it now.")
    return mail


async def _send(sandbox: SandboxProcess, mail: EmailMessage) -> None:
    await aiosmtplib.send(mail, hostname=sandbox.smtp_host, port=sandbox.smtp_port, timeout=10)


async def test_smtp_delivers_and_the_message_id_names_the_receipt(
    sandbox: SandboxProcess, receiver: ReceiptReceiver, http: ClientSession
) -> None:
    notification_id = new_id()
    message_id = f"<{notification_id}@tributary.test>"
    await _send(sandbox, _mail("ada@example.com", notification_id, message_id))
    [receipt] = await receiver.receipts(notification_id)
    assert (receipt["state"], receipt["provider_message_id"], receipt["channel"]) == (
        "delivered",
        message_id,
        "email",
    )
    [post] = receiver.posts_with(notification_id)
    assert (post.provider, post.signature_error) == ("smtp", None)
    async with http.get(
        f"{sandbox.http_url}/_sandbox/messages", params={"notification_id": notification_id}
    ) as answer:
        [message] = (await answer.json())["messages"]
    assert message["subject"] == "Your password was changed"
    assert "reset it now" in message["body"]


async def test_smtp_bounce_and_spam(sandbox: SandboxProcess, receiver: ReceiptReceiver) -> None:
    bounce, spam = new_id(), new_id()
    await _send(sandbox, _mail("ada@bounce.test", bounce))
    await _send(sandbox, _mail("ada@spam.test", spam))
    [bounced] = await receiver.receipts(bounce)
    assert bounced["state"] == "bounced"
    assert str(bounced["reason"]).startswith("550")
    assert [r["state"] for r in await receiver.receipts(spam, count=2)] == [
        "delivered",
        "complained",
    ]


async def test_smtp_fail_is_a_temporary_451(
    sandbox: SandboxProcess, receiver: ReceiptReceiver
) -> None:
    failing, after = new_id(), new_id()
    with pytest.raises(aiosmtplib.SMTPResponseException) as caught:
        await _send(sandbox, _mail("ada@fail.test", failing))
    assert caught.value.code == 451
    await _send(sandbox, _mail("bob@example.com", after))
    await receiver.receipts(after)
    assert receiver.receipts_for(failing) == []


async def test_smtp_refuses_an_invalid_recipient_for_good(sandbox: SandboxProcess) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as caught:
        await aiosmtplib.send(
            _mail("x@y.com", new_id()),
            sender="notifications@tributary.test",
            recipients=["not-an-address@localhost"],
            hostname=sandbox.smtp_host,
            port=sandbox.smtp_port,
        )
    [refusal] = caught.value.recipients
    assert refusal.code == 553


@pytest.mark.parametrize("notification_id", [None, "not an id"])
async def test_smtp_requires_the_notification_header(
    sandbox: SandboxProcess, notification_id: str | None
) -> None:
    with pytest.raises(aiosmtplib.SMTPResponseException) as caught:
        await _send(sandbox, _mail("ada@example.com", notification_id))
    assert caught.value.code == 550


async def test_smtp_outage_answers_421(
    sandbox: SandboxProcess, receiver: ReceiptReceiver, http: ClientSession
) -> None:
    async with http.post(f"{sandbox.http_url}/_sandbox/outage/smtp") as answer:
        assert answer.status == 200
    try:
        with pytest.raises(aiosmtplib.SMTPResponseException) as caught:
            await _send(sandbox, _mail("ada@example.com", new_id()))
        assert caught.value.code == 421
    finally:
        async with http.delete(f"{sandbox.http_url}/_sandbox/outage/smtp") as answer:
            assert answer.status == 200
    after = new_id()
    await _send(sandbox, _mail("ada@example.com", after))
    await receiver.receipts(after)
