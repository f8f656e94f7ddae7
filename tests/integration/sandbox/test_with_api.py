"""The sandbox against the real ingest API: its signed receipt batches are accepted by
`POST /v1/webhooks/providers/{provider}` and land on `notifications.receipts` in Kafka, one record
per receipt, keyed by notification id."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from api.app import create_app
from schemas.notifications import NotificationReceiptEvent
from streams.kafka.wire import decode
from streams.settings import Settings
from tests.integration.api.support import topic_records
from tests.integration.sandbox.support import new_id, send_sendgrid, send_twilio
from tests.integration.sandbox_process import make_sandbox_settings, running_sandbox

DEADLINE_S = 30.0


async def _receipts(
    settings: Settings, ids: set[str], count: int
) -> list[NotificationReceiptEvent]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        records = await topic_records(settings, "notifications.receipts")
        events = [
            decode(record.value, NotificationReceiptEvent)
            for record in records
            if record.key is not None and record.key.decode() in ids
        ]
        if len(events) >= count:
            return events
        if time.monotonic() > deadline:
            pytest.fail(f"{count} receipts on notifications.receipts: only {len(events)}")
        await asyncio.sleep(0.2)


async def test_receipts_reach_kafka_through_the_api(
    settings: Settings, aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    # The API and the sandbox share the providers' secret; the API's address is known only
    # once it listens, so the sandbox's settings are made after it.
    with_secret = make_sandbox_settings(settings, "http://127.0.0.1:9")
    client: TestClient[Any, Any] = await aiohttp_client(create_app(with_secret))
    api_url = str(client.make_url("")).rstrip("/")
    sandbox_settings = make_sandbox_settings(with_secret, api_url)
    delivered, bounced, spam = new_id(), new_id(), new_id()
    with running_sandbox(sandbox_settings, tmp_path / "sandbox.log") as sandbox:
        async with ClientSession() as http:
            answer = await send_sendgrid(http, sandbox.http_url, "ada@example.com", delivered)
            assert answer.status == 202
            assert (
                await send_twilio(http, sandbox.http_url, "+15550100001", bounced)
            ).status == 201
            assert (await send_sendgrid(http, sandbox.http_url, "cy@spam.test", spam)).status == 202
        events = await _receipts(sandbox_settings, {delivered, bounced, spam}, count=4)
    by_id: dict[str, list[tuple[str, str, str | None]]] = {}
    for event in events:
        receipt = event.payload
        by_id.setdefault(receipt.notification_id, []).append(
            (receipt.provider, receipt.state, receipt.channel)
        )
    assert by_id[delivered] == [("sendgrid", "delivered", "email")]
    assert by_id[bounced] == [("twilio", "bounced", "sms")]
    assert sorted(by_id[spam]) == [
        ("sendgrid", "complained", "email"),
        ("sendgrid", "delivered", "email"),
    ]
    bounce = next(e for e in events if e.payload.notification_id == bounced)
    assert bounce.payload.reason
