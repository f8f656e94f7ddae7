"""Push over an FCM-style HTTP v1 API (`messages:send`, 200 with `{"name": ".../<id>"}`)."""

from __future__ import annotations

import aiohttp

from streams.providers.base import OutboundMessage, SendResult
from streams.providers.http import UNKNOWN_MESSAGE_ID, post
from streams.settings import ProviderSettings

PROVIDER = "fcm"


class FcmSender:
    def __init__(self, session: aiohttp.ClientSession, settings: ProviderSettings) -> None:
        self._session = session
        base = settings.fcm_base_url.rstrip("/")
        self._url = f"{base}/v1/projects/{settings.fcm_project}/messages:send"
        self._headers = {"Authorization": f"Bearer {settings.fcm_access_token.get_secret_value()}"}

    @property
    def provider(self) -> str:
        return PROVIDER

    def request_body(self, message: OutboundMessage) -> dict[str, object]:
        return {
            "message": {
                "token": message.recipient,
                "notification": {"title": message.subject or "", "body": message.body},
                "data": {"notification_id": message.notification_id},
            }
        }

    async def send(self, message: OutboundMessage) -> SendResult:
        _headers, body = await post(
            self._session,
            PROVIDER,
            self._url,
            headers=self._headers,
            json_body=self.request_body(message),
        )
        name = body.get("name") if isinstance(body, dict) else None
        return SendResult(PROVIDER, name if isinstance(name, str) and name else UNKNOWN_MESSAGE_ID)
