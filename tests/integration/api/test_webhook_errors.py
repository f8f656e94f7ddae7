"""Every error answer of the ingest endpoint, and that none of them produced anything."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient
from redis.asyncio import Redis

from api.app import create_app
from api.signature import sign
from streams.settings import Settings
from streams.stores.webhook_ledger import Claim
from tests.integration.api.support import (
    ORDERS_PATH,
    kafka_unreachable,
    order_webhook,
    orders_records,
    post_order,
    redis_unreachable,
    signed,
    webhook_ledger,
)

Client = TestClient[Any, Any]
OTHER_SECRET = "whsec_" + base64.b64encode(b"not the configured secret").decode()


async def _problem(response: ClientResponse, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = await response.json(content_type=None)
    assert body["status"] == status
    assert body["instance"] == ORDERS_PATH
    return body


async def _nothing_produced(settings: Settings) -> None:
    assert await orders_records(settings) == []


def _raw(body: dict[str, Any] | None = None) -> bytes:
    return json.dumps(body or order_webhook()).encode()


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
async def test_a_missing_signature_header_is_401_naming_it(
    client: Client, settings: Settings, header: str
) -> None:
    raw = _raw()
    headers = signed(settings, raw)
    del headers[header]
    response = await client.post(ORDERS_PATH, data=raw, headers=headers)
    assert (await _problem(response, 401))["header"] == header
    await _nothing_produced(settings)


async def test_a_signature_by_another_secret_is_401(client: Client, settings: Settings) -> None:
    raw = _raw()
    now_s = int(time.time())
    headers = signed(settings, raw, "msg_forged", now_s)
    headers["webhook-signature"] = sign(OTHER_SECRET, "msg_forged", now_s, raw)
    response = await client.post(ORDERS_PATH, data=raw, headers=headers)
    assert (await _problem(response, 401))["header"] == "webhook-signature"
    await _nothing_produced(settings)


async def test_a_body_changed_after_signing_is_401(client: Client, settings: Settings) -> None:
    raw = _raw()
    headers = signed(settings, raw)
    response = await client.post(ORDERS_PATH, data=raw.replace(b"1200", b"1"), headers=headers)
    assert (await _problem(response, 401))["header"] == "webhook-signature"


@pytest.mark.parametrize("skew_s", [-3600, 3600])
async def test_a_stale_or_future_timestamp_is_401(
    client: Client, settings: Settings, skew_s: int
) -> None:
    raw = _raw()
    headers = signed(settings, raw, timestamp_s=int(time.time()) + skew_s)
    response = await client.post(ORDERS_PATH, data=raw, headers=headers)
    assert (await _problem(response, 401))["header"] == "webhook-timestamp"
    await _nothing_produced(settings)


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2, 3]", b"\xff\xfe"])
async def test_a_signed_body_that_is_not_a_json_object_is_400(
    client: Client, settings: Settings, raw: bytes
) -> None:
    response = await client.post(ORDERS_PATH, data=raw, headers=signed(settings, raw))
    await _problem(response, 400)
    await _nothing_produced(settings)


async def test_a_contract_violation_is_422_listing_every_field(
    client: Client, settings: Settings
) -> None:
    body = order_webhook(type="order.exploded")
    body["order"]["currency"] = "ZZZ"
    body["order"]["items"][0]["quantity"] = 0
    del body["occurred_at"]
    response = await post_order(client, settings, body)
    problem = await _problem(response, 422)
    fields = {error["field"] for error in problem["errors"]}
    assert fields == {"type", "occurred_at", "order.currency", "order.items.0.quantity"}
    assert all(error["message"] for error in problem["errors"])
    await _nothing_produced(settings)


async def test_a_body_over_the_limit_is_413_before_the_signature_is_checked(
    client: Client, settings: Settings
) -> None:
    raw = b" " * (settings.api.max_body_bytes + 1)
    response = await client.post(ORDERS_PATH, data=raw, headers={"webhook-id": "unsigned"})
    await _problem(response, 413)


async def test_an_oversized_chunked_body_without_length_is_413(
    client: Client, settings: Settings
) -> None:
    chunk = b" " * 65536

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(settings.api.max_body_bytes // len(chunk) + 2):
            yield chunk

    response = await client.post(ORDERS_PATH, data=chunks(), headers=signed(settings, b""))
    await _problem(response, 413)


async def test_a_declared_non_json_body_is_415(client: Client, settings: Settings) -> None:
    raw = _raw()
    headers = signed(settings, raw) | {"Content-Type": "text/plain"}
    response = await client.post(ORDERS_PATH, data=raw, headers=headers)
    await _problem(response, 415)
    await _nothing_produced(settings)


async def test_the_signature_is_checked_before_the_json(client: Client, settings: Settings) -> None:
    raw = b"{not json"
    headers = signed(settings, raw) | {"webhook-signature": sign(OTHER_SECRET, "m", 1, raw)}
    response = await client.post(ORDERS_PATH, data=raw, headers=headers)
    await _problem(response, 401)


async def test_no_secret_configured_is_503_misconfigured(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    raw = _raw()
    headers = signed(settings, raw)
    webhook = settings.webhook.model_copy(update={"secret_orders": None})
    client = await aiohttp_client(create_app(settings.model_copy(update={"webhook": webhook})))
    response = await client.post(ORDERS_PATH, data=raw, headers=headers)
    problem = await _problem(response, 503)
    assert problem["type"].endswith(":misconfigured")
    assert response.headers["Retry-After"] == str(settings.api.retry_after_s)


async def test_kafka_unreachable_is_503_and_releases_the_claim_for_the_retry(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    body = order_webhook()
    down = await aiohttp_client(create_app(kafka_unreachable(settings)))
    response = await post_order(down, settings, body, webhook_id="msg_retry")
    problem = await _problem(response, 503)
    assert problem["service"] == "kafka"
    assert response.headers["Retry-After"] == str(settings.api.retry_after_s)

    ledger = webhook_ledger(settings)
    try:
        redis: Redis = Redis.from_url(settings.redis.url.get_secret_value())
        assert await redis.exists(ledger.key("orders", "msg_retry")) == 0
        await redis.aclose()
    finally:
        await ledger.close()

    # A claim left behind would make this copy wait, then answer 409, instead of producing.
    webhook = settings.webhook.model_copy(update={"dedupe_wait_s": 0.5})
    healthy = await aiohttp_client(create_app(settings.model_copy(update={"webhook": webhook})))
    retry = await post_order(healthy, settings, body, webhook_id="msg_retry")
    assert retry.status == 202
    assert len(await orders_records(settings)) == 1


async def test_redis_unreachable_is_503_and_nothing_is_produced(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    client = await aiohttp_client(create_app(redis_unreachable(settings)))
    response = await post_order(client, settings)
    assert (await _problem(response, 503))["service"] == "redis"
    await _nothing_produced(settings)


async def test_a_copy_still_being_delivered_elsewhere_is_409(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    ledger = webhook_ledger(settings)
    try:
        claim = await ledger.claim("orders", "msg_slow")
        assert isinstance(claim, Claim)
        webhook = settings.webhook.model_copy(update={"dedupe_wait_s": 0.3})
        client = await aiohttp_client(create_app(settings.model_copy(update={"webhook": webhook})))
        response = await post_order(client, settings, webhook_id="msg_slow")
        problem = await _problem(response, 409)
        assert problem["detail"] == "delivery in progress, retry later"
        assert response.headers["Retry-After"] == str(settings.api.retry_after_s)
        await ledger.release(claim)
    finally:
        await ledger.close()
    await _nothing_produced(settings)
