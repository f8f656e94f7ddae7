"""The delivery views through the real API from the real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from streams.settings import Settings
from streams.stores.database import create_engine
from streams.stores.delivery_store import DeliveryStore
from tests.integration.streams.stores.test_delivery_store import row, step, unique_epoch


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[DeliveryStore]:
    store = DeliveryStore.from_settings(settings.database)
    yield store
    await store.close()


async def test_one_notification_with_its_timeline(
    client: TestClient[Any, Any], store: DeliveryStore
) -> None:
    n, t0 = f"n-{uuid.uuid4()}", unique_epoch()
    later = t0 + timedelta(seconds=3)
    await store.write(
        [row(n, "delivered", later, queued_at=t0, created_at=t0, provider_message_id="m-1")],
        [
            step(n, "queued", t0),
            step(n, "sent", t0 + timedelta(seconds=1)),
            step(n, "delivered", later),
        ],
    )
    response = await client.get(f"/v1/notifications/{n}")
    assert response.status == 200
    body = await response.json()
    assert (body["state"], body["provider_message_id"]) == ("delivered", "m-1")
    assert [s["state"] for s in body["timeline"]] == ["queued", "sent", "delivered"]

    missing = await client.get(f"/v1/notifications/n-{uuid.uuid4()}")
    assert missing.status == 404


async def test_a_users_notifications_page_through_with_filters(
    client: TestClient[Any, Any], store: DeliveryStore
) -> None:
    user, t0 = f"u-{uuid.uuid4()}", unique_epoch()
    rows = [
        row(
            f"n-{uuid.uuid4()}",
            "delivered" if i % 2 else "bounced",
            t0 + timedelta(minutes=i),
            user_id=user,
            channel="sms" if i < 3 else "email",
        )
        for i in range(9)
    ]
    await store.write(rows, [])
    wanted = [
        r.notification_id for r in reversed(rows) if r.state == "delivered" and r.channel == "email"
    ]
    seen: list[str] = []
    url = f"/v1/users/{user}/notifications?limit=2&status=delivered&channel=email"
    cursor = None
    for _ in range(10):
        response = await client.get(url + (f"&cursor={cursor}" if cursor else ""))
        assert response.status == 200
        body = await response.json()
        seen += [item["notification_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == wanted

    bad = await client.get(f"/v1/users/{user}/notifications?cursor=zzz&status=lost")
    assert bad.status == 422
    assert {e["field"] for e in (await bad.json())["errors"]} <= {"cursor", "status"}


async def test_delivery_stats_for_a_time_range_and_channel(
    client: TestClient[Any, Any], store: DeliveryStore
) -> None:
    t0 = unique_epoch()
    at = t0 + timedelta(seconds=5)
    rows = [
        row(f"n-{uuid.uuid4()}", "delivered", at, caused_at=at - timedelta(seconds=2)),
        row(f"n-{uuid.uuid4()}", "delivered", at, caused_at=at - timedelta(seconds=4)),
        row(f"n-{uuid.uuid4()}", "bounced", at),
        row(f"n-{uuid.uuid4()}", "failed", at),
        row(f"n-{uuid.uuid4()}", "failed", at, channel="sms"),
    ]
    await store.write(rows, [])
    start = t0.isoformat().replace("+00:00", "Z")
    end = (t0 + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    response = await client.get(f"/v1/stats/delivery?from={start}&to={end}&channel=email")
    assert response.status == 200
    body = await response.json()
    [group] = [g for g in body["groups"] if g["scope"] == "channel+category"]
    assert (group["channel"], group["total"], group["delivered"]) == ("email", 4, 2)
    assert group["rates"] == {"delivered": 0.5, "failed": 0.25, "bounced": 0.25, "spam": 0.0}
    assert group["latency_p50_s"] == pytest.approx(2.0, rel=0.05)  # nearest rank of 2 s and 4 s

    bad = await client.get(f"/v1/stats/delivery?from={end}&to={start}")
    assert bad.status == 422
    assert [e["field"] for e in (await bad.json())["errors"]] == ["from"]


async def test_provider_error_text_is_served_without_recipients(
    client: TestClient[Any, Any], store: DeliveryStore, settings: Settings
) -> None:
    """Written by the tracker, a view's error text is already redacted; a row written before
    that rule (raw SQL here) is redacted when served."""
    n, t0 = f"n-{uuid.uuid4()}", unique_epoch()
    error = "550 5.1.1 <ada@example.com>: no such user; sms to +33 6 12 34 56 78 failed"
    await store.write([row(n, "bounced", t0, last_error=error)], [step(n, "bounced", t0)])
    engine = create_engine(settings.database)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "UPDATE notification_deliveries SET last_error = :e, reason = :e "
                    "WHERE notification_id = :n"
                ),
                {"e": error, "n": n},
            )
    finally:
        await engine.dispose()
    body = await (await client.get(f"/v1/notifications/{n}")).json()
    expected = "550 5.1.1 <[email]>: no such user; sms to [phone] failed"
    assert (body["last_error"], body["reason"]) == (expected, expected)
    assert "ada@" not in str(body)
