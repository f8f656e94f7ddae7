"""The delivery store against the real PostgreSQL: guarded upserts, timeline, pages, statistics."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from scripts.own_database import own_database
from streams.settings import DatabaseSettings, Settings
from streams.stores.database import create_engine
from streams.stores.delivery_store import (
    DeliveryRow,
    DeliveryStore,
    DeliveryValues,
    TransitionValues,
    notification_deliveries,
    notification_transitions,
    one_snapshot,
)

ROW_COLUMNS = tuple(DeliveryRow.model_fields)
RANK = {"queued": 0, "sending": 2, "sent": 4, "delivered": 5, "failed": 5, "bounced": 5}


def unique_epoch() -> datetime:
    """A time window no other test run writes into (the database is shared)."""
    return datetime(1990, 1, 1, tzinfo=UTC) + timedelta(hours=random.randrange(10**7))


def row(notification_id: str, state: str, at: datetime, **changes: Any) -> DeliveryValues:
    data: dict[str, Any] = {
        "notification_id": notification_id,
        "user_id": "u",
        "channel": "email",
        "category": "account",
        "template": "welcome",
        "state": state,
        "state_rank": RANK[state],
        "state_at": at,
        "reason": None,
        "last_error": None,
        "attempts": 1,
        "provider": "sendgrid",
        "provider_message_id": None,
        "caused_at": at - timedelta(seconds=1),
        "queued_at": at,
        "delivered_at": at if state == "delivered" else None,
        "created_at": at,
        "updated_at": at,
    }
    return DeliveryValues(**(data | changes))


def read_back(written: DeliveryValues) -> DeliveryRow:
    """The row the store reads for what it wrote."""
    return DeliveryRow.model_validate(dict(zip(ROW_COLUMNS, written, strict=True)))


def step(notification_id: str, state: str, at: datetime) -> TransitionValues:
    return TransitionValues(
        notification_id=notification_id,
        state=state,
        occurred_at=at,
        reason=None,
        attempt=None,
        provider=None,
        provider_message_id=None,
        event_id=uuid.uuid4(),
    )


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[DeliveryStore]:
    store = DeliveryStore.from_settings(settings.database)
    yield store
    await store.close()


async def test_state_and_timeline_are_written_and_read_back(store: DeliveryStore) -> None:
    n, t0 = f"n-{uuid.uuid4()}", unique_epoch()
    steps = [step(n, "queued", t0), step(n, "delivered", t0 + timedelta(seconds=2))]
    current = row(n, "delivered", t0 + timedelta(seconds=2), queued_at=t0, created_at=t0)
    assert await store.write([current], steps + steps) == 3
    found = await store.get(n)
    assert found is not None
    assert found[0] == read_back(current)
    assert [s.state for s in found[1]] == ["queued", "delivered"]
    assert await store.get(f"n-{uuid.uuid4()}") is None


async def test_provider_texts_are_written_without_addresses_or_numbers(
    store: DeliveryStore, settings: Settings
) -> None:
    """What a provider said about a failed send may name the recipient: the columns the API
    serves (the state's reason and last error, the timeline's reason) never hold it, whoever
    wrote the row (read here without the read models, which redact too)."""
    n, t0 = f"n-{uuid.uuid4()}", unique_epoch()
    said = "550 mailbox jane.doe@example.com unknown, call +14155550123"
    current = row(n, "failed", t0, reason=said, last_error=said)
    await store.write([current], [step(n, "failed", t0)._replace(reason=said)])
    d, t = notification_deliveries, notification_transitions
    engine = create_engine(settings.database)
    try:
        async with engine.connect() as conn:
            query = sa.select(d.c.reason, d.c.last_error).where(d.c.notification_id == n)
            reason, last_error = (await conn.execute(query)).one()
            query = sa.select(t.c.reason).where(t.c.notification_id == n)
            step_reason = (await conn.execute(query)).scalar_one()
    finally:
        await engine.dispose()
    expected = "550 mailbox [email] unknown, call [phone]"
    assert (reason, last_error, step_reason) == (expected, expected, expected)


async def test_a_state_and_its_timeline_are_read_from_one_snapshot(
    store: DeliveryStore, settings: Settings
) -> None:
    """A batch committed between the two reads is in neither (under READ COMMITTED the second
    read saw it: a state paired with a newer timeline, in a CI run of the tracker's test)."""
    n, t0 = f"n-{uuid.uuid4()}", unique_epoch()
    later = t0 + timedelta(seconds=1)
    await store.write([row(n, "sent", t0)], [step(n, "sent", t0)])
    d, t = notification_deliveries, notification_transitions
    engine = create_engine(settings.database)
    try:
        async with engine.connect() as conn:
            conn = await one_snapshot(conn)
            query = sa.select(d.c.state).where(d.c.notification_id == n)
            state = (await conn.execute(query)).scalar_one()
            await store.write([row(n, "delivered", later)], [step(n, "delivered", later)])
            query = sa.select(sa.func.count()).where(t.c.notification_id == n)
            steps = (await conn.execute(query)).scalar_one()
    finally:
        await engine.dispose()
    assert (state, steps) == ("sent", 1)
    found = await store.get(n)
    assert found is not None
    assert (found[0].state, len(found[1])) == ("delivered", 2)


async def test_an_older_state_never_overwrites_a_newer_row_but_accumulates(
    store: DeliveryStore,
) -> None:
    n, t0 = f"n-{uuid.uuid4()}", unique_epoch()
    delivered = row(n, "delivered", t0 + timedelta(seconds=5), queued_at=None, attempts=2)
    await store.write([delivered], [])
    late = row(n, "sending", t0 + timedelta(seconds=9), queued_at=t0, attempts=1)
    await store.write([late], [step(n, "sending", t0 + timedelta(seconds=9))])
    found = await store.get(n)
    assert found is not None
    assert (found[0].state, found[0].attempts, found[0].queued_at) == ("delivered", 2, None)
    # The same precedence and time again (a replay with more knowledge) does update.
    await store.write([delivered._replace(queued_at=t0)], [])
    found = await store.get(n)
    assert found is not None
    assert found[0].queued_at == t0


async def test_a_users_list_pages_newest_first_with_filters(store: DeliveryStore) -> None:
    user, t0 = f"u-{uuid.uuid4()}", unique_epoch()
    rows = [
        row(
            f"n-{i:02d}-{uuid.uuid4()}",
            "delivered" if i % 2 else "failed",
            t0 + timedelta(minutes=i),
            user_id=user,
            channel="sms" if i % 3 == 0 else "email",
        )
        for i in range(12)
    ]
    await store.write(rows, [])
    expected = sorted(
        (r for r in rows if r.state == "delivered" and r.channel == "email"),
        key=lambda r: r.created_at,
        reverse=True,
    )
    seen: list[DeliveryRow] = []
    after = None
    while True:
        page = await store.list_for_user(
            user, limit=2, after=after, state="delivered", channel="email"
        )
        seen += page
        if len(page) < 2:
            break
        after = (page[-1].created_at, page[-1].notification_id)
    assert seen == [read_back(r) for r in expected]
    assert len(await store.list_for_user(user, limit=100)) == 12


async def test_statistics_over_a_known_data_set(store: DeliveryStore) -> None:
    t0 = unique_epoch()
    rows: list[DeliveryValues] = []
    # email/account: 4 delivered with latencies 1, 2, 3, 4 s, 1 bounced; sms/orders: 1 failed.
    for latency_s in (1, 2, 3, 4):
        at = t0 + timedelta(seconds=10)
        rows.append(
            row(
                f"n-{uuid.uuid4()}",
                "delivered",
                at,
                caused_at=at - timedelta(seconds=latency_s),
                delivered_at=at,
            )
        )
    rows.append(row(f"n-{uuid.uuid4()}", "bounced", t0 + timedelta(seconds=20)))
    rows.append(
        row(
            f"n-{uuid.uuid4()}",
            "failed",
            t0 + timedelta(seconds=30),
            channel="sms",
            category="orders",
        )
    )
    rows.append(row(f"n-{uuid.uuid4()}", "delivered", t0 + timedelta(hours=2)))  # out of range
    await store.write(rows, [])

    groups = await store.stats(t0, t0 + timedelta(hours=1))
    by_key = {(g.scope, g.channel, g.category): g for g in groups}
    overall = by_key[("all", None, None)]
    assert (overall.total, overall.delivered, overall.bounced, overall.failed) == (6, 4, 1, 1)
    email = by_key[("channel+category", "email", "account")]
    assert (email.total, email.delivered, email.bounced, email.spam) == (5, 4, 1, 0)
    # Nearest rank of 1, 2, 3, 4 s, within the histogram's 5 %.
    assert email.latency_p50_s == pytest.approx(2, rel=0.05)
    assert email.latency_p95_s == pytest.approx(4, rel=0.05)
    assert email.latency_p99_s == pytest.approx(4, rel=0.05)
    sms = by_key[("channel", "sms", None)]
    assert (sms.total, sms.failed, sms.latency_p50_s) == (1, 1, None)

    only_sms = await store.stats(t0, t0 + timedelta(hours=1), channel="sms")
    assert {(g.scope, g.channel) for g in only_sms} == {
        ("channel+category", "sms"),
        ("channel", "sms"),
        ("all", None),
    }


async def _blocks(database: DatabaseSettings, ids: list[str]) -> dict[str, int]:
    """The page (block number of `ctid`) each row's current version is on."""
    engine = create_engine(database)
    try:
        async with engine.connect() as conn:
            found = await conn.execute(
                sa.text(
                    "SELECT notification_id, (ctid::text::point)[0]::int AS block"
                    " FROM notification_deliveries WHERE notification_id = ANY(:ids)"
                ),
                {"ids": ids},
            )
            return {r.notification_id: r.block for r in found}
    finally:
        await engine.dispose()


async def test_a_delivery_updated_stays_on_its_page(settings: Settings) -> None:
    """Rows are written a few times within seconds: the table's pages keep room for their new
    versions (fillfactor, migration 0010), so an update is made in place (HOT: no index
    touched). On pages filled to the brim (the default) every update left its page."""
    async with own_database(settings.database, "tributary_hot") as database:
        store = DeliveryStore.from_settings(database)
        try:
            t0 = unique_epoch()
            ids = [f"n-{n:04d}-{uuid.uuid4()}" for n in range(200)]  # several pages
            await store.write([row(n, "queued", t0) for n in ids], [])
            before = await _blocks(database, ids)
            later = t0 + timedelta(seconds=3)
            # One row of each page, as the tracker updates them: a few at a time.
            first_of_page = {block: n for n, block in sorted(before.items(), reverse=True)}
            updated = sorted(first_of_page.values())
            await store.write([row(n, "sent", later, queued_at=t0) for n in updated], [])
            after = await _blocks(database, updated)
        finally:
            await store.close()
    assert len(updated) > 1
    assert {n: after[n] for n in updated} == {n: before[n] for n in updated}


def _scanned(plan: Any) -> set[str]:
    """The relations a JSON plan reads by a sequential scan."""
    found = set()
    if plan.get("Node Type") == "Seq Scan":
        found.add(plan["Relation Name"])
    for child in plan.get("Plans", []):
        found |= _scanned(child)
    return found


async def test_a_batch_reads_the_rows_it_replaces_by_key_not_by_scanning_the_table(
    settings: Settings,
) -> None:
    """The upsert's cost per batch must not grow with the table (millions of rows within the
    retention): it looks up the rows it replaces by key, whatever the planner thinks of a scan
    of a table of a few thousand."""
    async with own_database(settings.database, "tributary_plan") as database:
        store = DeliveryStore.from_settings(database)
        engine = create_engine(database)
        try:
            t0 = unique_epoch()
            for batch in range(20):
                ids = [f"n-{batch}-{n}-{uuid.uuid4()}" for n in range(350)]
                await store.write([row(n, "queued", t0) for n in ids], [])
            async with engine.begin() as conn:
                await conn.execute(sa.text("ANALYZE notification_deliveries"))
                later = [row(n, "sent", t0 + timedelta(seconds=2)) for n in ids]
                params = {name: [getattr(r, name) for r in later] for name in ROW_COLUMNS}
                explained = await conn.execute(
                    sa.text(f"EXPLAIN (FORMAT JSON) {store._upsert.text}"), params
                )
                [plan] = explained.scalar_one()
        finally:
            await store.close()
            await engine.dispose()
    assert "notification_deliveries" not in _scanned(plan["Plan"])
