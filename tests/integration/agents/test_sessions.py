"""Sessions and devices on a real worker: auth events produced to `auth.events` come back
through the API as sessions opened, refreshed and ended; revocations asked of the API are
produced on `auth.events` (read back here) and end the sessions once the worker folds them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaProducer
from pytest_aiohttp import AiohttpClient

from api.app import create_app
from schemas.auth import AuthEvent, SessionRevoked
from streams.kafka.wire import decode, encode
from streams.settings import Settings
from tests.integration.api_keys import bearer, create_key
from tests.integration.kafka_io import records_to_end, topic_catalog
from tests.integration.worker_process import WorkerProcess, eventually

Client = TestClient[Any, Any]
T0 = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def api(
    aiohttp_client: AiohttpClient, worker_settings: Settings, api_headers: dict[str, str]
) -> Client:
    return await aiohttp_client(create_app(worker_settings), headers=api_headers)


def new_user() -> str:
    return f"u-{uuid.uuid4().hex[:12]}"


def auth_event(event_type: str, user_id: str, at_s: float, **payload: Any) -> AuthEvent:
    event_id = uuid.uuid4()
    occurred_at = T0 + timedelta(seconds=at_s)
    return AuthEvent.model_validate(
        {
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": occurred_at,
            "ingested_at": occurred_at,
            "source": "test",
            "correlation_id": str(event_id),
            "payload": {"user_id": user_id} | payload,
        }
    )


def login(user_id: str, session_id: str, at_s: float, device_id: str, **more: Any) -> AuthEvent:
    return auth_event(
        "auth.login-succeeded",
        user_id,
        at_s,
        session_id=session_id,
        device_id=device_id,
        ip="203.0.113.7",
        **more,
    )


async def send(producer: AIOKafkaProducer, settings: Settings, *events: AuthEvent) -> None:
    topic = topic_catalog(settings).for_topic("auth.events").name
    for event in events:
        await producer.send_and_wait(topic, encode(event), key=event.payload.user_id.encode())


async def view_where(
    api: Client,
    user_id: str,
    worker: WorkerProcess,
    what: str,
    condition: Callable[[dict[str, Any]], bool],
    state: str = "all",
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await api.get(f"/v1/users/{user_id}/sessions?state={state}")
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body if condition(body) else None

    return await eventually(probe, what=what, worker=worker)


def by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["session_id"]: s for s in body["sessions"]}


def active(body: dict[str, Any]) -> set[str]:
    return {s["session_id"] for s in body["sessions"] if s["ended_at"] is None}


async def revocations_of(settings: Settings, user_id: str) -> list[AuthEvent]:
    topic = topic_catalog(settings).for_topic("auth.events").name
    found = []
    for record in await records_to_end(settings, topic):
        if record.key != user_id.encode():
            continue
        event = decode(record.value, AuthEvent)
        if event.event_type == "auth.session-revoked":
            found.append(event)
    return found


async def test_sessions_open_refresh_and_end_by_logout(
    worker: WorkerProcess, producer: AIOKafkaProducer, worker_settings: Settings, api: Client
) -> None:
    user = new_user()
    await send(
        producer,
        worker_settings,
        login(user, "s1", 0, "laptop", user_agent="Firefox"),
        login(user, "s1", 60, "laptop"),
        login(user, "s2", 90, "phone"),
        auth_event("auth.logout", user, 120, session_id="s1"),
    )
    body = await view_where(
        api, user, worker, "s1 ended by logout", lambda b: by_id(b).get("s1", {}).get("ended_at")
    )
    sessions = by_id(body)
    assert sessions["s1"]["end_reason"] == "logout"
    assert sessions["s1"]["logins"] == 2
    assert datetime.fromisoformat(sessions["s1"]["started_at"]) == T0
    assert datetime.fromisoformat(sessions["s1"]["last_seen_at"]) == T0 + timedelta(seconds=60)
    assert active(body) == {"s2"}
    devices = {d["device_id"]: d for d in body["devices"]}
    assert [d["device_id"] for d in body["devices"]] == ["phone", "laptop"]
    assert (devices["laptop"]["login_count"], devices["laptop"]["flagged"]) == (2, False)
    assert (devices["phone"]["login_count"], devices["phone"]["flagged"]) == (1, True)
    assert devices["laptop"]["user_agent"] is None  # the latest login's: it sent none

    # Active sessions only, by default.
    response = await api.get(f"/v1/users/{user}/sessions")
    assert [s["session_id"] for s in (await response.json())["sessions"]] == ["s2"]


async def test_revoking_one_session_produces_the_event_and_ends_it(
    worker: WorkerProcess, producer: AIOKafkaProducer, worker_settings: Settings, api: Client
) -> None:
    user = new_user()
    await send(producer, worker_settings, login(user, "s1", 0, "d1"), login(user, "s2", 1, "d1"))
    await view_where(api, user, worker, "two sessions", lambda b: active(b) == {"s1", "s2"})

    response = await api.post(
        f"/v1/users/{user}/sessions/revoke", json={"session_id": "s1", "reason": "stolen phone"}
    )
    assert response.status == 202, await response.text()
    (revoked,) = (await response.json())["revoked"]
    assert revoked["session_id"] == "s1"
    (event,) = await revocations_of(worker_settings, user)
    assert str(event.event_id) == revoked["event_id"]
    assert event.payload == SessionRevoked(user_id=user, session_id="s1", reason="stolen phone")

    body = await view_where(api, user, worker, "s1 revoked", lambda b: active(b) == {"s2"})
    assert by_id(body)["s1"]["end_reason"] == "revoked"
    # A revoked session that logs in again is a new session.
    again = login(user, "s1", (datetime.now(UTC) - T0).total_seconds() + 1, "d1")
    await send(producer, worker_settings, again)
    body = await view_where(api, user, worker, "s1 again", lambda b: "s1" in active(b))
    assert by_id(body)["s1"]["opened_by"] == str(again.event_id)
    assert by_id(body)["s1"]["logins"] == 1


async def test_revoking_all_but_one_and_a_password_change_ending_the_others(
    worker: WorkerProcess, producer: AIOKafkaProducer, worker_settings: Settings, api: Client
) -> None:
    user = new_user()
    await send(producer, worker_settings, *(login(user, f"s{n}", n, "d1") for n in range(4)))
    await view_where(api, user, worker, "four sessions", lambda b: len(active(b)) == 4)

    response = await api.post(
        f"/v1/users/{user}/sessions/revoke",
        json={"all": True, "except_session_id": "s0"},
        headers={"Idempotency-Key": "req-1"},
    )
    assert response.status == 202, await response.text()
    answered = {r["session_id"]: r["event_id"] for r in (await response.json())["revoked"]}
    assert set(answered) == {"s1", "s2", "s3"}
    events = await revocations_of(worker_settings, user)
    assert {e.payload.session_id: str(e.event_id) for e in events} == answered  # type: ignore[union-attr]
    await view_where(api, user, worker, "only s0 left", lambda b: active(b) == {"s0"})

    later = (datetime.now(UTC) - T0).total_seconds()
    await send(
        producer,
        worker_settings,
        login(user, "s4", later + 1, "d2"),
        login(user, "s5", later + 2, "d2"),
        auth_event("auth.password-changed", user, later + 3, session_id="s5"),
    )
    body = await view_where(api, user, worker, "only s5 left", lambda b: active(b) == {"s5"})
    sessions = by_id(body)
    assert sessions["s0"]["end_reason"] == "password-changed"
    assert sessions["s4"]["end_reason"] == "password-changed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "session_id"),
        ({"session_id": "s1", "all": True}, "session_id"),
        ({"session_id": "s1", "except_session_id": "s2"}, "except_session_id"),
        ({"all": "yes"}, "all"),
        ({"session_id": "not an id"}, "session_id"),
        ({"session_id": "s1", "extra": 1}, "extra"),
    ],
)
async def test_a_bad_revoke_body_is_a_422_naming_the_field(
    worker_settings: Settings, api: Client, body: dict[str, Any], field: str
) -> None:
    response = await api.post(f"/v1/users/{new_user()}/sessions/revoke", json=body)
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    problem = await response.json(content_type=None)
    assert [error["field"] for error in problem["errors"]] == [field]


async def test_revoking_needs_the_users_write_scope(
    aiohttp_client: AiohttpClient, worker_settings: Settings
) -> None:
    key = await create_key(worker_settings.database, ["users:read"])
    reader = await aiohttp_client(create_app(worker_settings), headers=bearer(key))
    user = new_user()
    assert (await reader.get(f"/v1/users/{user}/sessions")).status == 200
    response = await reader.post(f"/v1/users/{user}/sessions/revoke", json={"all": True})
    assert response.status == 403
    assert await revocations_of(worker_settings, user) == []


async def test_bad_requests_name_what_is_wrong(worker_settings: Settings, api: Client) -> None:
    response = await api.get(f"/v1/users/{new_user()}/sessions?state=ended")
    assert response.status == 422
    assert [e["field"] for e in (await response.json(content_type=None))["errors"]] == ["state"]
    response = await api.get("/v1/users/not%20an%20id/sessions")
    assert response.status == 422
    assert [e["field"] for e in (await response.json(content_type=None))["errors"]] == ["id"]
    response = await api.post(
        f"/v1/users/{new_user()}/sessions/revoke",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 400
