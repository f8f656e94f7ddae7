"""The sandbox's one behaviour, shared by its HTTP providers and its SMTP listener: take a send,
decide its outcome from the recipient, remember it, and queue the receipts a real provider would
post later. Provider outages (for circuit-breaker and Retry-After tests) are switched here too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from sandbox.idempotency import IdempotentAnswers
from sandbox.mailbox import Mailbox, ReceivedMessage
from sandbox.outcomes import BOUNCE_REASONS, Channel, Outcome, outcome_for
from sandbox.provider_requests import Send
from sandbox.receipts import Receipt, ReceiptBatcher
from streams.settings import SandboxSettings

PROVIDER_CHANNELS: Mapping[str, Channel] = {
    "sendgrid": Channel.EMAIL,
    "smtp": Channel.EMAIL,
    "twilio": Channel.SMS,
    "fcm": Channel.PUSH,
    "meta": Channel.WHATSAPP,
}
# A complaint comes after the delivery it complains about (a second, at least: SendGrid and Meta
# report times in whole seconds).
COMPLAINT_AFTER_S = 1.0
SPAM_REASON = "the recipient marked the message as spam"


@dataclass(frozen=True)
class Outage:
    """How a provider in outage answers every send: 503 by default, or 429 (or another 5xx),
    with `Retry-After` when `retry_after_s` is set. SMTP always answers 421."""

    status: int = 503
    retry_after_s: int | None = None


class Sandbox:
    def __init__(
        self,
        settings: SandboxSettings,
        batchers: Mapping[str, ReceiptBatcher],
        clock_s: Callable[[], float] = time.time,
    ) -> None:
        """`batchers` by provider; a provider without one posts no receipts (no secret set)."""
        self.settings = settings
        self.batchers = batchers
        self.clock_s = clock_s
        self.mailbox = Mailbox(settings.messages_max)
        self.outages: dict[str, Outage] = {}
        self.smtp_connections = 0
        self.answers = IdempotentAnswers(settings.messages_max)
        # Sends accepted for a notification already accepted before (not a failed attempt's
        # retry): each one reached the recipient twice.
        self.duplicates = 0

    def is_down(self, provider: str) -> bool:
        return provider in self.outages

    async def accept(
        self,
        provider: str,
        recipient: str,
        notification_id: str,
        message_id: str,
        subject: str | None,
        body: str,
    ) -> Outcome:
        """Record a (valid) send and queue its receipts; the caller answers by the outcome.
        A slow recipient holds the answer back for `slow_s` without holding anything else."""
        channel = PROVIDER_CHANNELS[provider]
        outcome = outcome_for(channel, recipient)
        if outcome is Outcome.SLOW:
            await asyncio.sleep(self.settings.slow_s)
        now_s = self.clock_s()
        if outcome is not Outcome.FAIL and any(
            earlier.outcome is not Outcome.FAIL
            for earlier in self.mailbox.for_notification(notification_id)
        ):
            self.duplicates += 1
        self.mailbox.add(
            ReceivedMessage(
                provider,
                channel,
                recipient,
                notification_id,
                message_id,
                outcome,
                now_s,
                subject,
                body,
            )
        )
        batcher = self.batchers.get(provider)
        if batcher is not None:
            for receipt in receipts_for(outcome, channel, notification_id, message_id, now_s):
                batcher.add(receipt)
        return outcome

    async def accept_all(self, provider: str, sends: Sequence[Send], message_id: str) -> bool:
        """Accept every send of one request, or (when any recipient fails) only record the
        failing ones: the request is then answered as failed, and the sender retries all of
        them. True when accepted. One send (the usual case) costs no extra task."""
        channel = PROVIDER_CHANNELS[provider]
        failing = [send for send in sends if outcome_for(channel, send.recipient) is Outcome.FAIL]
        chosen = failing or sends
        if len(chosen) == 1:
            [send] = chosen
            outcomes = [await self._accept_send(provider, send, message_id)]
        else:
            outcomes = await asyncio.gather(
                *(self._accept_send(provider, send, message_id) for send in chosen)
            )
        return Outcome.FAIL not in outcomes

    def _accept_send(self, provider: str, send: Send, message_id: str) -> Awaitable[Outcome]:
        return self.accept(
            provider, send.recipient, send.notification_id, message_id, send.subject, send.body
        )

    def health(self) -> dict[str, object]:
        return {
            "status": "ok",
            "outages": {
                provider: {"status": outage.status, "retry_after_s": outage.retry_after_s}
                for provider, outage in sorted(self.outages.items())
            },
            "received": self.mailbox.received,
            "duplicates": self.duplicates,
            "idempotent_replays": self.answers.replayed,
            "smtp_connections": self.smtp_connections,
            "receipts": {
                provider: {
                    "pending": batcher.pending,
                    "in_flight": batcher.stats.in_flight,
                    "posted": batcher.stats.posted_receipts,
                    "batches": batcher.stats.posted_batches,
                    "retries": batcher.stats.retries,
                    "dropped": batcher.stats.dropped,
                    "last_error": batcher.stats.last_error,
                }
                for provider, batcher in self.batchers.items()
            },
        }


def receipts_for(
    outcome: Outcome, channel: Channel, notification_id: str, message_id: str, now_s: float
) -> list[Receipt]:
    if outcome is Outcome.FAIL:
        return []
    if outcome is Outcome.BOUNCE:
        reason = BOUNCE_REASONS[channel]
        return [Receipt(notification_id, message_id, "bounced", now_s, channel, reason)]
    delivered = Receipt(notification_id, message_id, "delivered", now_s, channel)
    if outcome is Outcome.SPAM:
        complaint = Receipt(
            notification_id,
            message_id,
            "complained",
            now_s + COMPLAINT_AFTER_S,
            channel,
            SPAM_REASON,
        )
        return [delivered, complaint]
    return [delivered]
