"""Preferences over HTTP on a real worker: a PATCH or reset asked of the API is a
`user.preferences-updated` on `users.events` (read back here), which the worker folds into the
view the API's GET serves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaProducer
from pytest_aiohttp import AiohttpClient

from api.app import create_app
from schemas.users import UserEvent, UserPreferencesUpdated
from streams.kafka.wire import decode, encode
from streams.settings import Settings
from tests.integration.kafka_io import records_to_end, topic_catalog
from tests.integration.worker_process import WorkerProcess, eventually

Client = TestClient[Any, Any]
PROBLEM = "application/problem+json"


@pytest.fixture
async def api(
    aiohttp_client: AiohttpClient, worker_settings: Settings, api_headers: dict[str, str]
) -> Client:
    return await aiohttp_client(create_app(worker_settings), headers=api_headers)


def new_user() -> str:
    return f"u-{uuid.uuid4().hex[:12]}"


async def created(producer: AIOKafkaProducer, settings: Settings, user_id: str) -> None:
    now = datetime.now(UTC)
    event = UserEvent.model_validate(
        {
            "event_id": uuid.uuid4(),
            "event_type": "user.created",
            "occurred_at": now,
            "ingested_at": now,
            "source": "test",
            "correlation_id": "c",
            "payload": {
                "user_id": user_id,
                "email": f"{user_id}@example.com",
                "locale": "fr-FR",
                "time_zone": "Europe/Paris",
            },
        }
    )
    topic = topic_catalog(settings).for_topic("users.events").name
    await producer.send_and_wait(topic, encode(event), key=user_id.encode())


async def view_showing(
    api: Client, user_id: str, event_id: str | None, worker: WorkerProcess
) -> dict[str, Any]:
    """The GET answer once the view has applied `event_id` (or holds the user, for None)."""

    async def probe() -> dict[str, Any] | None:
        response = await api.get(f"/v1/users/{user_id}/preferences")
        if response.status == 404:
            return None
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body if event_id is None or body["event_id"] == event_id else None

    return await eventually(probe, what=f"preferences of {user_id} at {event_id}", worker=worker)


async def preference_events(settings: Settings, user_id: str) -> list[UserEvent]:
    topic = topic_catalog(settings).for_topic("users.events").name
    events = [decode(r.value, UserEvent) for r in await records_to_end(settings, topic)]
    return [
        e
        for e in events
        if e.event_type == "user.preferences-updated" and e.payload.user_id == user_id
    ]


async def test_get_patch_reset_round_trip_through_kafka(
    worker: WorkerProcess, producer: AIOKafkaProducer, worker_settings: Settings, api: Client
) -> None:
    user = new_user()
    assert (await api.get(f"/v1/users/{user}/preferences")).status == 404
    await created(producer, worker_settings, user)
    before = await view_showing(api, user, None, worker)
    assert (before["locale"], before["time_zone"], before["event_id"]) == (
        "fr-FR",
        "Europe/Paris",
        None,
    )
    assert before["categories"]["marketing"] == dict.fromkeys(
        ("email", "sms", "push", "whatsapp"), None
    )

    patch = {
        "categories": {"marketing": {"email": False}, "orders": {"sms": True}},
        "quiet_hours": {"start": "22:00", "end": "07:00"},
    }
    response = await api.patch(f"/v1/users/{user}/preferences", json=patch)
    assert response.status == 202, await response.text()
    answer = await response.json()
    # Acknowledged by Kafka before the answer: the event is on users.events, keyed by the user.
    (event,) = await preference_events(worker_settings, user)
    assert str(event.event_id) == answer["event_id"]
    assert isinstance(event.payload, UserPreferencesUpdated)
    assert event.payload.categories is not None
    assert event.payload.categories.marketing is not None
    assert event.payload.categories.marketing.email is False

    after = await view_showing(api, user, answer["event_id"], worker)
    assert after["categories"]["marketing"]["email"] is False
    assert after["categories"]["marketing"]["sms"] is None
    assert after["categories"]["orders"]["sms"] is True
    assert after["quiet_hours"] == {"start": "22:00:00", "end": "07:00:00", "time_zone": None}
    assert after["locale"] == "fr-FR"

    # A second patch keeps what the first set and it does not name.
    response = await api.patch(
        f"/v1/users/{user}/preferences",
        json={"categories": {"orders": {"sms": None}}},
        headers={"If-Match": f'"{answer["event_id"]}"'},
    )
    assert response.status == 202, await response.text()
    second = await view_showing(api, user, (await response.json())["event_id"], worker)
    assert second["categories"]["marketing"]["email"] is False
    assert second["categories"]["orders"]["sms"] is None
    assert second["quiet_hours"] is not None

    response = await api.post(f"/v1/users/{user}/preferences/reset")
    assert response.status == 202, await response.text()
    reset = await view_showing(api, user, (await response.json())["event_id"], worker)
    assert reset["quiet_hours"] is None
    assert all(v is None for switches in reset["categories"].values() for v in switches.values())
    assert len(await preference_events(worker_settings, user)) == 3


async def test_a_stale_if_match_is_refused(
    worker: WorkerProcess, worker_settings: Settings, api: Client
) -> None:
    user = new_user()
    response = await api.patch(
        f"/v1/users/{user}/preferences",
        json={"quiet_hours": None},
        headers={"If-Match": f'"{uuid.uuid4()}"'},
    )
    assert response.status == 412
    assert await preference_events(worker_settings, user) == []


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"categories": {"critical": {"email": False}}}, {"categories.critical"}),
        ({"categories": {"orders": {"email": "no"}}}, {"categories.orders.email"}),
        ({"quiet_hours": {"start": "22:00", "end": "22:00"}}, {"quiet_hours"}),
        ({"locale": "fr", "quiet_hours": {"start": "25:00", "end": "07:00"}}, None),
    ],
)
async def test_bad_changes_are_422_naming_each_field(
    api: Client, body: dict[str, Any], fields: set[str] | None
) -> None:
    response = await api.patch(f"/v1/users/{new_user()}/preferences", json=body)
    assert response.status == 422
    assert response.content_type == PROBLEM
    named = {e["field"] for e in (await response.json())["errors"]}
    if fields is None:  # several at once: each is named
        assert "locale" in named
        assert any(name.startswith("quiet_hours.start") for name in named)
    else:
        assert named == fields


async def test_a_bad_user_id_is_422_naming_it(api: Client) -> None:
    response = await api.post("/v1/users/not%20an%20id/preferences/reset")
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["id"]
