"""`tributary replay` against a real worker's views, in a database of this module's own (a
swap replaces every row of the live tables, which other tests share otherwise).

The orders view truncated (a lost database) is restored exactly by a replay; a replay of an
intact view reports no difference; one interrupted half-way leaves the live view as it was; and
the sessions view is restored the same way.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from agents.command import run_replay
from agents.replay.runner import ProgressSample, replay
from agents.replay.views import VIEWS
from schemas.auth import AuthEvent
from schemas.orders import OrderEvent, OrderStatus
from streams.kafka.wire import encode, local_codec
from streams.settings import Settings
from streams.stores.delivery_rollups import ROLLUPS
from streams.stores.session_store import user_sessions
from tests.integration.kafka_io import topic_catalog
from tests.integration.own_database import own_database
from tests.integration.worker_process import (
    WorkerProcess,
    eventually,
    make_worker_settings,
    own_topics,
)
from tests.unit.agents.delivery_factories import receipt_event, status_event

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
EVENT_TYPE = {"pending": "order.created", "paid": "order.paid", "cancelled": "order.cancelled"}
ORDERS = 40

# The delivery statistics' rollups, rebuilt with the deliveries view.
STATISTICS = [table.name for table in ROLLUPS.values()]


@pytest.fixture(scope="module")
def worker_settings(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    base = make_worker_settings(stack_settings, tmp_path_factory.mktemp("worker-data"))
    # Small batches: an interrupted replay is interrupted between two of them.
    worker = base.worker.model_copy(update={"batch_events": 10})
    with own_database(base.database, "tributary_replay") as database:
        settings = base.model_copy(update={"database": database, "worker": worker})
        with own_topics(settings):
            yield settings


@pytest.fixture(scope="module")
async def engine(worker_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(worker_settings.database.url.get_secret_value())
    yield engine
    await engine.dispose()


def order_event(order_id: str, status: OrderStatus, at_s: float) -> OrderEvent:
    event_id = uuid.uuid4()
    at = T0 + timedelta(seconds=at_s)
    return OrderEvent.model_validate(
        {
            "event_id": event_id,
            "event_type": EVENT_TYPE[status],
            "occurred_at": at,
            "ingested_at": at,
            "source": "test",
            "correlation_id": str(event_id),
            "payload": {
                "id": order_id,
                "user_id": f"u-{order_id[-2:]}",
                "status": status,
                "currency": "EUR",
                "total_minor": 1000,
                "items": [{"sku": "s", "quantity": 2, "unit_price_minor": 500}],
            },
        }
    )


def login(user_id: str, session_id: str, at_s: float) -> AuthEvent:
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
                "session_id": session_id,
                "device_id": f"d-{session_id}",
            },
        }
    )


async def rows(engine: AsyncEngine, table: str, *key: str) -> list[dict[str, Any]]:
    """Every row but its write time, in key order."""
    async with engine.connect() as conn:
        query = sa.select(sa.text("*")).select_from(sa.table(table))
        result = await conn.execute(query.order_by(*(sa.column(k) for k in key)))
        found = [dict(row) for row in result.mappings()]
    for row in found:
        row.pop("materialized_at", None)
    return found


async def count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(sa.table(table))
        return int((await conn.execute(query)).scalar_one())


async def truncate(engine: AsyncEngine, *tables: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"TRUNCATE {', '.join(tables)}"))


async def shadow_tables(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.text("SELECT tablename FROM pg_tables WHERE tablename LIKE '%%__replay'")
        )
        return [row[0] for row in result]


async def run(settings: Settings, *argv: str) -> tuple[int, list[dict[str, Any]]]:
    out, err = io.StringIO(), io.StringIO()
    code = await run_replay(["replay", *argv], settings, out, err)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.fixture(scope="module")
async def orders_sent(
    worker: WorkerProcess,
    producer: AIOKafkaProducer,
    worker_settings: Settings,
    engine: AsyncEngine,
) -> int:
    """Orders with a few events each, one of them stale, all materialized by the worker."""
    topic = topic_catalog(worker_settings).orders_events.name
    events = 0
    for n in range(ORDERS):
        order_id = f"o-{uuid.uuid4().hex[:8]}-{n:02d}"
        chain = [order_event(order_id, "pending", n), order_event(order_id, "paid", n + 60)]
        if n % 4 == 0:
            chain.append(order_event(order_id, "cancelled", n + 30))  # stale: before the payment
        for event in chain:
            await producer.send_and_wait(topic, encode(event), key=order_id.encode())
        events += len(chain)

    async def probe() -> bool | None:
        return True if await count(engine, "order_history") == events else None

    await eventually(probe, what=f"{events} history rows", worker=worker)
    return events


async def test_a_replay_after_truncating_the_orders_view_restores_it_exactly(
    worker_settings: Settings, engine: AsyncEngine, orders_sent: int
) -> None:
    views = await rows(engine, "order_views", "order_id")
    history = await rows(engine, "order_history", "order_id", "event_id")
    assert len(views) == ORDERS
    assert sum(1 for row in history if row["ignored"]) == ORDERS // 4
    await truncate(engine, "order_views", "order_history")

    code, lines = await run(worker_settings, "orders")
    assert code == 0
    report = lines[-1]["report"]
    assert report["swapped"] is True
    assert report["records"] == orders_sent
    by_table = {t["table"]: t for t in report["tables"]}
    assert [by_table["order_views"][k] for k in ("added", "changed", "removed")] == [ORDERS, 0, 0]
    assert by_table["order_history"]["added"] == orders_sent
    samples = [line["progress"] for line in lines[:-1]]
    assert samples
    assert (samples[-1]["records"], samples[-1]["lag"]) == (orders_sent, 0)
    assert {"records_per_s", "elapsed_s"} <= set(samples[-1])
    assert await rows(engine, "order_views", "order_id") == views
    assert await rows(engine, "order_history", "order_id", "event_id") == history
    assert await shadow_tables(engine) == []

    # Nothing to repair: no difference, the same rows.
    code, lines = await run(worker_settings, "orders")
    tables = lines[-1]["report"]["tables"]
    assert [(t["added"], t["changed"], t["removed"]) for t in tables] == [(0, 0, 0), (0, 0, 0)]
    assert await rows(engine, "order_views", "order_id") == views


async def test_a_replay_since_a_time_repairs_the_rows_it_covers(
    worker_settings: Settings, engine: AsyncEngine, orders_sent: int
) -> None:
    views = await rows(engine, "order_views", "order_id")
    async with engine.begin() as conn:
        # A row lost, another moved back in time: both touched by events of the last minutes.
        await conn.execute(
            sa.text("DELETE FROM order_views WHERE order_id = :id"), {"id": views[0]["order_id"]}
        )
        await conn.execute(
            sa.text("UPDATE order_views SET status = 'pending' WHERE order_id = :id"),
            {"id": views[1]["order_id"]},
        )
    code, lines = await run(
        worker_settings, "orders", "--since", (T0 - timedelta(days=1)).isoformat()
    )
    assert code == 0
    [view_diff, _] = lines[-1]["report"]["tables"]
    assert (view_diff["added"], view_diff["changed"], view_diff["removed"]) == (1, 1, 0)
    assert await rows(engine, "order_views", "order_id") == views


async def test_an_interrupted_replay_leaves_the_live_view_intact(
    worker_settings: Settings, engine: AsyncEngine, orders_sent: int
) -> None:
    await truncate(engine, "order_history")
    before = await rows(engine, "order_views", "order_id")
    started = asyncio.Event()

    def progress(sample: ProgressSample) -> None:
        if sample.records:
            started.set()

    task = asyncio.create_task(replay(VIEWS["orders"], worker_settings, local_codec(), progress))
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await rows(engine, "order_views", "order_id") == before
    assert await count(engine, "order_history") == 0
    assert await shadow_tables(engine) == []


async def test_a_dry_run_reports_and_changes_nothing(
    worker_settings: Settings, engine: AsyncEngine, orders_sent: int
) -> None:
    await truncate(engine, "order_history")
    code, lines = await run(worker_settings, "orders", "--dry-run")
    assert code == 0
    report = lines[-1]["report"]
    assert report["swapped"] is False
    assert {t["table"]: t["added"] for t in report["tables"]}["order_history"] == orders_sent
    assert await count(engine, "order_history") == 0
    assert await shadow_tables(engine) == []
    await run(worker_settings, "orders")
    assert await count(engine, "order_history") == orders_sent


async def test_the_sessions_view_is_restored(
    worker: WorkerProcess,
    producer: AIOKafkaProducer,
    worker_settings: Settings,
    engine: AsyncEngine,
) -> None:
    topic = topic_catalog(worker_settings).for_topic("auth.events").name
    users = [f"u-{uuid.uuid4().hex[:8]}" for _ in range(5)]
    for n, user in enumerate(users):
        for m in range(3):
            event = login(user, f"s{m}", n * 10 + m)
            await producer.send_and_wait(topic, encode(event), key=user.encode())

    async def probe() -> bool | None:
        return True if await count(engine, "user_sessions") == 15 else None

    await eventually(probe, what="15 sessions", worker=worker)
    sessions = await rows(engine, "user_sessions", "user_id", "session_id")
    devices = await rows(engine, "user_devices", "user_id", "device_id")
    await truncate(engine, "user_sessions", "user_devices")

    code, lines = await run(worker_settings, "sessions")
    assert code == 0
    tables = {t["table"]: t for t in lines[-1]["report"]["tables"]}
    assert tables["user_sessions"]["added"] == 15
    assert await rows(engine, "user_sessions", "user_id", "session_id") == sessions
    assert await rows(engine, "user_devices", "user_id", "device_id") == devices


def auth_event(user_id: str, event_type: str, at_s: float, **payload: Any) -> AuthEvent:
    event_id = uuid.uuid4()
    at = T0 + timedelta(seconds=at_s)
    return AuthEvent.model_validate(
        {
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": at,
            "ingested_at": at,
            "source": "test",
            "correlation_id": str(event_id),
            "payload": {"user_id": user_id} | payload,
        }
    )


def device_login(user_id: str, session_id: str, device_id: str, at_s: float) -> AuthEvent:
    return auth_event(
        user_id,
        "auth.login-succeeded",
        at_s,
        ip="203.0.113.9",
        session_id=session_id,
        device_id=device_id,
    )


async def execute(engine: AsyncEngine, *statements: tuple[str, dict[str, Any]]) -> None:
    async with engine.begin() as conn:
        for statement, parameters in statements:
            await conn.execute(sa.text(statement), parameters)


async def insert_session(engine: AsyncEngine, row: dict[str, Any]) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.insert(user_sessions).values(**row))


async def test_a_sessions_replay_since_a_time_gives_the_rows_a_full_replay_gives(
    worker: WorkerProcess,
    producer: AIOKafkaProducer,
    worker_settings: Settings,
    engine: AsyncEngine,
) -> None:
    """Users with logins before the time and events after it: their rows damaged (counts,
    a revived session, rows lost, a stray row), then replayed since the time, are exactly the
    full replay's rows, logins and login counts included (the fold folds each of them from
    the topic's beginning). A user with nothing since the time is not read: its damaged row
    stays as it was, until a full replay."""
    topic = topic_catalog(worker_settings).for_topic("auth.events").name
    tag = uuid.uuid4().hex[:6]
    both, pw, after, before = (f"u-{name}-{tag}" for name in ("both", "pw", "after", "before"))

    async def send(events: list[AuthEvent], timestamp_ms: int | None = None) -> int:
        """The broker timestamp (ms) of the last one."""
        for event in events:
            user = event.payload.user_id
            sent = await producer.send_and_wait(
                topic, encode(event), key=user.encode(), timestamp_ms=timestamp_ms
            )
        return int(sent.timestamp)

    since_ms = 1 + await send(
        [
            device_login(both, "s1", "laptop", 0),
            device_login(both, "s1", "laptop", 10),
            device_login(both, "s2", "phone", 20),
            device_login(pw, "s1", "laptop", 0),
            device_login(pw, "s2", "phone", 5),
            # One device: no alert (which the worker would publish after the time, keyed by
            # this user, who would then have a record since the time).
            device_login(before, "s1", "laptop", 0),
            device_login(before, "s1", "laptop", 5),
        ]
    )
    since = datetime.fromtimestamp(since_ms / 1000, UTC)

    async def devices_of(*users: str) -> int:
        async with engine.connect() as conn:
            found = await conn.execute(
                sa.select(sa.func.count())
                .select_from(sa.table("user_devices"))
                .where(sa.column("user_id").in_(users))
            )
            return int(found.scalar_one())

    async def before_materialized() -> bool | None:
        return True if await devices_of(both, pw, before) == 5 else None

    await eventually(before_materialized, what="the logins before the time", worker=worker)
    await send(
        [
            device_login(both, "s1", "laptop", 100),  # its third login, and the laptop's
            auth_event(both, "auth.logout", 110, session_id="s2"),
            device_login(both, "s3", "tablet", 120),  # a new device: an alert
            auth_event(pw, "auth.password-changed", 100, session_id="s1"),
            device_login(after, "s1", "laptop", 100),
            device_login(after, "s2", "phone", 110),
        ],
        timestamp_ms=since_ms,
    )

    async def after_materialized() -> bool | None:
        return True if await devices_of(both, pw, after, before) == 8 else None

    await eventually(after_materialized, what="the events after the time", worker=worker)
    # The full replay's rows: the worker's, as a full replay finds nothing to change.
    await eventually(
        lambda: ended(engine, pw, "s2"), what="the password change ending s2", worker=worker
    )
    code, lines = await run(worker_settings, "sessions")
    assert code == 0
    assert [(t["added"], t["changed"], t["removed"]) for t in lines[-1]["report"]["tables"]] == [
        (0, 0, 0),
        (0, 0, 0),
    ]
    sessions = await rows(engine, "user_sessions", "user_id", "session_id")
    devices = await rows(engine, "user_devices", "user_id", "device_id")
    laptop = next(d for d in devices if (d["user_id"], d["device_id"]) == (both, "laptop"))
    s1 = next(s for s in sessions if (s["user_id"], s["session_id"]) == (both, "s1"))
    assert (laptop["login_count"], s1["logins"]) == (3, 3)

    stray = next(s for s in sessions if s["user_id"] == both) | {"session_id": "stray"}
    await insert_session(engine, stray)
    await execute(
        engine,
        (
            "UPDATE user_devices SET login_count = 1 WHERE user_id = :u AND device_id = 'laptop'",
            {"u": both},
        ),
        (
            "UPDATE user_sessions SET logins = 99 WHERE user_id = :u AND session_id = 's1'",
            {"u": both},
        ),
        ("DELETE FROM user_sessions WHERE user_id = :u AND session_id = 's2'", {"u": both}),
        ("DELETE FROM user_devices WHERE user_id = :u", {"u": pw}),
        (
            "UPDATE user_sessions SET ended_at = NULL, end_reason = NULL"
            " WHERE user_id = :u AND session_id = 's2'",
            {"u": pw},
        ),
        ("DELETE FROM user_sessions WHERE user_id = :u", {"u": after}),
        ("DELETE FROM user_devices WHERE user_id = :u", {"u": after}),
        ("UPDATE user_devices SET login_count = 42 WHERE user_id = :u", {"u": before}),
    )

    damaged_sessions = await rows(engine, "user_sessions", "user_id", "session_id")
    code, lines = await run(worker_settings, "sessions", "--since", since.isoformat(), "--dry-run")
    assert code == 0
    dry = lines[-1]["report"]
    assert (dry["swapped"], dry["keys"]) == (False, 3)
    assert await rows(engine, "user_sessions", "user_id", "session_id") == damaged_sessions

    code, lines = await run(worker_settings, "sessions", "--since", since.isoformat())
    assert code == 0
    report = lines[-1]["report"]
    assert report["tables"] == dry["tables"]
    assert report["swapped"] is True
    assert report["keys"] == 3  # both, pw and after; not before
    tables = {t["table"]: t for t in report["tables"]}
    diff = {name: (t["added"], t["changed"], t["removed"]) for name, t in tables.items()}
    # Sessions: both's s2 and after's two back, both's s1 and pw's s2 repaired, the stray gone.
    assert diff["user_sessions"] == (3, 2, 1)
    # Devices: pw's two and after's two back, both's laptop recounted.
    assert diff["user_devices"] == (4, 1, 0)
    assert {line["progress"]["phase"] for line in lines[:-1]} == {"keys", "fold"}

    def damaged(row: dict[str, Any]) -> dict[str, Any]:
        return row | {"login_count": 42} if row["user_id"] == before else row

    assert await rows(engine, "user_sessions", "user_id", "session_id") == sessions
    assert await rows(engine, "user_devices", "user_id", "device_id") == [
        damaged(row) for row in devices
    ]
    assert await shadow_tables(engine) == []

    # The user with nothing since the time is repaired by a full replay.
    code, _ = await run(worker_settings, "sessions")
    assert code == 0
    assert await rows(engine, "user_devices", "user_id", "device_id") == devices


async def ended(engine: AsyncEngine, user_id: str, session_id: str) -> bool | None:
    async with engine.connect() as conn:
        found = await conn.execute(
            sa.text(
                "SELECT ended_at IS NOT NULL FROM user_sessions"
                " WHERE user_id = :u AND session_id = :s"
            ),
            {"u": user_id, "s": session_id},
        )
        return True if found.scalar_one_or_none() else None


async def test_the_deliveries_view_is_restored_from_statuses_and_receipts(
    worker: WorkerProcess,
    producer: AIOKafkaProducer,
    worker_settings: Settings,
    engine: AsyncEngine,
) -> None:
    catalog = topic_catalog(worker_settings)
    status_topic = catalog.for_topic("notifications.status").name
    receipts_topic = catalog.for_topic("notifications.receipts").name
    ids = [f"n-{uuid.uuid4()}" for _ in range(6)]
    for n in ids:
        events: list[Any] = [
            receipt_event(n, "delivered", 5),  # before any status: held until the user is known
            status_event(n, "queued", 0),
            status_event(n, "sending", 1, attempt=1),
            status_event(
                n, "sent", 2, attempt=1, provider="sendgrid", provider_message_id=f"msg-{n}"
            ),
        ]
        for event in events:
            topic = (
                receipts_topic
                if event.event_type.startswith("notification.receipt")
                else status_topic
            )
            await producer.send_and_wait(topic, encode(event), key=n.encode())

    async def probe() -> bool | None:
        return True if await count(engine, "notification_transitions") == 4 * len(ids) else None

    await eventually(probe, what="the deliveries' timelines", worker=worker)
    deliveries = await rows(engine, "notification_deliveries", "notification_id")
    steps = await rows(
        engine, "notification_transitions", "notification_id", "state", "occurred_at"
    )
    assert {row["state"] for row in deliveries} == {"delivered"}
    statistics = {
        table: await rows(engine, table, "period", "channel", "category") for table in STATISTICS
    }
    assert sum(r["notifications"] for r in statistics["notification_stats_hours"]) == len(ids)
    await truncate(engine, "notification_deliveries", "notification_transitions", *STATISTICS)

    code, lines = await run(worker_settings, "deliveries")
    assert code == 0
    tables = {t["table"]: t for t in lines[-1]["report"]["tables"]}
    assert tables["notification_deliveries"]["added"] == len(ids)
    assert await rows(engine, "notification_deliveries", "notification_id") == deliveries
    assert (
        await rows(engine, "notification_transitions", "notification_id", "state", "occurred_at")
        == steps
    )
    for table, before in statistics.items():  # the statistics count what the rows hold again
        assert await rows(engine, table, "period", "channel", "category") == before


async def test_a_deliveries_replay_since_a_time_repairs_what_came_after_it(
    worker: WorkerProcess,
    producer: AIOKafkaProducer,
    worker_settings: Settings,
    engine: AsyncEngine,
) -> None:
    """A notification sent (at the second attempt) before the time and delivered after it: its
    row lost the delivery and its `delivered` step is gone. Replayed since the time, the receipt
    alone is read again, over the notification's entry folded from its stored timeline, and the
    row is whole again; a notification with nothing after the time is left as it was."""
    catalog = topic_catalog(worker_settings)
    status_topic = catalog.for_topic("notifications.status").name
    receipts_topic = catalog.for_topic("notifications.receipts").name
    before_only, delivered_after = f"n-{uuid.uuid4()}", f"n-{uuid.uuid4()}"

    async def statuses(n: str) -> int:
        """The broker's timestamp (ms) of the last one."""
        for event in (
            status_event(n, "queued", 0),
            status_event(n, "sending", 1, attempt=1),
            # A failed first attempt: its error stays the row's last error once delivered, which
            # only the entry folded from the stored timeline knows (the receipt says nothing).
            status_event(n, "retrying", 2, attempt=1, provider="sendgrid", reason="HTTP 503"),
            status_event(n, "sending", 3, attempt=2),
            status_event(
                n, "sent", 4, attempt=2, provider="sendgrid", provider_message_id=f"msg-{n}"
            ),
        ):
            sent = await producer.send_and_wait(status_topic, encode(event), key=n.encode())
        return int(sent.timestamp)

    async def delivered(n: str, timestamp_ms: int | None = None) -> None:
        event = receipt_event(n, "delivered", 5)
        await producer.send_and_wait(
            receipts_topic, encode(event), key=n.encode(), timestamp_ms=timestamp_ms
        )

    await statuses(before_only)
    await delivered(before_only)
    # The time: just after the last status, the receipt's own (records carry their create time).
    since_ms = await statuses(delivered_after) + 1
    since = datetime.fromtimestamp(since_ms / 1000, UTC)
    await delivered(delivered_after, timestamp_ms=since_ms)
    ids = {"a": before_only, "b": delivered_after}

    async def materialized() -> bool | None:
        async with engine.connect() as conn:
            found = await conn.execute(
                sa.text(
                    "SELECT count(*) FROM notification_deliveries"
                    " WHERE notification_id IN (:a, :b) AND state = 'delivered'"
                ),
                ids,
            )
            return True if found.scalar_one() == 2 else None

    await eventually(materialized, what="both notifications delivered", worker=worker)
    deliveries = await rows(engine, "notification_deliveries", "notification_id")
    steps = await rows(
        engine, "notification_transitions", "notification_id", "state", "occurred_at"
    )
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "UPDATE notification_deliveries SET state = 'sent', delivered_at = NULL"
                " WHERE notification_id = :b"
            ),
            {"b": delivered_after},
        )
        await conn.execute(
            sa.text(
                "DELETE FROM notification_transitions"
                " WHERE notification_id = :b AND state = 'delivered'"
            ),
            {"b": delivered_after},
        )

    code, lines = await run(worker_settings, "deliveries", "--since", since.isoformat())
    assert code == 0
    report = lines[-1]["report"]
    assert report["records"] == 1  # the receipt after the time, nothing before it
    tables = {t["table"]: t for t in report["tables"]}
    assert tables["notification_deliveries"]["changed"] == 1
    assert tables["notification_transitions"]["added"] == 1
    assert await rows(engine, "notification_deliveries", "notification_id") == deliveries
    assert (
        await rows(engine, "notification_transitions", "notification_id", "state", "occurred_at")
        == steps
    )
