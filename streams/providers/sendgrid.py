"""Email over a SendGrid-style HTTP API (`POST /v3/mail/send`, 202 with `X-Message-Id`)."""

from __future__ import annotations

import aiohttp

from streams.providers.base import OutboundMessage, SendResult
from streams.providers.http import HttpSender, message_id_or_unknown
from streams.settings import ProviderSettings

PROVIDER = "sendgrid"


class SendGridSender(HttpSender):
    def __init__(self, session: aiohttp.ClientSession, settings: ProviderSettings) -> None:
        url = f"{settings.sendgrid_base_url.rstrip('/')}/v3/mail/send"
        token = settings.sendgrid_api_key.get_secret_value()
        super().__init__(PROVIDER, session, url, {"Authorization": f"Bearer {token}"})
        self._from = settings.email_from

    def request_body(self, message: OutboundMessage) -> dict[str, object]:
        """Our notification id rides in `custom_args`, which SendGrid echoes in its events."""
        return {
            "personalizations": [
                {
                    "to": [{"email": message.recipient}],
                    "custom_args": {"notification_id": message.notification_id},
                }
            ],
            "from": {"email": self._from},
            "subject": message.subject or "",
            "content": [{"type": "text/plain", "value": message.body}],
        }

    async def send(self, message: OutboundMessage) -> SendResult:
        headers, _body = await self._post(json_body=self.request_body(message))
        return SendResult(PROVIDER, message_id_or_unknown(headers.get("X-Message-Id")))
