"""Every adapter against the provider sandbox process: accepted, retriable and permanent answers.

The sandbox speaks each provider's wire format (and real SMTP through aiosmtpd), so this checks
that the adapters and the sandbox agree, which the in-process fakes of the unit tests cannot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from pydantic import SecretStr

from streams.providers.base import (
    ChannelName,
    ChannelSender,
    OutboundMessage,
    PermanentSendError,
    RetriableSendError,
)
from streams.providers.channels import provider_senders
from streams.providers.http import create_client_session
from streams.runtime import free_port
from streams.settings import ProviderSettings, Settings
from tests.integration.agents.dispatch_support import new_notification_id, sandbox_messages
from tests.integration.sandbox_process import (
    SandboxProcess,
    make_sandbox_settings,
    running_sandbox,
)

TIMEOUT_S = 0.5
CHANNEL_OF: dict[str, ChannelName] = {
    "sendgrid": "email",
    "smtp": "email",
    "twilio": "sms",
    "fcm": "push",
    "meta": "whatsapp",
}
GOOD = {
    "email": "ada@example.com",
    "sms": "+15551230000",
    "push": "device-token-1",
    "whatsapp": "+15550001234",
}
FAILING = {
    "email": "x@fail.test",
    "sms": "+15550000002",
    "push": "fail-device-token",
    "whatsapp": "+15550000002",
}
INVALID = {"email": "not-an-address", "sms": "12", "push": "", "whatsapp": "nope"}
SLOW = {
    "email": "x@slow.test",
    "sms": "+15550000003",
    "push": "slow-device-token",
    "whatsapp": "+15550000003",
}


@pytest.fixture(scope="module")
def sandbox(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SandboxProcess]:
    nowhere = f"http://127.0.0.1:{free_port('127.0.0.1')}"
    # Slower than the adapters' timeout, so `slow` recipients time out.
    settings = make_sandbox_settings(stack_settings, nowhere, slow_s=TIMEOUT_S * 4)
    with running_sandbox(settings, tmp_path_factory.mktemp("sandbox") / "sandbox.log") as process:
        yield process


@pytest.fixture(scope="module")
async def senders(sandbox: SandboxProcess) -> AsyncIterator[dict[str, ChannelSender]]:
    url = sandbox.http_url
    providers = ProviderSettings(
        sendgrid_base_url=url,
        twilio_base_url=url,
        fcm_base_url=url,
        meta_base_url=url,
        smtp_host=sandbox.smtp_host,
        smtp_port=sandbox.smtp_port,
        sendgrid_api_key=SecretStr("test-sendgrid-key"),
        twilio_auth_token=SecretStr("test-twilio-token"),
        fcm_access_token=SecretStr("test-fcm-token"),
        meta_access_token=SecretStr("test-meta-token"),
    )
    session = create_client_session(pool_size=16, timeout_s=TIMEOUT_S)
    yield provider_senders(session, providers, TIMEOUT_S)
    await session.close()


def message(provider: str, recipients: dict[str, str]) -> OutboundMessage:
    channel = CHANNEL_OF[provider]
    recipient = recipients[channel]
    return OutboundMessage(new_notification_id(), channel, recipient, "Subject", "Body")


@pytest.mark.parametrize("provider", list(CHANNEL_OF))
async def test_an_accepted_send_returns_the_id_the_sandbox_recorded(
    provider: str, sandbox: SandboxProcess, senders: dict[str, ChannelSender]
) -> None:
    sent = message(provider, GOOD)
    result = await senders[provider].send(sent)
    [received] = await sandbox_messages(sandbox.http_url, sent.notification_id)
    assert (result.provider, received["provider"]) == (provider, provider)
    assert received["provider_message_id"] in result.provider_message_id
    assert received["recipient"] == sent.recipient


@pytest.mark.parametrize("provider", list(CHANNEL_OF))
async def test_a_failing_recipient_is_retriable(
    provider: str, senders: dict[str, ChannelSender]
) -> None:
    with pytest.raises(RetriableSendError, match=r"HTTP 500|451"):
        await senders[provider].send(message(provider, FAILING))


@pytest.mark.parametrize("provider", list(CHANNEL_OF))
async def test_an_invalid_recipient_is_permanent(
    provider: str, senders: dict[str, ChannelSender]
) -> None:
    with pytest.raises(PermanentSendError, match=r"HTTP 400|553"):
        await senders[provider].send(message(provider, INVALID))


@pytest.mark.parametrize("provider", list(CHANNEL_OF))
async def test_a_provider_slower_than_the_timeout_is_retriable(
    provider: str, senders: dict[str, ChannelSender]
) -> None:
    with pytest.raises(RetriableSendError, match=r"timed out|Timeout"):
        await senders[provider].send(message(provider, SLOW))


async def test_an_outage_is_retriable(
    sandbox: SandboxProcess, senders: dict[str, ChannelSender]
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sandbox.http_url}/_sandbox/outage/sendgrid") as answer:
            assert answer.status == 200
        try:
            with pytest.raises(RetriableSendError, match="HTTP 503"):
                await senders["sendgrid"].send(message("sendgrid", GOOD))
        finally:
            async with http.delete(f"{sandbox.http_url}/_sandbox/outage/sendgrid") as answer:
                assert answer.status == 200


@pytest.mark.parametrize("provider", ["sendgrid", "twilio", "fcm", "meta"])
async def test_a_repeated_attempt_with_its_key_is_sent_once(
    provider: str, sandbox: SandboxProcess, senders: dict[str, ChannelSender]
) -> None:
    """Each HTTP adapter sends the attempt's idempotency key in the header its provider reads,
    so a worker that sends an attempt again (it crashed before recording the first) is answered
    with the first send's id and the recipient gets one message."""
    sent = message(provider, GOOD)
    keyed = OutboundMessage(
        sent.notification_id,
        sent.channel,
        sent.recipient,
        sent.subject,
        sent.body,
        idempotency_key=f"{sent.notification_id}/1",
    )
    first = await senders[provider].send(keyed)
    again = await senders[provider].send(keyed)
    assert again.provider_message_id == first.provider_message_id
    assert len(await sandbox_messages(sandbox.http_url, sent.notification_id)) == 1
