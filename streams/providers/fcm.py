"""Push over an FCM-style HTTP v1 API (`messages:send`, 200 with `{"name": ".../<id>"}`).

FCM has no receipt webhook and no signature of its own: whatever relays its outcomes (an
analytics export) posts our plain shape (`streams.providers.receipts.plain_receipts`), signed
with Standard Webhooks.
"""

from __future__ import annotations

import aiohttp

from streams.providers.base import OutboundMessage, SendResult, credential
from streams.providers.http import HttpSender, body_field, message_id_or_unknown
from streams.settings import ProviderSettings

PROVIDER = "fcm"


class FcmSender(HttpSender):
    def __init__(self, session: aiohttp.ClientSession, settings: ProviderSettings) -> None:
        base = settings.fcm_base_url.rstrip("/")
        url = f"{base}/v1/projects/{settings.fcm_project}/messages:send"
        token = credential(settings.fcm_access_token, "providers.fcm_access_token")
        super().__init__(PROVIDER, session, url, {"Authorization": f"Bearer {token}"})

    def request_body(self, message: OutboundMessage) -> dict[str, object]:
        return {
            "message": {
                "token": message.recipient,
                "notification": {"title": message.subject or "", "body": message.body},
                "data": {"notification_id": message.notification_id},
            }
        }

    async def send(self, message: OutboundMessage) -> SendResult:
        _headers, body = await self._post(message, json_body=self.request_body(message))
        return SendResult(PROVIDER, message_id_or_unknown(body_field(body, "name")))
