"""Per channel: bounded concurrency, a breaker per provider, and failover to a secondary.

A channel sends through its primary provider while that provider's circuit lets calls through,
else through its secondary (if configured and its own circuit allows). With every route open
the send fails as retriable, so the notification waits on a retry topic instead of being lost,
with the time until the primary's probe as its Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import get_args

import aiohttp

from streams.providers.base import (
    ChannelName,
    ChannelSender,
    OutboundMessage,
    PermanentSendError,
    RetriableSendError,
    SendResult,
)
from streams.providers.circuit_breaker import BreakerPolicy, CircuitBreaker, Clock
from streams.providers.fcm import FcmSender
from streams.providers.meta import MetaSender
from streams.providers.sendgrid import SendGridSender
from streams.providers.smtp import SmtpSender
from streams.providers.twilio import TwilioSender
from streams.redaction import redact
from streams.settings import DispatchSettings, ProviderName, ProviderSettings

log = logging.getLogger(__name__)

CHANNELS: tuple[ChannelName, ...] = ("email", "sms", "push", "whatsapp")


@dataclass(frozen=True, slots=True)
class Route:
    sender: ChannelSender
    breaker: CircuitBreaker


class ChannelRoutes:
    """One channel's providers, tried in order, with at most `concurrency` sends in flight."""

    def __init__(self, routes: Sequence[Route], concurrency: int) -> None:
        if not routes:
            raise ValueError("a channel needs at least one provider")
        self.routes = tuple(routes)
        self._semaphore = asyncio.Semaphore(concurrency)

    async def send(self, message: OutboundMessage) -> SendResult:
        async with self._semaphore:
            for route in self.routes:
                if route.breaker.allow():
                    return await _through(route, message)
        primary = self.routes[0]
        retry_in_s = min(route.breaker.open_for_s() for route in self.routes)
        raise RetriableSendError(primary.sender.provider, "circuit open", retry_in_s or None)


def failure_reason(error: RetriableSendError, message: OutboundMessage) -> str:
    """The failure as operators see it (the breaker's last error): the provider's own text,
    without this message's recipient or any other address or number it happens to echo."""
    text = (
        error.reason.replace(message.recipient, "[recipient]")
        if message.recipient
        else error.reason
    )
    return redact(text) or ""


async def _through(route: Route, message: OutboundMessage) -> SendResult:
    try:
        result = await route.sender.send(message)
    except RetriableSendError as exc:
        route.breaker.record_failure(failure_reason(exc, message))
        raise
    except PermanentSendError:
        # The provider answered, and rejected only this message: it is up.
        route.breaker.record_success()
        raise
    except BaseException:
        # Cancelled (a stopping worker) or a bug: no verdict on the provider, but a half-open
        # circuit must get its probe back, or it would refuse every call from now on.
        route.breaker.release()
        raise
    route.breaker.record_success()
    return result


class ChannelSenders:
    """The dispatcher's one entry point: send a message on its channel."""

    def __init__(self, channels: Mapping[ChannelName, ChannelRoutes]) -> None:
        self.channels = dict(channels)

    def breakers(self) -> dict[str, CircuitBreaker]:
        """Each provider's breaker (one per provider, however many channels use it)."""
        return {
            route.sender.provider: route.breaker
            for channel in self.channels.values()
            for route in channel.routes
        }

    def reset(self, provider: str) -> bool:
        """Close `provider`'s breaker; False if this worker does not send through it."""
        breaker = self.breakers().get(provider)
        if breaker is None:
            return False
        breaker.reset()
        return True

    async def send(self, message: OutboundMessage) -> SendResult:
        channel = self.channels.get(message.channel)
        if channel is None:
            raise PermanentSendError(
                "none", f"no provider configured for channel {message.channel}"
            )
        return await channel.send(message)


def provider_senders(
    session: aiohttp.ClientSession, providers: ProviderSettings, timeout_s: float
) -> dict[str, ChannelSender]:
    """The senders of the providers whose credentials are set (credentials have no defaults);
    a channel left without any provider fails its sends permanently, saying so."""
    senders: dict[str, ChannelSender] = {"smtp": SmtpSender(providers, timeout_s)}
    if providers.sendgrid_api_key is not None:
        senders["sendgrid"] = SendGridSender(session, providers)
    if providers.twilio_auth_token is not None:
        senders["twilio"] = TwilioSender(session, providers)
    if providers.fcm_access_token is not None:
        senders["fcm"] = FcmSender(session, providers)
    if providers.meta_access_token is not None:
        senders["meta"] = MetaSender(session, providers)
    unset = sorted(set(get_args(ProviderName)) - set(senders))
    if unset:
        log.warning("no credentials set for %s: not sending through them", ", ".join(unset))
    return senders


def channel_providers(providers: ProviderSettings) -> dict[ChannelName, list[ProviderName]]:
    """Each channel's providers from the settings, primary first."""
    pairs: dict[ChannelName, tuple[ProviderName, ProviderName | None]] = {
        "email": (providers.email_primary, providers.email_secondary),
        "sms": (providers.sms_primary, providers.sms_secondary),
        "push": (providers.push_primary, providers.push_secondary),
        "whatsapp": (providers.whatsapp_primary, providers.whatsapp_secondary),
    }
    return {
        channel: [primary] + ([secondary] if secondary and secondary != primary else [])
        for channel, (primary, secondary) in pairs.items()
    }


def build_channel_senders(
    senders: Mapping[str, ChannelSender],
    providers: ProviderSettings,
    dispatch: DispatchSettings,
    clock: Clock | None = None,
) -> ChannelSenders:
    """One breaker per provider (shared if two channels used the same provider)."""
    breakers: dict[str, CircuitBreaker] = {}
    policy = BreakerPolicy.of(dispatch)

    def breaker(name: str) -> CircuitBreaker:
        if name not in breakers:
            breakers[name] = (
                CircuitBreaker(policy, clock) if clock is not None else CircuitBreaker(policy)
            )
        return breakers[name]

    channels = {
        channel: ChannelRoutes(
            [Route(senders[name], breaker(name)) for name in names if name in senders],
            dispatch.concurrency_per_channel,
        )
        for channel, names in channel_providers(providers).items()
        if any(name in senders for name in names)
    }
    return ChannelSenders(channels)
