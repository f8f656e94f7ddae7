"""WhatsApp over a Meta Cloud-style HTTP API (`/{phone number id}/messages`)."""

from __future__ import annotations

import aiohttp

from streams.providers.base import OutboundMessage, SendResult
from streams.providers.http import HttpSender, body_field, message_id_or_unknown
from streams.settings import ProviderSettings

PROVIDER = "meta"
API_VERSION = "v21.0"


class MetaSender(HttpSender):
    def __init__(self, session: aiohttp.ClientSession, settings: ProviderSettings) -> None:
        base = settings.meta_base_url.rstrip("/")
        url = f"{base}/{API_VERSION}/{settings.meta_phone_number_id}/messages"
        token = settings.meta_access_token.get_secret_value()
        super().__init__(PROVIDER, session, url, {"Authorization": f"Bearer {token}"})

    def request_body(self, message: OutboundMessage) -> dict[str, object]:
        """`biz_opaque_callback_data` is echoed in Meta's status webhooks: our id goes there."""
        return {
            "messaging_product": "whatsapp",
            "to": message.recipient,
            "type": "text",
            "text": {"body": message.body},
            "biz_opaque_callback_data": message.notification_id,
        }

    async def send(self, message: OutboundMessage) -> SendResult:
        _headers, body = await self._post(json_body=self.request_body(message))
        return SendResult(PROVIDER, message_id_or_unknown(_message_id(body)))


def _message_id(body: object) -> object:
    """`messages[0].id` of the answer, if it has that shape."""
    messages = body_field(body, "messages")
    return body_field(messages[0], "id") if isinstance(messages, list) and messages else None
