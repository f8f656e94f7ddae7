"""The security agents in a real worker: auth events in, suspicious-login alerts on auth.events
and blocks in Redis out, served by the API's check and lifted by an operator.

One worker for the module; each test uses its own user ids and IPs. "Nothing more happened" is
never waited for with a sleep: a later event of the same user (same partition, so processed
after) that raises an alert of its own is the barrier.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient

from agents.security.signals import REASON_IP_BURST, REASON_NEW_DEVICE, REASON_USER_BURST
from api.app import create_app
from schemas.auth import AuthEvent, SuspiciousLogin
from streams.kafka.wire import decode, encode
from streams.settings import OperatorSettings, SecuritySettings, Settings
from tests.integration.api_keys import bearer, create_key
from tests.integration.kafka_io import topic_catalog
from tests.integration.worker_process import (
    WorkerProcess,
    eventually,
    make_worker_settings,
    own_topics,
)

TOKEN = "operator-token-for-security-tests"
SECURITY = SecuritySettings(
    user_failures=3, user_window_s=600, ip_failures=5, ip_window_s=600, block_s=120
)


@pytest.fixture(scope="module")
def worker_settings(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    settings = make_worker_settings(stack_settings, tmp_path_factory.mktemp("worker-data"))
    settings = settings.model_copy(
        update={"security": SECURITY, "operator": OperatorSettings(token=SecretStr(TOKEN))}
    )
    with own_topics(settings):
        yield settings


class AlertReader:
    """Every suspicious-login record on the module's auth.events, read as it arrives."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        self.alerts: list[AuthEvent] = []
        self.keys: list[bytes] = []

    async def poll(self) -> None:
        batches = await self._consumer.getmany(timeout_ms=100)
        for records in batches.values():
            for record in records:
                event = decode(record.value, AuthEvent)
                if event.event_type == "auth.suspicious-login":
                    self.alerts.append(event)
                    self.keys.append(record.key)

    def matching(self, **fields: Any) -> list[AuthEvent]:
        found = []
        for alert in self.alerts:
            body = alert.payload
            assert isinstance(body, SuspiciousLogin)
            if all(getattr(body, name) == value for name, value in fields.items()):
                found.append(alert)
        return found


@pytest.fixture(scope="module")
async def reader(worker_settings: Settings) -> AsyncIterator[AlertReader]:
    topic = topic_catalog(worker_settings).for_topic("auth.events").name
    partitions = [TopicPartition(topic, p) for p in range(worker_settings.kafka.partitions)]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=worker_settings.kafka.bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    yield AlertReader(consumer)
    await consumer.stop()


@pytest.fixture
async def api(aiohttp_client: AiohttpClient, worker_settings: Settings) -> TestClient[Any, Any]:
    """The upstream auth service's client: a key that may check, not lift (`operator`)."""
    key = await create_key(worker_settings.database, ["ratelimits:check"])
    return await aiohttp_client(create_app(worker_settings), headers=bearer(key))


def new_user() -> str:
    return f"u-{uuid.uuid4().hex[:12]}"


def new_ip() -> str:
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def auth_event(
    event_type: str,
    user_id: str,
    ip: str,
    *,
    at: datetime | None = None,
    device_id: str | None = None,
) -> AuthEvent:
    event_id = uuid.uuid4()
    occurred_at = at or datetime.now(UTC)
    return AuthEvent.model_validate(
        {
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": occurred_at,
            "ingested_at": occurred_at,
            "source": "test",
            "correlation_id": str(event_id),
            "payload": {"user_id": user_id, "ip": ip, "device_id": device_id},
        }
    )


def login(user_id: str, ip: str, device_id: str) -> AuthEvent:
    return auth_event("auth.login-succeeded", user_id, ip, device_id=device_id)


async def send(producer: AIOKafkaProducer, settings: Settings, *events: AuthEvent) -> None:
    topic = topic_catalog(settings).for_topic("auth.events").name
    for event in events:
        user_id = event.payload.user_id
        await producer.send_and_wait(topic, encode(event), key=user_id.encode())


async def alerts_of(
    reader: AlertReader, worker: WorkerProcess, count: int, what: str, **fields: Any
) -> list[AuthEvent]:
    async def probe() -> list[AuthEvent] | None:
        await reader.poll()
        found = reader.matching(**fields)
        return found if len(found) >= count else None

    return await eventually(probe, what=what, worker=worker)


async def check(api: TestClient[Any, Any], **params: str) -> tuple[dict[str, Any], Any]:
    response = await api.get("/v1/rate-limits/check", params=params)
    assert response.status == 200
    return await response.json(), response.headers


async def test_the_user_threshold_alerts_once_blocks_and_an_operator_lifts_it(
    worker: WorkerProcess,
    worker_settings: Settings,
    producer: AIOKafkaProducer,
    reader: AlertReader,
    api: TestClient[Any, Any],
) -> None:
    user, ip = new_user(), new_ip()
    failed = [auth_event("auth.login-failed", user, ip) for _ in range(4)]
    await send(
        producer, worker_settings, auth_event("auth.login-succeeded", user, ip, device_id="d1")
    )
    await send(producer, worker_settings, *failed[:2])
    # Barrier: a new device alerts, so the two failures before it have been counted.
    await send(
        producer, worker_settings, auth_event("auth.login-succeeded", user, ip, device_id="d2")
    )
    await alerts_of(reader, worker, 1, "new-device barrier", user_id=user, reason=REASON_NEW_DEVICE)
    assert reader.matching(user_id=user, reason=REASON_USER_BURST) == []
    assert (await check(api, user_id=user))[0]["allowed"] is True

    await send(producer, worker_settings, failed[2])
    (alert,) = await alerts_of(
        reader, worker, 1, "burst alert", user_id=user, reason=REASON_USER_BURST
    )
    body = alert.payload
    assert isinstance(body, SuspiciousLogin)
    assert body.evidence["failed_attempts"] == "3"
    assert body.evidence["window_s"] == "600"
    assert set(body.related_event_ids) == {e.event_id for e in failed[:3]}
    assert alert.causation_id == str(failed[2].event_id)

    await send(producer, worker_settings, failed[3])
    await send(
        producer, worker_settings, auth_event("auth.login-succeeded", user, ip, device_id="d3")
    )
    await alerts_of(reader, worker, 2, "second barrier", user_id=user, reason=REASON_NEW_DEVICE)
    assert len(reader.matching(user_id=user, reason=REASON_USER_BURST)) == 1

    answer, headers = await check(api, user_id=user, ip=ip)
    assert answer["allowed"] is False
    assert 100 <= answer["retry_after_s"] <= 120
    assert headers["Retry-After"] == str(answer["retry_after_s"])
    assert [(b["kind"], b["id"], b["event_id"]) for b in answer["blocks"]] == [
        ("user", user, str(alert.event_id))
    ]

    path = f"/v1/rate-limits/blocks/user/{user}"
    assert (await api.delete(path)).status == 403
    assert (await api.delete(path, headers={"Authorization": "Bearer wrong"})).status == 401
    assert (await api.delete(path, headers={"Authorization": f"Bearer {TOKEN}"})).status == 204
    assert (await check(api, user_id=user))[0]["allowed"] is True


async def test_the_ip_threshold_counts_failures_of_different_users(
    worker: WorkerProcess,
    worker_settings: Settings,
    producer: AIOKafkaProducer,
    reader: AlertReader,
    api: TestClient[Any, Any],
) -> None:
    ip = new_ip()
    users = [new_user() for _ in range(SECURITY.ip_failures)]
    await send(producer, worker_settings, *(auth_event("auth.login-failed", u, ip) for u in users))
    (alert,) = await alerts_of(reader, worker, 1, "per-IP alert", ip=ip, reason=REASON_IP_BURST)
    body = alert.payload
    assert isinstance(body, SuspiciousLogin)
    assert body.user_id in users
    assert body.evidence["distinct_users"] == str(SECURITY.ip_failures)
    assert reader.keys[reader.alerts.index(alert)] == body.user_id.encode()
    answer, _ = await check(api, ip=ip)
    assert answer["allowed"] is False
    assert [(b["kind"], b["id"]) for b in answer["blocks"]] == [("ip", ip)]
    # One failure each: no user is over the per-user threshold.
    for user in users:
        assert reader.matching(user_id=user, reason=REASON_USER_BURST) == []


async def test_a_first_login_is_no_alert_and_a_known_device_neither(
    worker: WorkerProcess,
    worker_settings: Settings,
    producer: AIOKafkaProducer,
    reader: AlertReader,
) -> None:
    user, ip = new_user(), new_ip()
    logins = [
        auth_event("auth.login-succeeded", user, ip, device_id=device)
        for device in ("laptop", "laptop", "phone")
    ]
    await send(producer, worker_settings, *logins)
    (alert,) = await alerts_of(reader, worker, 1, "new-device alert", user_id=user)
    body = alert.payload
    assert isinstance(body, SuspiciousLogin)
    assert (body.reason, body.device_id, body.ip) == (REASON_NEW_DEVICE, "phone", ip)
    assert body.related_event_ids == [logins[2].event_id]


async def test_a_block_expires_on_its_own(
    worker: WorkerProcess,
    worker_settings: Settings,
    producer: AIOKafkaProducer,
    reader: AlertReader,
    api: TestClient[Any, Any],
) -> None:
    user, ip = new_user(), new_ip()
    # Failures from 105 s ago: the 120 s block has about 15 s left when it is written.
    at = datetime.now(UTC) - timedelta(seconds=SECURITY.block_s - 15)
    failures = [
        auth_event("auth.login-failed", user, ip, at=at + timedelta(seconds=n)) for n in range(3)
    ]
    await send(producer, worker_settings, *failures)
    await alerts_of(reader, worker, 1, "burst alert", user_id=user, reason=REASON_USER_BURST)
    answer, _ = await check(api, user_id=user)
    assert answer["allowed"] is False
    assert answer["retry_after_s"] <= 18

    async def allowed() -> bool | None:
        return True if (await check(api, user_id=user))[0]["allowed"] else None

    await eventually(allowed, what="the block expiring", worker=worker)
