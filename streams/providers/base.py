"""The one small interface every channel adapter implements, and the errors it may raise.

A sender's caller only needs to know whether a failed send may succeed later (a timeout, a 429,
a 5xx, a dropped connection: `RetriableSendError`, possibly with the provider's Retry-After) or
never will (another 4xx, an invalid recipient: `PermanentSendError`). Each adapter translates its
transport's errors into these two at its boundary, so retry planning and the circuit breaker stay
independent of HTTP, SMTP and every provider's quirks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import SecretStr

from streams.errors import ConfigurationError, PoisonError, RetriableError

ChannelName = Literal["email", "sms", "push", "whatsapp"]


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """What a provider needs to send one notification: rendered, for one recipient."""

    notification_id: str
    channel: ChannelName
    # An email address, an E.164 phone number or a push device token, as the channel needs.
    recipient: str
    subject: str | None
    body: str
    # The same for every try of one attempt (notification id and attempt): providers that honour
    # keys send a repeated try once. None: no key is sent.
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    provider: str
    provider_message_id: str


class RetriableSendError(RetriableError):
    """The provider may take the message later; `retry_after_s` is its own hint, if any."""

    def __init__(self, provider: str, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider = provider
        self.reason = reason
        self.retry_after_s = retry_after_s


class PermanentSendError(PoisonError):
    """The provider refused the message for good (a bad recipient, a malformed request)."""

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider = provider
        self.reason = reason


class ChannelSender(Protocol):
    """One provider's adapter. `send` returns once the provider accepted the message."""

    @property
    def provider(self) -> str: ...

    async def send(self, message: OutboundMessage) -> SendResult: ...

    async def close(self) -> None:
        """Release what the adapter holds of its own (SMTP connections); not a shared session."""
        ...


def credential(secret: SecretStr | None, setting: str) -> str:
    """A provider's credential, which has no default: `provider_senders` only builds the senders
    of providers whose credential is set, so this raises only for a caller that did not check."""
    if secret is None:
        raise ConfigurationError(f"{setting} is not set")
    return secret.get_secret_value()
