"""The sandbox process over HTTP: each provider's answer, each outcome's receipts (signed and
verified by the receiver as the API would), provider-style errors, and the outage switch."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import ClientSession

from tests.integration.sandbox.conftest import ReceiptReceiver
from tests.integration.sandbox.support import (
    BEARER,
    new_id,
    send_fcm,
    send_meta,
    send_sendgrid,
    send_twilio,
)
from tests.integration.sandbox_process import SandboxProcess


def _only(receipts: list[dict[str, object]]) -> dict[str, object]:
    assert len(receipts) == 1, receipts
    return receipts[0]


async def test_sendgrid_delivers_and_posts_a_signed_receipt(
    sandbox: SandboxProcess, receiver: ReceiptReceiver, http: ClientSession
) -> None:
    notification_id = new_id()
    response = await send_sendgrid(http, sandbox.http_url, "ada@example.com", notification_id)
    assert response.status == 202
    message_id = response.headers["X-Message-Id"]
    receipt = _only(await receiver.receipts(notification_id))
    assert receipt["state"] == "delivered"
    assert receipt["provider_message_id"] == message_id
    assert receipt["channel"] == "email"
    assert str(receipt["occurred_at"]).endswith("Z")
    [post] = receiver.posts_with(notification_id)
    assert post.provider == "sendgrid"
    assert post.signature_error is None
    assert post.webhook_id.startswith("msg_")


async def test_twilio_delivers(
    sandbox: SandboxProcess, receiver: ReceiptReceiver, http: ClientSession
) -> None:
    notification_id = new_id()
    response = await send_twilio(http, sandbox.http_url, "+15550100004", notification_id)
    assert response.status == 201
    sid = (await response.json())["sid"]
    assert sid.startswith("SM")
    receipt = _only(await receiver.receipts(notification_id))
    assert (receipt["state"], receipt["provider_message_id"], receipt["channel"]) == (
        "delivered",
        sid,
        "sms",
    )
    assert receiver.posts_with(notification_id)[0].provider == "twilio"


async def test_fcm_delivers(
    sandbox: SandboxProcess, receiver: ReceiptReceiver, http: ClientSession
) -> None:
    notification_id = new_id()
    response = await send_fcm(http, sandbox.http_url, "device-token-42", notification_id)
    assert response.status == 200
    name = (await response.json())["name"]
    assert name.startswith("projects/tributary-test/messages/")
    receipt = _only(await receiver.receipts(notification_id))
    assert (receipt["state"], receipt["provider_message_id"], receipt["channel"]) == (
        "delivered",
        name,
        "push",
    )


async def test_meta_delivers(
    sandbox: SandboxProcess, receiver: ReceiptReceiver, http: ClientSession
) -> None:
    notification_id = new_id()
    response = await send_meta(http, sandbox.http_url, "+4915112345678", notification_id)
    assert response.status == 200
    wamid = (await response.json())["messages"][0]["id"]
    assert wamid.startswith("wamid.")
    receipt = _only(await receiver.receipts(notification_id))
    assert (receipt["state"], receipt["provider_message_id"], receipt["channel"]) == (
        "delivered",
        wamid,
        "whatsapp",
    )


async def test_bounces_are_accepted_then_reported_with_a_reason(
    sandbox: SandboxProcess, receiver: ReceiptReceiver, http: ClientSession
) -> None:
    email, sms, push = new_id(), new_id(), new_id()
    assert (await send_sendgrid(http, sandbox.http_url, "ada@bounce.test", email)).status == 202
    assert (await send_twilio(http, sandbox.http_url, "+15550100001", sms)).status == 201
    assert (await send_fcm(http, sandbox.http_url, "bounce-device-1", push)).status == 200
    for notification_id in (email, sms, push):
        receipt = _only(await receiver.receipts(notification_id))
        assert receipt["state"] == "bounced"
        assert receipt["reason"]


async def test_spam_is_delivered_then_complained(
    sandbox: SandboxProcess, receiver: ReceiptReceiver, http: ClientSession
) -> None:
    notification_id = new_id()
    assert (
        await send_sendgrid(http, sandbox.http_url, "ada@spam.test", notification_id)
    ).status == 202
    delivered, complained = await receiver.receipts(notification_id, count=2)
    assert (delivered["state"], complained["state"]) == ("delivered", "complained")
    assert str(complained["occurred_at"]) > str(delivered["occurred_at"])


async def test_fail_answers_500_and_posts_no_receipt(
    sandbox: SandboxProcess, receiver: ReceiptReceiver, http: ClientSession
) -> None:
    failing, after = new_id(), new_id()
    response = await send_sendgrid(http, sandbox.http_url, "ada@fail.test", failing)
    assert response.status == 500
    assert (await response.json())["errors"][0]["message"]
    sms = await send_twilio(http, sandbox.http_url, "+15550100002", new_id())
    assert sms.status == 500
    assert (await sms.json())["status"] == 500
    # Receipts of one provider are posted in send order: once the later send's receipt is in,
    # a receipt for the failed send would be in too.
    assert (await send_sendgrid(http, sandbox.http_url, "bob@example.com", after)).status == 202
    await receiver.receipts(after)
    assert receiver.receipts_for(failing) == []
    async with http.get(
        f"{sandbox.http_url}/_sandbox/messages", params={"notification_id": failing}
    ) as answer:
        [message] = (await answer.json())["messages"]
    assert (message["outcome"], message["recipient"]) == ("fail", "ada@fail.test")


async def test_a_slow_recipient_holds_only_its_own_answer(
    sandbox: SandboxProcess, receiver: ReceiptReceiver, http: ClientSession
) -> None:
    slow_id, quick_id = new_id(), new_id()
    slow = asyncio.create_task(send_twilio(http, sandbox.http_url, "+15550100003", slow_id))
    await asyncio.sleep(0)  # let the slow request go out first
    quick = await send_twilio(http, sandbox.http_url, "+15550100004", quick_id)
    assert quick.status == 201
    assert not slow.done()
    assert (await slow).status == 201
    receipt = _only(await receiver.receipts(slow_id))
    assert receipt["state"] == "delivered"


async def test_the_messages_view_shows_what_was_received(
    sandbox: SandboxProcess, http: ClientSession
) -> None:
    notification_id = new_id()
    await send_fcm(http, sandbox.http_url, "device-token-7", notification_id)
    async with http.get(
        f"{sandbox.http_url}/_sandbox/messages", params={"notification_id": notification_id}
    ) as answer:
        assert answer.status == 200
        [message] = (await answer.json())["messages"]
    assert message["provider"] == "fcm"
    assert message["channel"] == "push"
    assert message["recipient"] == "device-token-7"
    assert message["subject"] == "Shipped"
    assert message["outcome"] == "delivered"
    async with http.get(
        f"{sandbox.http_url}/_sandbox/messages", params={"notification_id": new_id()}
    ) as answer:
        assert (await answer.json())["messages"] == []


async def test_invalid_recipients_are_400_in_each_providers_style(
    sandbox: SandboxProcess, receiver: ReceiptReceiver, http: ClientSession
) -> None:
    base = sandbox.http_url
    sendgrid = await send_sendgrid(http, base, "not-an-address", new_id())
    assert sendgrid.status == 400
    assert (await sendgrid.json())["errors"][0]["field"] == "personalizations.0.to.0.email"
    twilio = await send_twilio(http, base, "5550100004", new_id())
    assert twilio.status == 400
    assert (await twilio.json())["code"] == 21211
    fcm = await send_fcm(http, base, "bad token", new_id())
    assert fcm.status == 400
    assert (await fcm.json())["error"]["status"] == "INVALID_ARGUMENT"
    meta = await send_meta(http, base, "+12", new_id())
    assert meta.status == 400
    assert (await meta.json())["error"]["code"] == 100


async def test_bad_bodies_and_missing_credentials(
    sandbox: SandboxProcess, http: ClientSession
) -> None:
    base = sandbox.http_url
    async with http.post(
        f"{base}/v3/mail/send", data=b"{not json", headers={"Authorization": "Bearer k"}
    ) as response:
        assert response.status == 400
        assert (await response.json())["errors"][0]["field"] == "body"
    unauthenticated = await send_sendgrid(http, base, "ada@example.com", new_id(), headers={})
    assert unauthenticated.status == 401
    wrong_account = await send_twilio(http, base, "+15550100004", new_id(), account_sid="ACother")
    assert wrong_account.status == 401
    assert (await wrong_account.json())["code"] == 20003
    no_password = await send_twilio(http, base, "+15550100004", new_id(), password="")
    assert no_password.status == 401


async def test_outage_makes_one_provider_answer_503_until_it_ends(
    sandbox: SandboxProcess, receiver: ReceiptReceiver, http: ClientSession
) -> None:
    base = sandbox.http_url
    async with http.post(f"{base}/_sandbox/outage/fcm") as answer:
        assert answer.status == 200
    try:
        during = new_id()
        response = await send_fcm(http, base, "device-token-1", during)
        assert response.status == 503
        assert (await response.json())["error"]["status"] == "UNAVAILABLE"
        # Other providers are unaffected.
        assert (await send_meta(http, base, "+4915112345678", new_id())).status == 200
        async with http.get(f"{base}/_sandbox/health") as health:
            assert (await health.json())["outages"] == {
                "fcm": {"status": 503, "retry_after_s": None}
            }
    finally:
        async with http.delete(f"{base}/_sandbox/outage/fcm") as answer:
            assert answer.status == 200
    after = new_id()
    assert (await send_fcm(http, base, "device-token-1", after)).status == 200
    await receiver.receipts(after)
    assert receiver.receipts_for(during) == []
    async with http.post(f"{base}/_sandbox/outage/pigeon") as unknown:
        assert unknown.status == 404


async def test_a_rate_limit_outage_answers_429_with_retry_after(
    sandbox: SandboxProcess, receiver: ReceiptReceiver, http: ClientSession
) -> None:
    base = sandbox.http_url
    async with http.post(
        f"{base}/_sandbox/outage/twilio", params={"status": "429", "retry_after_s": "2"}
    ) as answer:
        assert (await answer.json())["status"] == 429
    try:
        limited = new_id()
        response = await send_twilio(http, base, "+15550100004", limited)
        assert response.status == 429
        assert response.headers["Retry-After"] == "2"
        assert (await response.json())["code"] == 20429
    finally:
        async with http.delete(f"{base}/_sandbox/outage/twilio") as answer:
            assert answer.status == 200
    assert (await send_twilio(http, base, "+15550100004", new_id())).status == 201
    for bad in ({"status": "404"}, {"status": "x"}, {"retry_after_s": "-1"}):
        async with http.post(f"{base}/_sandbox/outage/twilio", params=bad) as answer:
            assert answer.status == 400
    async with http.get(f"{base}/_sandbox/health") as health:
        assert (await health.json())["outages"] == {}


async def _sandbox_health(http: ClientSession, sandbox: SandboxProcess) -> dict[str, Any]:
    async with http.get(f"{sandbox.http_url}/_sandbox/health") as answer:
        health: dict[str, Any] = await answer.json()
        return health


async def _messages_for(
    http: ClientSession, sandbox: SandboxProcess, notification_id: str
) -> list[dict[str, Any]]:
    async with http.get(
        f"{sandbox.http_url}/_sandbox/messages", params={"notification_id": notification_id}
    ) as answer:
        found: list[dict[str, Any]] = (await answer.json())["messages"]
        return found


async def test_a_send_repeated_with_its_idempotency_key_is_answered_again_not_sent_again(
    sandbox: SandboxProcess, http: ClientSession
) -> None:
    notification_id = new_id()
    before = await _sandbox_health(http, sandbox)
    keyed = {**BEARER, "Idempotency-Key": f"{notification_id}/1"}
    first = await send_sendgrid(
        http, sandbox.http_url, "ada@example.com", notification_id, headers=keyed
    )
    again = await send_sendgrid(
        http, sandbox.http_url, "ada@example.com", notification_id, headers=keyed
    )
    assert (first.status, again.status) == (202, 202)
    assert again.headers["X-Message-Id"] == first.headers["X-Message-Id"]
    assert len(await _messages_for(http, sandbox, notification_id)) == 1
    after = await _sandbox_health(http, sandbox)
    assert after["idempotent_replays"] == before["idempotent_replays"] + 1
    assert after["duplicates"] == before["duplicates"]


async def test_a_send_repeated_without_a_key_is_counted_as_a_duplicate(
    sandbox: SandboxProcess, http: ClientSession
) -> None:
    notification_id = new_id()
    before = await _sandbox_health(http, sandbox)
    for _ in range(2):
        response = await send_sendgrid(http, sandbox.http_url, "ada@example.com", notification_id)
        assert response.status == 202
    assert len(await _messages_for(http, sandbox, notification_id)) == 2
    after = await _sandbox_health(http, sandbox)
    assert after["duplicates"] == before["duplicates"] + 1
    assert after["idempotent_replays"] == before["idempotent_replays"]


async def test_a_failed_send_is_not_remembered_under_its_key(
    sandbox: SandboxProcess, http: ClientSession
) -> None:
    """A provider answers a retry of a failed request anew, even under the same key."""
    notification_id = new_id()
    keyed = {**BEARER, "Idempotency-Key": f"{notification_id}/1"}
    for _ in range(2):
        failed = await send_sendgrid(
            http, sandbox.http_url, "ada@fail.test", notification_id, headers=keyed
        )
        assert failed.status == 500
    assert len(await _messages_for(http, sandbox, notification_id)) == 2
