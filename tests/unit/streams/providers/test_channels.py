"""Per-channel composition: failover while the primary's circuit is open, concurrency bound."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from pydantic import SecretStr

from streams.providers.base import (
    OutboundMessage,
    PermanentSendError,
    RetriableSendError,
    SendResult,
)
from streams.providers.channels import (
    ChannelRoutes,
    ChannelSenders,
    Route,
    build_channel_senders,
    channel_providers,
    provider_senders,
)
from streams.providers.circuit_breaker import BreakerPolicy, BreakerState, CircuitBreaker
from streams.settings import DispatchSettings, ProviderSettings
from tests.unit.fakes import FakeClock

EMAIL = OutboundMessage("n-1", "email", "ada@example.com", "Hi", "Hello")
# Two failures open it, one probe closes it: the composition is under test, not the policy.
QUICK = BreakerPolicy(failure_threshold=2, min_requests=1, open_s=30.0, half_open_successes=1)


class FakeSender:
    """Fails with `error` while it is set, else accepts; counts calls and peak concurrency."""

    def __init__(self, provider: str, error: Exception | None = None) -> None:
        self._provider = provider
        self.error = error
        self.calls = 0
        self.in_flight = 0
        self.peak = 0
        self.gate: asyncio.Event | None = None

    @property
    def provider(self) -> str:
        return self._provider

    async def send(self, message: OutboundMessage) -> SendResult:
        self.calls += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.error is not None:
                raise self.error
            return SendResult(self._provider, f"{self._provider}-{self.calls}")
        finally:
            self.in_flight -= 1


def routes(
    primary: FakeSender, secondary: FakeSender | None, clock: FakeClock, concurrency: int = 8
) -> ChannelRoutes:
    chosen = [Route(primary, CircuitBreaker(QUICK, clock))]
    if secondary is not None:
        chosen.append(Route(secondary, CircuitBreaker(QUICK, clock)))
    return ChannelRoutes(chosen, concurrency)


async def test_the_primary_is_used_while_its_circuit_is_closed() -> None:
    primary, secondary = FakeSender("sendgrid"), FakeSender("smtp")
    channel = routes(primary, secondary, FakeClock())
    assert await channel.send(EMAIL) == SendResult("sendgrid", "sendgrid-1")
    assert secondary.calls == 0


async def test_failures_open_the_primary_and_the_channel_fails_over_then_back() -> None:
    clock = FakeClock()
    primary = FakeSender("sendgrid", RetriableSendError("sendgrid", "HTTP 503"))
    secondary = FakeSender("smtp")
    channel = routes(primary, secondary, clock)
    for _ in range(2):
        with pytest.raises(RetriableSendError):
            await channel.send(EMAIL)
    # Open now: the secondary takes the mail, the primary is not called.
    assert (await channel.send(EMAIL)).provider == "smtp"
    assert primary.calls == 2
    # After the open duration one probe goes to the primary; it is healthy again.
    primary.error = None
    clock.now_s += 30.0
    assert (await channel.send(EMAIL)).provider == "sendgrid"
    assert (await channel.send(EMAIL)).provider == "sendgrid"


async def test_without_a_secondary_an_open_circuit_is_retriable_with_its_remaining_time() -> None:
    clock = FakeClock()
    primary = FakeSender("twilio", RetriableSendError("twilio", "timed out"))
    channel = routes(primary, None, clock)
    for _ in range(2):
        with pytest.raises(RetriableSendError):
            await channel.send(EMAIL)
    clock.now_s += 10.0
    with pytest.raises(RetriableSendError, match="circuit open") as caught:
        await channel.send(EMAIL)
    assert caught.value.retry_after_s == 20.0
    assert primary.calls == 2


async def test_permanent_rejections_do_not_open_the_circuit() -> None:
    primary = FakeSender("sendgrid", PermanentSendError("sendgrid", "HTTP 400: bad recipient"))
    secondary = FakeSender("smtp")
    channel = routes(primary, secondary, FakeClock())
    for _ in range(5):
        with pytest.raises(PermanentSendError):
            await channel.send(EMAIL)
    assert (primary.calls, secondary.calls) == (5, 0)


async def test_sends_in_flight_are_bounded_per_channel() -> None:
    primary = FakeSender("fcm")
    primary.gate = asyncio.Event()
    channel = routes(primary, None, FakeClock(), concurrency=3)
    sends = [asyncio.ensure_future(channel.send(EMAIL)) for _ in range(10)]
    for _ in range(20):  # let every task run as far as it can
        await asyncio.sleep(0)
    assert (primary.peak, primary.in_flight) == (3, 3)
    primary.gate.set()
    results = await asyncio.gather(*sends)
    assert len(results) == 10
    assert primary.peak == 3


async def test_a_channel_without_providers_is_a_permanent_error() -> None:
    senders = ChannelSenders({})
    with pytest.raises(PermanentSendError, match="no provider configured for channel email"):
        await senders.send(EMAIL)


def test_channel_providers_come_from_settings_primary_first() -> None:
    assert channel_providers(ProviderSettings()) == {
        "email": ["sendgrid", "smtp"],
        "sms": ["twilio"],
        "push": ["fcm"],
        "whatsapp": ["meta"],
    }
    assert channel_providers(ProviderSettings(email_secondary=None))["email"] == ["sendgrid"]


async def test_built_senders_share_one_breaker_per_provider_and_use_the_settings() -> None:
    fakes = {name: FakeSender(name) for name in ("sendgrid", "smtp", "twilio", "fcm", "meta")}
    built = build_channel_senders(
        fakes,
        ProviderSettings(),
        DispatchSettings(breaker_failure_threshold=1, breaker_min_requests=1),
        FakeClock(),
    )
    fakes["sendgrid"].error = RetriableSendError("sendgrid", "HTTP 500")
    with pytest.raises(RetriableSendError):
        await built.send(EMAIL)
    assert (await built.send(EMAIL)).provider == "smtp"
    sms = OutboundMessage("n-2", "sms", "+15550000001", None, "x")
    assert (await built.send(sms)).provider == "twilio"


async def test_providers_without_credentials_are_not_sent_through() -> None:
    """Credentials have no defaults: an unset one leaves its provider out, never sends without
    it; a channel left with none fails permanently, and email falls to SMTP."""
    providers = ProviderSettings(twilio_auth_token=SecretStr("own-token"))
    session = aiohttp.ClientSession()
    try:
        senders = provider_senders(session, providers, 1.0)
    finally:
        await session.close()
    assert set(senders) == {"smtp", "twilio"}
    fakes = {name: FakeSender(name) for name in senders}
    built = build_channel_senders(fakes, providers, DispatchSettings())
    assert (await built.send(EMAIL)).provider == "smtp"
    push = OutboundMessage("n-3", "push", "token-1", None, "x")
    with pytest.raises(PermanentSendError, match="no provider configured for channel push"):
        await built.send(push)


async def test_the_last_error_keeps_the_providers_text_without_the_recipient() -> None:
    error = RetriableSendError(
        "sendgrid", "HTTP 503: cannot deliver to ada@example.com or +15550000002 now"
    )
    channel = routes(FakeSender("sendgrid", error), None, FakeClock())
    with pytest.raises(RetriableSendError):
        await channel.send(EMAIL)
    last_error = channel.routes[0].breaker.snapshot().last_error
    assert last_error == "HTTP 503: cannot deliver to [recipient] or [phone] now"


async def test_reset_closes_the_named_providers_breaker_only() -> None:
    fakes = {name: FakeSender(name) for name in ("sendgrid", "smtp", "twilio")}
    dispatch = DispatchSettings(breaker_failure_threshold=1, breaker_min_requests=1)
    built = build_channel_senders(fakes, ProviderSettings(), dispatch, FakeClock())
    fakes["sendgrid"].error = RetriableSendError("sendgrid", "HTTP 500")
    with pytest.raises(RetriableSendError):
        await built.send(EMAIL)
    assert built.breakers()["sendgrid"].state is BreakerState.OPEN
    assert built.reset("sendgrid") is True
    assert built.breakers()["sendgrid"].state is BreakerState.CLOSED
    assert built.reset("meta") is False  # no credentials here: no breaker to reset
