"""Order reads from PostgreSQL, health probes, metrics, and the problem answers of the router."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from api.app import create_app
from schemas.orders import OrderView
from streams.settings import Settings
from streams.stores.order_store import OrderStore
from tests.integration.api.support import kafka_unreachable, post_order

Client = TestClient[Any, Any]
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _view(order_id: str) -> OrderView:
    return OrderView(
        order_id=order_id,
        user_id="usr-1",
        status="paid",
        currency="EUR",
        total_minor=1200,
        item_count=2,
        last_event_id=uuid.uuid4(),
        last_event_type="order.paid",
        last_event_at=T0,
        created_at=T0,
        updated_at=T0,
    )


async def test_a_materialized_order_is_served(client: Client, settings: Settings) -> None:
    view = _view(f"ord-{uuid.uuid4().hex}")
    store = OrderStore.from_settings(settings.database)
    try:
        await store.upsert([view])
    finally:
        await store.close()
    response = await client.get(f"/v1/orders/{view.order_id}")
    assert response.status == 200
    body = await response.json()
    assert body["last_event_at"] == "2026-01-02T03:04:05Z"
    assert OrderView.model_validate(body) == view


async def test_an_unknown_order_is_a_404_problem(client: Client) -> None:
    response = await client.get(f"/v1/orders/ord-{uuid.uuid4().hex}")
    assert response.status == 404
    assert response.content_type == "application/problem+json"
    assert (await response.json(content_type=None))["status"] == 404


async def test_live_always_answers(client: Client) -> None:
    assert (await client.get("/health/live")).status == 200


async def test_ready_when_every_service_answers(client: Client) -> None:
    response = await client.get("/health/ready")
    assert response.status == 200
    body = await response.json()
    assert body["checks"] == {"kafka": "ok", "postgresql": "ok", "redis": "ok"}


async def test_not_ready_names_the_service_that_is_down(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    client = await aiohttp_client(create_app(kafka_unreachable(settings)))
    response = await client.get("/health/ready")
    assert response.status == 503
    assert response.content_type == "application/problem+json"
    checks = (await response.json(content_type=None))["checks"]
    assert checks["kafka"].startswith("down: ")
    assert (checks["postgresql"], checks["redis"]) == ("ok", "ok")


async def test_metrics_are_labelled_by_route_template(client: Client, settings: Settings) -> None:
    assert (await post_order(client, settings)).status == 202
    assert (await client.get("/v1/orders/ord-nowhere")).status == 404
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    assert 'route="/v1/orders/{id}"' in text
    assert "ord-nowhere" not in text
    assert 'route="/v1/webhooks/orders",status="202"' in text
    # Latency by route and status: a fast 404 must not hide inside the 200s' histogram.
    assert (
        'tributary_api_request_duration_seconds_count{method="GET",route="/v1/orders/{id}",'
        'status="404"} 1.0'
    ) in text
    topic = f"{settings.topic_prefix}orders.events"
    assert f'tributary_api_events_produced_total{{topic="{topic}"}} 1.0' in text


async def test_duplicates_are_counted(client: Client, settings: Settings) -> None:
    for _ in range(2):
        await post_order(client, settings, webhook_id="msg_counted")
    text = await (await client.get("/metrics")).text()
    assert 'tributary_api_webhook_duplicates_total{family="orders"} 1.0' in text


async def test_an_unknown_route_is_a_404_problem(client: Client) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status == 404
    assert response.content_type == "application/problem+json"


async def test_a_wrong_method_is_a_405_problem_with_allow(client: Client) -> None:
    response = await client.get("/v1/webhooks/orders")
    assert response.status == 405
    assert response.content_type == "application/problem+json"
    assert "POST" in response.headers["Allow"]


async def test_an_unexpected_error_is_a_500_problem_without_internals(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    api_headers: dict[str, str],
) -> None:
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("internal detail 7f3a")

    app = create_app(settings)
    app.router.add_get("/broken", broken)
    client = await aiohttp_client(app, headers=api_headers)
    response = await client.get("/broken")
    assert response.status == 500
    assert response.content_type == "application/problem+json"
    assert "7f3a" not in await response.text()
    assert any(
        record.exc_info and "7f3a" in str(record.exc_info[1]) for record in caplog.records
    ), "the traceback is logged"
    metrics = await (await client.get("/metrics")).text()
    assert 'route="/broken",status="500"' in metrics


async def test_logged_paths_are_escaped(
    aiohttp_client: AiohttpClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A percent-encoded newline in the path must not start a forged log line."""

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("boom")

    app = create_app(settings)
    app.router.add_get("/broken/{anything}", broken)
    client = await aiohttp_client(app)
    assert (await client.get("/broken/x%0a2026-01-01 INFO forged")).status == 500
    [logged] = [r.getMessage() for r in caplog.records if "unexpected error" in r.getMessage()]
    assert "\n" not in logged
    assert "x\\n2026-01-01 INFO forged" in logged
