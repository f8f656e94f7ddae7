"""Playing the upstream sender, and reading back what really reached Kafka."""

from __future__ import annotations

import json
import socket
import time
import uuid
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from aiokafka import ConsumerRecord
from pydantic import SecretStr

from api.families import BY_NAME
from api.signature import signed_headers
from schemas.orders import OrderEvent
from streams.kafka.wire import decode
from streams.settings import Settings
from streams.stores.webhook_ledger import WebhookLedger
from tests.integration.kafka_io import records_to_end, topic_catalog

ORDERS_PATH = "/v1/webhooks/orders"


def order_webhook(order_id: str | None = None, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "order.created",
        "occurred_at": "2026-01-02T03:04:05+00:00",
        "order": {
            "id": order_id or f"ord-{uuid.uuid4().hex[:12]}",
            "user_id": "usr-1",
            "status": "pending",
            "currency": "EUR",
            "total_minor": 1200,
            "items": [{"sku": "sku-1", "quantity": 2, "unit_price_minor": 600}],
        },
    }
    return body | changes


def signed(
    settings: Settings,
    body: bytes,
    webhook_id: str | None = None,
    timestamp_s: int | None = None,
    family: str = "orders",
    content_type: str = "application/json",
) -> dict[str, str]:
    secret = settings.webhook.secret_for(family)
    assert secret is not None, "the settings fixture configures webhook secrets"
    headers = signed_headers(
        secret.get_secret_value(),
        webhook_id or f"msg_{uuid.uuid4().hex}",
        int(time.time()) if timestamp_s is None else timestamp_s,
        body,
    )
    return headers | {"Content-Type": content_type}


async def post_order(
    client: TestClient[Any, Any],
    settings: Settings,
    body: dict[str, Any] | None = None,
    webhook_id: str | None = None,
) -> ClientResponse:
    raw = json.dumps(body or order_webhook()).encode()
    return await client.post(ORDERS_PATH, data=raw, headers=signed(settings, raw, webhook_id))


async def post_webhook(
    client: TestClient[Any, Any],
    settings: Settings,
    family: str,
    body: dict[str, Any],
    webhook_id: str | None = None,
) -> ClientResponse:
    raw = json.dumps(body).encode()
    headers = signed(settings, raw, webhook_id, family=family)
    return await client.post(BY_NAME[family].path, data=raw, headers=headers)


async def orders_records(settings: Settings) -> list[ConsumerRecord[bytes, bytes]]:
    return await topic_records(settings, "orders.events")


async def topic_records(settings: Settings, base_topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on one of the test's topics so far: the API answers only after the broker
    acknowledged, so all is already there."""
    return await records_to_end(settings, topic_catalog(settings).for_topic(base_topic).name)


def decoded(record: ConsumerRecord[bytes, bytes]) -> OrderEvent:
    return decode(record.value, OrderEvent)


def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def kafka_unreachable(settings: Settings) -> Settings:
    kafka = settings.kafka.model_copy(
        update={"bootstrap": f"127.0.0.1:{closed_port()}", "delivery_timeout_s": 2.0}
    )
    return settings.model_copy(update={"kafka": kafka})


def webhook_ledger(settings: Settings) -> WebhookLedger:
    """A ledger on the same Redis keys as the API's built from `settings`."""
    return WebhookLedger.from_settings(
        settings.redis,
        settings.webhook,
        topic_prefix=settings.topic_prefix,
        delivery_timeout_s=settings.kafka.delivery_timeout_s,
    )


def redis_unreachable(settings: Settings) -> Settings:
    redis = settings.redis.model_copy(
        update={"url": SecretStr(f"redis://127.0.0.1:{closed_port()}/0"), "socket_timeout_s": 1.0}
    )
    return settings.model_copy(update={"redis": redis})
