"""The devices the old new-device rule kept (in `security-users` entries, before the sessions
fold held the rule) carried over on a real worker: the worker starts with such an entry in the
table's changelog, as a deploy of this fold finds it, and its first alerts weigh those devices.
The rows stay what the log alone makes: a replay of the user finds nothing to change."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from agents.command import run_replay
from agents.security.pipeline import USERS_TABLE
from schemas.auth import AuthEvent, SuspiciousLogin
from streams.kafka.wire import decode, encode
from streams.settings import Settings
from tests.integration.kafka_io import records_to_end, topic_catalog
from tests.integration.worker_process import WorkerProcess, eventually, worker_recovering

T0 = datetime.now(UTC).replace(microsecond=0)
CARRIED = f"u-carried-{uuid.uuid4().hex[:8]}"
FRESH = f"u-fresh-{uuid.uuid4().hex[:8]}"
# As the old rule wrote it: [device id, first event id, flagged], most recently seen first.
OLD_ENTRY = {
    "window": {"failures": [], "alerted_ms": None, "trigger": None},
    "devices": [["phone", str(uuid.uuid4()), True], ["laptop", str(uuid.uuid4()), False]],
}


@pytest.fixture(scope="module")
def worker(
    worker_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """A worker that recovers the old entry when it starts."""
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with worker_recovering(worker_settings, log_path, USERS_TABLE, CARRIED, OLD_ENTRY) as process:
        yield process


def login(user_id: str, device_id: str, at_s: float) -> AuthEvent:
    event_id = uuid.uuid4()
    at = T0 + timedelta(seconds=at_s)
    return AuthEvent.model_validate(
        {
            "event_id": event_id,
            "event_type": "auth.login-succeeded",
            "occurred_at": at,
            "ingested_at": at,
            "source": "test",
            "correlation_id": str(event_id),
            "payload": {
                "user_id": user_id,
                "ip": "203.0.113.9",
                "session_id": f"s-{device_id}",
                "device_id": device_id,
            },
        }
    )


async def new_device_alerts(settings: Settings, user_id: str) -> list[SuspiciousLogin]:
    topic = topic_catalog(settings).for_topic("auth.events").name
    found = []
    for record in await records_to_end(settings, topic):
        if record.key == user_id.encode():
            payload = decode(record.value, AuthEvent).payload
            if isinstance(payload, SuspiciousLogin) and payload.reason == "new-device":
                found.append(payload)
    return found


async def test_the_old_rules_devices_are_known_to_the_first_alerts(
    worker: WorkerProcess, producer: AIOKafkaProducer, worker_settings: Settings
) -> None:
    topic = topic_catalog(worker_settings).for_topic("auth.events").name
    since = datetime.now(UTC) - timedelta(minutes=1)
    for user in (CARRIED, FRESH):
        # tablet: new to both; phone: carried for CARRIED; watch: new to both, and the last.
        for n, device in enumerate(("tablet", "phone", "watch")):
            await producer.send_and_wait(topic, encode(login(user, device, n)), key=user.encode())

    async def alerted(user: str) -> list[SuspiciousLogin] | None:
        alerts = await new_device_alerts(worker_settings, user)
        return alerts if any(alert.device_id == "watch" for alert in alerts) else None

    carried = await eventually(lambda: alerted(CARRIED), what="the alert on watch", worker=worker)
    # The first device here alerts (the old rule knew two), the carried phone does not.
    assert [(a.device_id, a.evidence["known_devices"]) for a in carried] == [
        ("tablet", "2"),
        ("watch", "3"),
    ]
    # Without an old entry the first device is learned quietly, and the others alert.
    fresh = await eventually(lambda: alerted(FRESH), what="the alert on watch", worker=worker)
    assert [(a.device_id, a.evidence["known_devices"]) for a in fresh] == [
        ("phone", "1"),
        ("watch", "2"),
    ]

    # The rows are what the log makes: a replay of both users changes nothing (scoped to the
    # users with records since `since`, so the other modules' rows in this database are no
    # concern of it).
    out, err = io.StringIO(), io.StringIO()
    argv = ["replay", "sessions", "--since", since.isoformat(), "--dry-run"]
    assert await run_replay(argv, worker_settings, out, err) == 0, err.getvalue()
    report: dict[str, Any] = json.loads(out.getvalue().splitlines()[-1])["report"]
    assert report["keys"] == 2
    assert [(t["added"], t["changed"], t["removed"]) for t in report["tables"]] == [
        (0, 0, 0),
        (0, 0, 0),
    ]
    assert [t["live_rows"] for t in report["tables"]] == [6, 6]
