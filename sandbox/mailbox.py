"""What the sandbox received, kept in memory so tests can ask "did it get my message, and how
often" (`GET /_sandbox/messages?notification_id=`). Bounded: the oldest are forgotten first."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sandbox.outcomes import Channel, Outcome

BODY_CHARS_KEPT = 1000


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    provider: str
    channel: Channel
    recipient: str
    notification_id: str
    provider_message_id: str
    outcome: Outcome
    received_at_s: float
    subject: str | None
    body: str

    def to_json(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "channel": self.channel.value,
            "recipient": self.recipient,
            "notification_id": self.notification_id,
            "provider_message_id": self.provider_message_id,
            "outcome": self.outcome.value,
            "received_at_s": self.received_at_s,
            "subject": self.subject,
            "body": self.body,
        }


class Mailbox:
    def __init__(self, max_messages: int) -> None:
        self.max_messages = max_messages
        self.received = 0
        self._order: deque[ReceivedMessage] = deque()
        self._by_notification: dict[str, list[ReceivedMessage]] = {}

    def __len__(self) -> int:
        return len(self._order)

    def add(self, message: ReceivedMessage) -> None:
        if len(message.body) > BODY_CHARS_KEPT:
            message = _truncated(message)
        self.received += 1
        self._order.append(message)
        self._by_notification.setdefault(message.notification_id, []).append(message)
        if len(self._order) > self.max_messages:
            self._forget(self._order.popleft())

    def for_notification(self, notification_id: str) -> list[ReceivedMessage]:
        return list(self._by_notification.get(notification_id, ()))

    def recent(self, limit: int) -> list[ReceivedMessage]:
        count = min(limit, len(self._order))
        return [self._order[-index] for index in range(count, 0, -1)]

    def _forget(self, oldest: ReceivedMessage) -> None:
        # FIFO: the oldest message overall is also the oldest of its notification.
        messages = self._by_notification[oldest.notification_id]
        messages.pop(0)
        if not messages:
            del self._by_notification[oldest.notification_id]


def _truncated(message: ReceivedMessage) -> ReceivedMessage:
    return ReceivedMessage(
        message.provider,
        message.channel,
        message.recipient,
        message.notification_id,
        message.provider_message_id,
        message.outcome,
        message.received_at_s,
        message.subject,
        message.body[:BODY_CHARS_KEPT],
    )
