"""Inputs that used to answer 500: each is a 4xx problem now, naming what is wrong."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from api.app import create_app
from streams.providers.receipts import FORM
from streams.settings import Settings
from tests.integration.api.support import signed

Client = TestClient[Any, Any]


async def _problem(response: ClientResponse, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = await response.json()
    return body


@pytest.mark.parametrize("limit", ["²", "٣", "1e3", "-1", "0", "501"])
async def test_a_limit_that_is_no_ascii_integer_in_range_is_422(client: Client, limit: str) -> None:
    response = await client.get("/v1/users/u-1/notifications", params={"limit": limit})
    body = await _problem(response, 422)
    assert body["errors"][0]["field"] == "limit"


@pytest.mark.parametrize(
    # 2,000 levels: deeper than Python's recursion limit, within the URL length aiohttp takes.
    "raw",
    [b"[" * 2_000 + b"]" * 2_000, b'["x", "y"]', b"[1, 2, 3]", b"\xff\xfe"],
)
async def test_a_cursor_this_api_did_not_issue_is_422(client: Client, raw: bytes) -> None:
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    response = await client.get("/v1/users/u-1/notifications", params={"cursor": cursor})
    body = await _problem(response, 422)
    assert body["errors"][0]["field"] == "cursor"


async def test_a_stats_range_over_31_days_is_422(client: Client) -> None:
    params = {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:01Z"}
    body = await _problem(await client.get("/v1/stats/delivery", params=params), 422)
    assert body["errors"][0]["field"] == "from"
    params["to"] = "2026-02-01T00:00:00Z"
    assert (await client.get("/v1/stats/delivery", params=params)).status == 200


@pytest.mark.parametrize("timestamp", [10**20, -(10**12), 10**12])
async def test_huge_receipt_timestamps_are_422(
    client: Client, settings: Settings, timestamp: int
) -> None:
    events = [
        {
            "event": "delivered",
            "timestamp": timestamp,
            "sg_message_id": "sg-1.f.0",
            "notification_id": "n-1",
        }
    ]
    raw = json.dumps(events).encode()
    headers = signed(settings, raw, family="providers")
    response = await client.post("/v1/webhooks/providers/sendgrid", data=raw, headers=headers)
    body = await _problem(response, 422)
    assert body["errors"][0]["field"] == "[0].timestamp"

    meta = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "statuses": [
                                {
                                    "id": "wamid.1",
                                    "status": "delivered",
                                    "timestamp": timestamp,
                                    "biz_opaque_callback_data": "n-1",
                                }
                            ]
                        },
                    }
                ]
            }
        ],
    }
    raw = json.dumps(meta).encode()
    headers = signed(settings, raw, family="providers")
    response = await client.post("/v1/webhooks/providers/meta", data=raw, headers=headers)
    await _problem(response, 422)


async def test_non_ascii_signature_headers_are_401(
    client: Client, settings: Settings, aiohttp_client: Any
) -> None:
    raw = b"{}"
    headers = signed(settings, raw) | {"webhook-signature": "v1,ÿÿÿÿ"}
    response = await client.post("/v1/webhooks/orders", data=raw, headers=headers)
    assert (await _problem(response, 401))["header"] == "webhook-signature"

    form = f"MessageSid=SM{uuid.uuid4().hex}&MessageStatus=delivered".encode()
    path = "/v1/webhooks/providers/twilio?notification_id=n-1"
    twilio = {"X-Twilio-Signature": "ÿÿÿÿ", "Content-Type": FORM}
    response = await client.post(path, data=form, headers=twilio)
    assert (await _problem(response, 401))["header"] == "X-Twilio-Signature"

    secret = SecretStr(f"meta-app-secret-{uuid.uuid4().hex}")
    providers = settings.providers.model_copy(update={"meta_app_secret": secret})
    meta_client = await aiohttp_client(
        create_app(settings.model_copy(update={"providers": providers}))
    )
    response = await meta_client.post(
        "/v1/webhooks/providers/meta",
        data=b"{}",
        headers={"X-Hub-Signature-256": "sha256=ÿÿ", "Content-Type": "application/json"},
    )
    assert (await _problem(response, 401))["header"] == "X-Hub-Signature-256"


async def test_a_non_ascii_timestamp_header_is_401(client: Client, settings: Settings) -> None:
    raw = b"{}"
    digits = "".join(chr(0x0660 + int(d)) for d in str(int(time.time())))  # Arabic-Indic
    headers = signed(settings, raw) | {"webhook-timestamp": digits}
    response = await client.post("/v1/webhooks/orders", data=raw, headers=headers)
    assert (await _problem(response, 401))["header"] == "webhook-timestamp"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/orders/a%00b",
        "/v1/notifications/a%00b",
        "/v1/users/a%00b/notifications",
        "/v1/orders/" + "x" * 300,
    ],
)
async def test_ids_that_no_resource_can_have_are_404(client: Client, path: str) -> None:
    """A NUL byte (PostgreSQL refuses it in text) or an over-long id names nothing."""
    response = await client.get(path)
    if path.startswith("/v1/users/"):
        assert (await response.json())["items"] == []
    else:
        await _problem(response, 404)


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
async def test_stats_times_at_the_edges_of_the_calendar_are_422(client: Client, when: str) -> None:
    for name in ("from", "to"):
        response = await client.get("/v1/stats/delivery", params={name: when})
        body = await _problem(response, 422)
        assert body["errors"][0]["field"] in ("from", "to")
