"""Each HTTP adapter against an in-process aiohttp server: request shape, answers, errors."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from streams.providers.base import (
    OutboundMessage,
    PermanentSendError,
    RetriableSendError,
    SendResult,
)
from streams.providers.fcm import FcmSender
from streams.providers.http import create_client_session, retry_after_s
from streams.providers.meta import MetaSender
from streams.providers.sendgrid import SendGridSender
from streams.providers.twilio import TwilioSender
from streams.runtime import free_port
from streams.settings import ProviderSettings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ServerFactory = Callable[..., Awaitable[TestServer]]

EMAIL = OutboundMessage("n-1", "email", "ada@example.com", "Welcome", "Hello Ada")
SMS = OutboundMessage("n-2", "sms", "+15551234567", None, "Your code")
PUSH = OutboundMessage("n-3", "push", "device-token-1", "Shipped", "On its way")
WHATSAPP = OutboundMessage("n-4", "whatsapp", "+15557654321", None, "Paid, thanks")


class Recorder:
    """Keeps what the fake provider received, answers with `answer`."""

    def __init__(self, answer: Handler) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self._answer = answer

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path, dict(request.headers), await request.read()))
        return await self._answer(request)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    client = create_client_session(pool_size=10, timeout_s=0.5)
    yield client
    await client.close()


async def serve(aiohttp_server: ServerFactory, path: str, answer: Handler) -> tuple[str, Recorder]:
    recorder = Recorder(answer)
    app = web.Application()
    app.router.add_post(path, recorder.handle)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/"), recorder


def settings_for(base_url: str) -> ProviderSettings:
    return ProviderSettings(
        sendgrid_base_url=base_url,
        twilio_base_url=base_url,
        fcm_base_url=base_url,
        meta_base_url=base_url,
        twilio_account_sid="AC123",
        fcm_project="proj",
        meta_phone_number_id="555",
        sendgrid_api_key=SecretStr("test-sendgrid-key"),
        twilio_auth_token=SecretStr("test-twilio-token"),
        fcm_access_token=SecretStr("test-fcm-token"),
        meta_access_token=SecretStr("test-meta-token"),
    )


def fixed(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Handler:
    async def answer(request: web.Request) -> web.StreamResponse:
        if body is None:
            return web.Response(status=status, headers=headers)
        return web.json_response(body, status=status, headers=headers)

    return answer


async def test_sendgrid_posts_the_mail_send_shape_and_returns_the_message_id(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    base, recorder = await serve(
        aiohttp_server, "/v3/mail/send", fixed(202, headers={"X-Message-Id": "sg-1"})
    )
    sender = SendGridSender(session, settings_for(base))
    assert await sender.send(EMAIL) == SendResult("sendgrid", "sg-1")
    _path, headers, body = recorder.requests[0]
    assert headers["Authorization"] == "Bearer test-sendgrid-key"
    assert json.loads(body) == {
        "personalizations": [
            {"to": [{"email": "ada@example.com"}], "custom_args": {"notification_id": "n-1"}}
        ],
        "from": {"email": "notifications@tributary.test"},
        "subject": "Welcome",
        "content": [{"type": "text/plain", "value": "Hello Ada"}],
    }


async def test_twilio_posts_a_form_with_basic_auth_and_the_id_in_the_callback(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    base, recorder = await serve(
        aiohttp_server, "/2010-04-01/Accounts/AC123/Messages.json", fixed(201, {"sid": "SM9"})
    )
    sender = TwilioSender(session, settings_for(base))
    assert await sender.send(SMS) == SendResult("twilio", "SM9")
    _path, headers, body = recorder.requests[0]
    assert (
        headers["Authorization"] == "Basic " + base64.b64encode(b"AC123:test-twilio-token").decode()
    )
    form = dict(part.split("=", 1) for part in body.decode().split("&"))
    assert form["To"] == "%2B15551234567"
    assert form["Body"] == "Your+code"
    assert form["StatusCallback"].endswith("%3Fnotification_id%3Dn-2")


async def test_fcm_posts_the_v1_message_and_returns_its_name(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    name = "projects/proj/messages/m-7"
    base, recorder = await serve(
        aiohttp_server, "/v1/projects/proj/messages:send", fixed(200, {"name": name})
    )
    sender = FcmSender(session, settings_for(base))
    assert await sender.send(PUSH) == SendResult("fcm", name)
    _path, headers, body = recorder.requests[0]
    assert headers["Authorization"] == "Bearer test-fcm-token"
    assert json.loads(body) == {
        "message": {
            "token": "device-token-1",
            "notification": {"title": "Shipped", "body": "On its way"},
            "data": {"notification_id": "n-3"},
        }
    }


async def test_meta_posts_a_text_message_with_our_id_as_callback_data(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    base, recorder = await serve(
        aiohttp_server, "/v21.0/555/messages", fixed(200, {"messages": [{"id": "wamid.1"}]})
    )
    sender = MetaSender(session, settings_for(base))
    assert await sender.send(WHATSAPP) == SendResult("meta", "wamid.1")
    body = json.loads(recorder.requests[0][2])
    assert body == {
        "messaging_product": "whatsapp",
        "to": "+15557654321",
        "type": "text",
        "text": {"body": "Paid, thanks"},
        "biz_opaque_callback_data": "n-4",
    }


async def test_429_is_retriable_with_the_providers_retry_after(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    answer = fixed(429, {"message": "slow down"}, {"Retry-After": "7"})
    base, _ = await serve(aiohttp_server, "/v3/mail/send", answer)
    with pytest.raises(RetriableSendError, match="HTTP 429: slow down") as caught:
        await SendGridSender(session, settings_for(base)).send(EMAIL)
    assert caught.value.retry_after_s == 7.0
    assert caught.value.provider == "sendgrid"


async def test_5xx_is_retriable_without_a_hint(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    base, _ = await serve(aiohttp_server, "/v1/projects/proj/messages:send", fixed(503))
    with pytest.raises(RetriableSendError, match="HTTP 503") as caught:
        await FcmSender(session, settings_for(base)).send(PUSH)
    assert caught.value.retry_after_s is None


async def test_other_4xx_is_permanent_with_the_providers_error_text(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    answer = fixed(400, {"error": {"message": "invalid recipient"}})
    base, _ = await serve(aiohttp_server, "/v21.0/555/messages", answer)
    with pytest.raises(PermanentSendError, match="HTTP 400: invalid recipient"):
        await MetaSender(session, settings_for(base)).send(WHATSAPP)


async def test_a_provider_slower_than_the_timeout_is_retriable(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    release = asyncio.Event()

    async def stall(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response(status=202)

    base, _ = await serve(aiohttp_server, "/v3/mail/send", stall)
    try:
        with pytest.raises(RetriableSendError, match="timed out"):
            await SendGridSender(session, settings_for(base)).send(EMAIL)
    finally:
        release.set()


async def test_a_refused_connection_is_retriable(session: aiohttp.ClientSession) -> None:
    nobody = f"http://127.0.0.1:{free_port('127.0.0.1')}"
    with pytest.raises(RetriableSendError, match="ClientConnector"):
        await SendGridSender(session, settings_for(nobody)).send(EMAIL)


async def test_accepted_without_an_id_is_still_sent(
    aiohttp_server: ServerFactory, session: aiohttp.ClientSession
) -> None:
    base, _ = await serve(aiohttp_server, "/2010-04-01/Accounts/AC123/Messages.json", fixed(201))
    result = await TwilioSender(session, settings_for(base)).send(SMS)
    assert result == SendResult("twilio", "unknown")


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s("12", now) == 12.0
    assert retry_after_s("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_s("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_s("soon", now) is None
    assert retry_after_s(None, now) is None
