"""Our SMTP adapter (`streams.providers.smtp.SmtpSender`) against the sandbox's real SMTP
listener: connections are reused across sends and refusals, checked after idling, and replaced
when the server closes them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientSession

from streams.providers.base import OutboundMessage, PermanentSendError, RetriableSendError
from streams.providers.smtp import IDLE_CHECK_S, SmtpSender
from streams.settings import ProviderSettings
from tests.integration.sandbox.support import new_id
from tests.integration.sandbox_process import SandboxProcess


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def message(recipient: str = "ada@example.com") -> OutboundMessage:
    return OutboundMessage(new_id(), "email", recipient, "Hello", "A message from the test.")


async def health(http: ClientSession, sandbox: SandboxProcess) -> dict[str, Any]:
    async with http.get(f"{sandbox.http_url}/_sandbox/health") as answer:
        found: dict[str, Any] = await answer.json()
        return found


@pytest_asyncio.fixture
async def sender(sandbox: SandboxProcess) -> AsyncIterator[tuple[SmtpSender, Clock]]:
    settings = ProviderSettings(smtp_host=sandbox.smtp_host, smtp_port=sandbox.smtp_port)
    clock = Clock()
    smtp = SmtpSender(settings, timeout_s=10, clock=clock)
    yield smtp, clock
    await smtp.close()


async def test_one_connection_carries_many_sends_and_survives_refusals(
    sender: tuple[SmtpSender, Clock], sandbox: SandboxProcess, http: ClientSession
) -> None:
    smtp, _ = sender
    before = (await health(http, sandbox))["smtp_connections"]
    results = [await smtp.send(message()) for _ in range(5)]
    assert len({r.provider_message_id for r in results}) == 5
    with pytest.raises(PermanentSendError):  # 553: an address the server refuses for good
        await smtp.send(message("not-an-address"))
    with pytest.raises(RetriableSendError):  # 451: the sandbox's *@fail.test
        await smtp.send(message("ada@fail.test"))
    await smtp.send(message())
    assert smtp.connections_opened == 1
    assert (await health(http, sandbox))["smtp_connections"] == before + 1


async def test_an_idle_connection_is_checked_and_a_closed_one_replaced(
    sender: tuple[SmtpSender, Clock], sandbox: SandboxProcess, http: ClientSession
) -> None:
    smtp, clock = sender
    await smtp.send(message())
    clock.now_s += IDLE_CHECK_S + 1  # checked with NOOP, still good
    await smtp.send(message())
    assert smtp.connections_opened == 1
    # The server goes away (an outage answers 421, closing the session): that send is retried
    # later by the dispatcher; the next one, once the server is back, opens a new connection.
    async with http.post(f"{sandbox.http_url}/_sandbox/outage/smtp") as answer:
        assert answer.status in (200, 204)
    try:
        with pytest.raises(RetriableSendError):
            await smtp.send(message())
    finally:
        async with http.delete(f"{sandbox.http_url}/_sandbox/outage/smtp") as answer:
            assert answer.status in (200, 204)
    clock.now_s += IDLE_CHECK_S + 1
    await smtp.send(message())
    assert smtp.connections_opened == 2  # a 421 closes the session (RFC 5321 3.8)
