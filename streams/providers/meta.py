"""WhatsApp over a Meta Cloud-style HTTP API (`/{phone number id}/messages`)."""

from __future__ import annotations

import aiohttp

from streams.providers.base import OutboundMessage, SendResult
from streams.providers.http import UNKNOWN_MESSAGE_ID, post
from streams.settings import ProviderSettings

PROVIDER = "meta"
API_VERSION = "v21.0"


class MetaSender:
    def __init__(self, session: aiohttp.ClientSession, settings: ProviderSettings) -> None:
        self._session = session
        base = settings.meta_base_url.rstrip("/")
        self._url = f"{base}/{API_VERSION}/{settings.meta_phone_number_id}/messages"
        token = settings.meta_access_token.get_secret_value()
        self._headers = {"Authorization": f"Bearer {token}"}

    @property
    def provider(self) -> str:
        return PROVIDER

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
        _headers, body = await post(
            self._session,
            PROVIDER,
            self._url,
            headers=self._headers,
            json_body=self.request_body(message),
        )
        return SendResult(PROVIDER, _message_id(body) or UNKNOWN_MESSAGE_ID)


def _message_id(body: object) -> str | None:
    if not isinstance(body, dict):
        return None
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        found = messages[0].get("id")
        return found if isinstance(found, str) and found else None
    return None
