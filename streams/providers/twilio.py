"""SMS over a Twilio-style HTTP API (form POST to `Messages.json`, 201 with `{"sid": ...}`)."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import aiohttp

from streams.providers.base import OutboundMessage, SendResult
from streams.providers.http import HttpSender, body_field, message_id_or_unknown
from streams.settings import ProviderSettings

PROVIDER = "twilio"


class TwilioSender(HttpSender):
    def __init__(self, session: aiohttp.ClientSession, settings: ProviderSettings) -> None:
        base = settings.twilio_base_url.rstrip("/")
        sid = settings.twilio_account_sid
        url = f"{base}/2010-04-01/Accounts/{sid}/Messages.json"
        credentials = f"{sid}:{settings.twilio_auth_token.get_secret_value()}".encode()
        headers = {"Authorization": f"Basic {base64.b64encode(credentials).decode()}"}
        super().__init__(PROVIDER, session, url, headers)
        self._from = settings.twilio_from
        self._callback = settings.twilio_status_callback_url

    def form(self, message: OutboundMessage) -> dict[str, str]:
        """Twilio has no custom fields: our id travels in the status callback URL's query."""
        separator = "&" if "?" in self._callback else "?"
        query = urlencode({"notification_id": message.notification_id})
        return {
            "To": message.recipient,
            "From": self._from,
            "Body": message.body,
            "StatusCallback": f"{self._callback}{separator}{query}",
        }

    async def send(self, message: OutboundMessage) -> SendResult:
        _headers, body = await self._post(form=self.form(message))
        return SendResult(PROVIDER, message_id_or_unknown(body_field(body, "sid")))
