"""Request builders for the four HTTP providers, as the dispatch adapters send them."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import ClientResponse, ClientSession, encode_basic_auth

BEARER = {"Authorization": "Bearer sandbox-test-key"}
ACCOUNT_SID = "ACtest0000000000000000000000000000"
AUTH_TOKEN = "sandbox-token"


def new_id() -> str:
    return f"ntf-{uuid.uuid4().hex}"


async def send_sendgrid(
    http: ClientSession,
    base: str,
    to: str,
    notification_id: str,
    *,
    headers: dict[str, str] = BEARER,
    **changes: Any,
) -> ClientResponse:
    body = {
        "personalizations": [
            {"to": [{"email": to}], "custom_args": {"notification_id": notification_id}}
        ],
        "from": {"email": "notifications@tributary.test"},
        "subject": "Welcome",
        "content": [{"type": "text/plain", "value": "Hello"}],
    } | changes
    async with http.post(f"{base}/v3/mail/send", json=body, headers=headers) as response:
        await response.read()
        return response


async def send_twilio(
    http: ClientSession,
    base: str,
    to: str,
    notification_id: str,
    *,
    password: str = AUTH_TOKEN,
    account_sid: str = ACCOUNT_SID,
) -> ClientResponse:
    form = {
        "To": to,
        "From": "+15550000000",
        "Body": "Your order shipped",
        "StatusCallback": f"http://127.0.0.1:8080/unused?notification_id={notification_id}",
    }
    async with http.post(
        f"{base}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        data=form,
        headers={"Authorization": encode_basic_auth(account_sid, password)},
    ) as response:
        await response.read()
        return response


async def send_fcm(
    http: ClientSession, base: str, token: str, notification_id: str
) -> ClientResponse:
    body = {
        "message": {
            "token": token,
            "notification": {"title": "Shipped", "body": "On its way"},
            "data": {"notification_id": notification_id},
        }
    }
    async with http.post(
        f"{base}/v1/projects/tributary-test/messages:send", json=body, headers=BEARER
    ) as response:
        await response.read()
        return response


async def send_meta(
    http: ClientSession, base: str, to: str, notification_id: str
) -> ClientResponse:
    body = {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "text",
        "text": {"body": "Paid, thank you"},
        "biz_opaque_callback_data": notification_id,
    }
    async with http.post(
        f"{base}/v21.0/1234567890/messages", json=body, headers=BEARER
    ) as response:
        await response.read()
        return response
