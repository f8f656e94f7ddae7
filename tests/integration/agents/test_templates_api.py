"""Templates as data on a real worker: the files are loaded into the empty compacted topic; an
operator adds a version through the API, previews and activates it, and the next notification
routed renders with it; a version that does not render its sample is refused at activation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel
from pytest_aiohttp import AiohttpClient

from api.app import create_app
from schemas.notifications import NotificationDispatch, NotificationDispatchEvent
from schemas.orders import OrderEvent
from schemas.templates import TemplateEvent
from schemas.users import UserEvent
from streams.kafka.wire import decode, encode
from streams.settings import Settings
from tests.integration.kafka_io import records_to_end, topic_catalog
from tests.integration.worker_process import WorkerProcess, eventually

Client = TestClient[Any, Any]
PROBLEM = "application/problem+json"
TEMPLATE = "order-confirmation"


@pytest.fixture
async def api(
    aiohttp_client: AiohttpClient, worker_settings: Settings, api_headers: dict[str, str]
) -> Client:
    return await aiohttp_client(create_app(worker_settings), headers=api_headers)


def _envelope(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "event_id": uuid.uuid4(),
        "event_type": event_type,
        "occurred_at": now,
        "ingested_at": now,
        "source": "test",
        "correlation_id": "c",
        "payload": payload,
    }


async def _send(
    producer: AIOKafkaProducer, settings: Settings, base: str, key: str, event: BaseModel
) -> None:
    topic = topic_catalog(settings).for_topic(base).name
    await producer.send_and_wait(topic, encode(event), key=key.encode())


async def order_paid(producer: AIOKafkaProducer, settings: Settings, user_id: str) -> str:
    """A new user, then a paid order of theirs; the order id."""
    user = UserEvent.model_validate(
        _envelope(
            "user.created",
            {
                "user_id": user_id,
                "email": f"{user_id}@example.com",
                "locale": "en",
                "time_zone": "UTC",
            },
        )
    )
    await _send(producer, settings, "users.events", user_id, user)
    order_id = f"o-{uuid.uuid4().hex[:10]}"
    order = {
        "id": order_id,
        "user_id": user_id,
        "status": "paid",
        "currency": "EUR",
        "total_minor": 4998,
        "items": [{"sku": "BOOK-1", "quantity": 2, "unit_price_minor": 2499}],
    }
    await _send(
        producer,
        settings,
        "orders.events",
        order_id,
        OrderEvent.model_validate(_envelope("order.paid", order)),
    )
    return order_id


async def email_to(settings: Settings, user_id: str, worker: WorkerProcess) -> NotificationDispatch:
    topic = topic_catalog(settings).for_topic("notifications.dispatch").name

    async def probe() -> NotificationDispatch | None:
        for record in await records_to_end(settings, topic):
            dispatch = decode(record.value, NotificationDispatchEvent).payload
            mine = dispatch.user_id == user_id and dispatch.template == TEMPLATE
            if mine and dispatch.channel == "email":
                return dispatch
        return None

    return await eventually(probe, what=f"the {TEMPLATE} email to {user_id}", worker=worker)


async def template_named(api: Client, name: str, worker: WorkerProcess) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await api.get(f"/v1/templates/{name}")
        if response.status == 404:
            return None
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    return await eventually(probe, what=f"template {name} loaded", worker=worker)


async def test_the_files_are_loaded_once_as_active_first_versions(
    worker: WorkerProcess, worker_settings: Settings, api: Client
) -> None:
    body = await template_named(api, TEMPLATE, worker)
    active = {(v["locale"], v["channel"]) for v in body["active"]}
    assert active == {("en", None), ("en", "sms"), ("en", "whatsapp"), ("fr", None)}
    listing = await (await api.get("/v1/templates")).json()
    assert {"welcome", "password-reset", TEMPLATE} <= {t["name"] for t in listing["items"]}
    topic = topic_catalog(worker_settings).templates.name
    records = await records_to_end(worker_settings, topic)
    keys = [r.key for r in records]
    assert len(keys) == len(set(keys))  # loaded once, whoever asked first
    assert all(decode(r.value, TemplateEvent).payload.active for r in records)


async def test_a_version_created_previewed_activated_is_used_by_the_next_notification(
    worker: WorkerProcess, producer: AIOKafkaProducer, worker_settings: Settings, api: Client
) -> None:
    await template_named(api, TEMPLATE, worker)
    new = {
        "locale": "en",
        "subject": "Paid: {{ order_id }}",
        "body": "Order {{ order_id }}: {{ total_minor|money(currency) }} received. (v-next)",
    }
    response = await api.post(f"/v1/templates/{TEMPLATE}/versions", json=new)
    assert response.status == 201, await response.text()
    created = await response.json()
    number = created["version"]
    assert (created["active"], response.headers["Location"]) == (
        False,
        f"/v1/templates/{TEMPLATE}/versions/{number}",
    )
    assert created["sample"]["currency"] == "EUR"  # kept from the version it will replace

    # Saved, inactive: the next notification still renders the active one.
    first_user = f"u-{uuid.uuid4().hex[:10]}"
    await order_paid(producer, worker_settings, first_user)
    assert "(v-next)" not in (await email_to(worker_settings, first_user, worker)).body

    response = await api.post(f"/v1/templates/{TEMPLATE}/preview", json={"version": number})
    assert response.status == 200, await response.text()
    preview = await response.json()
    assert preview["subject"] == "Paid: ord_1001"
    assert preview["body"] == "Order ord_1001: €42.00 received. (v-next)"

    response = await api.post(f"/v1/templates/{TEMPLATE}/versions/{number}/activate")
    assert response.status == 200, await response.text()
    written = (await response.json())["written"]
    assert [w["active"] for w in written] == [True, False]  # it, and the one it replaces

    user = f"u-{uuid.uuid4().hex[:10]}"
    order_id = await order_paid(producer, worker_settings, user)
    email = await email_to(worker_settings, user, worker)
    assert email.subject == f"Paid: {order_id}"
    assert email.body == f"Order {order_id}: €49.98 received. (v-next)"

    body = await (await api.get(f"/v1/templates/{TEMPLATE}")).json()
    english = [v for v in body["active"] if (v["locale"], v["channel"]) == ("en", None)]
    assert [v["version"] for v in english] == [number]


async def test_a_version_that_does_not_render_cannot_be_activated(
    worker: WorkerProcess, api: Client
) -> None:
    await template_named(api, "welcome", worker)
    broken = {"locale": "en", "subject": "Hi", "body": "Welcome!\nYour code: {{ code }}"}
    response = await api.post("/v1/templates/welcome/versions", json=broken)
    assert response.status == 201, await response.text()
    number = (await response.json())["version"]

    response = await api.post("/v1/templates/welcome/preview", json={"version": number})
    assert response.status == 422
    assert (await response.json())["errors"] == [
        {"field": "body", "line": 2, "message": "UndefinedError: 'code' is undefined"}
    ]
    response = await api.post(f"/v1/templates/welcome/versions/{number}/activate")
    assert response.status == 422
    assert response.content_type == PROBLEM
    error = (await response.json())["errors"][0]
    assert (error["field"], error["line"]) == ("body", 2)

    syntax = {"locale": "en", "body": "Welcome\n\n{% if %}"}
    response = await api.post("/v1/templates/welcome/versions", json=syntax)
    number = (await response.json())["version"]
    response = await api.post(f"/v1/templates/welcome/versions/{number}/activate")
    assert response.status == 422
    error = (await response.json())["errors"][0]
    assert (error["field"], error["line"]) == ("body", 3)

    body = await (await api.get("/v1/templates/welcome")).json()
    assert number not in [v["version"] for v in body["active"]]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "fields"),
    [
        ("post", "/v1/templates/welcome/versions", {"body": ""}, 422, {"locale", "body"}),
        (
            "post",
            "/v1/templates/welcome/versions",
            {"locale": "en", "body": "x", "channel": "fax"},
            422,
            {"channel"},
        ),
        ("post", "/v1/templates/Bad_Name/versions", {"locale": "en", "body": "x"}, 422, {"name"}),
        ("post", "/v1/templates/welcome/preview", {"version": "one"}, 422, {"version"}),
        ("post", "/v1/templates/welcome/versions/abc/activate", None, 422, {"version"}),
        ("post", "/v1/templates/welcome/versions/9999/activate", None, 404, None),
        ("get", "/v1/templates/no-such-template", None, 404, None),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field(
    worker: WorkerProcess,
    api: Client,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    fields: set[str] | None,
) -> None:
    await template_named(api, "welcome", worker)
    response = await getattr(api, method)(path, json=body)
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM
    if fields is not None:
        assert {e["field"] for e in (await response.json())["errors"]} == fields
