"""The first vertical slice end to end: a signed webhook into the real API, through Kafka and the
real worker process, into PostgreSQL, and back out of the API and the worker's web view."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from api.app import create_app
from streams.settings import Settings
from tests.integration.api.support import order_webhook, post_order
from tests.integration.cli.support import cli
from tests.integration.worker_process import OPERATOR_HEADERS, WorkerProcess, eventually


@pytest.fixture
async def api(
    aiohttp_client: AiohttpClient, worker_settings: Settings, api_headers: dict[str, str]
) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(worker_settings), headers=api_headers)


async def _order_in_state(
    api: TestClient[Any, Any], worker: WorkerProcess, order_id: str, status: str
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await api.get(f"/v1/orders/{order_id}")
        if response.status != 200:
            return None
        view: dict[str, Any] = await response.json()
        return view if view["status"] == status else None

    return await eventually(probe, what=f"order {order_id} {status} via the API", worker=worker)


def _later(body: dict[str, Any], event_type: str, status: str, seconds: int) -> dict[str, Any]:
    order = body["order"] | {"status": status}
    occurred = f"2026-01-02T03:{4 + seconds // 60:02d}:{seconds % 60:02d}+00:00"
    return body | {"type": event_type, "occurred_at": occurred, "order": order}


async def test_a_signed_webhook_becomes_an_order_view(
    api: TestClient[Any, Any], worker: WorkerProcess, worker_settings: Settings
) -> None:
    order_id = f"ord-{uuid.uuid4().hex[:12]}"
    created = order_webhook(order_id)
    started_s = time.monotonic()
    response = await post_order(api, worker_settings, created)
    assert response.status == 202, await response.text()
    event_id = (await response.json())["event_id"]

    view = await _order_in_state(api, worker, order_id, "pending")
    print(f"webhook -> view in {time.monotonic() - started_s:.2f}s")
    assert view["last_event_id"] == event_id
    assert view["total_minor"] == created["order"]["total_minor"]
    assert view["item_count"] == 2

    paid = _later(created, "order.paid", "paid", 90)
    assert (await post_order(api, worker_settings, paid)).status == 202
    view = await _order_in_state(api, worker, order_id, "paid")
    assert view["last_event_type"] == "order.paid"


async def test_the_worker_serves_the_live_table_entry(
    api: TestClient[Any, Any], worker: WorkerProcess, worker_settings: Settings
) -> None:
    order_id = f"ord-{uuid.uuid4().hex[:12]}"
    assert (await post_order(api, worker_settings, order_webhook(order_id))).status == 202
    await _order_in_state(api, worker, order_id, "pending")

    async with aiohttp.ClientSession() as session:
        response = await session.get(
            f"{worker.web_url}/v1/tables/orders/{order_id}", headers=OPERATOR_HEADERS
        )
        assert response.status == 200, await response.text()
        entry = json.loads(await response.text())["value"]
    assert entry["order_id"] == order_id
    assert entry["status"] == "pending"


async def test_trace_follows_a_webhooks_correlation_id_to_its_view(
    api: TestClient[Any, Any], worker: WorkerProcess, worker_settings: Settings
) -> None:
    order_id = f"ord-{uuid.uuid4().hex[:12]}"
    correlation_id = f"cart-{uuid.uuid4().hex[:8]}"
    response = await post_order(
        api, worker_settings, order_webhook(order_id, correlation_id=correlation_id)
    )
    assert response.status == 202
    event_id = (await response.json())["event_id"]
    await _order_in_state(api, worker, order_id, "pending")

    traced = await cli(worker_settings, "trace", correlation_id)

    assert traced.code == 0, traced.stderr
    cause = traced.lines[0]
    assert (cause["topic"], cause["event_id"]) == ("orders.events", event_id)
    assert cause["request_id"] == response.headers["X-Request-Id"]  # joins the API's log
    [view] = [line for line in traced.lines if line.get("view") == "orders"]
    assert view["key"] == order_id
    assert view["row"]["last_event_id"] == event_id
    # Whatever else the order caused carries its correlation id, or a notification's id.
    for line in traced.lines[1:]:
        if "topic" in line and not line["topic"].startswith("analytics."):
            assert line["correlation_id"] in {correlation_id, line.get("notification_id")}
