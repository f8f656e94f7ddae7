"""SMS over a Twilio-style HTTP API (form POST to `Messages.json`, 201 with `{"sid": ...}`)."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

import aiohttp

from streams.providers.base import OutboundMessage, SendResult
from streams.providers.http import UNKNOWN_MESSAGE_ID, post
from streams.settings import ProviderSettings

PROVIDER = "twilio"


class TwilioSender:
    def __init__(self, session: aiohttp.ClientSession, settings: ProviderSettings) -> None:
        self._session = session
        base = settings.twilio_base_url.rstrip("/")
        sid = settings.twilio_account_sid
        self._url = f"{base}/2010-04-01/Accounts/{sid}/Messages.json"
        credentials = f"{sid}:{settings.twilio_auth_token.get_secret_value()}".encode()
        self._headers = {"Authorization": f"Basic {base64.b64encode(credentials).decode()}"}
        self._from = settings.twilio_from
        self._callback = settings.twilio_status_callback_url

    @property
    def provider(self) -> str:
        return PROVIDER

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
        _headers, body = await post(
            self._session,
            PROVIDER,
            self._url,
            headers=self._headers,
            form=self.form(message),
        )
        sid = body.get("sid") if isinstance(body, dict) else None
        return SendResult(PROVIDER, sid if isinstance(sid, str) and sid else UNKNOWN_MESSAGE_ID)
