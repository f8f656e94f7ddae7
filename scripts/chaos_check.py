"""The chaos run's independent checker: the acknowledged inputs against what came out.

It reads only the inputs the API answered 2xx (the load's ledger) and the outputs: PostgreSQL's
views (`order_views`, `notification_deliveries`), the analytics topics and `auth.events` (decoded
with the contracts' codec), the Redis blocks and the provider sandbox's record of sends. What
each output should hold is worked out here, from the inputs, by rules written for this check
(window arithmetic, "paid beats created"); it imports none of the pipeline's folds, so a bug in
one is not repeated in its own check.

The figures (targets 0):
- lost: acknowledged orders not in their final state (paid when the payment was acknowledged,
  else pending) and acknowledged users without a welcome notification in a final state;
- duplicate sends per 10,000 notifications: sends the sandbox accepted for a notification it had
  already accepted (its `duplicates`: they reached a recipient twice); the repeats an
  idempotency key absorbed are shown beside them;
- windows whose counts differ from the acknowledged inputs in them (or that are missing, or
  were published twice with different counts);
- blocks missed: users given a burst of failed logins without their `brute-force-user` alert on
  `auth.events`, or, when the burst came after the last Redis restart (the development Redis
  keeps nothing across a restart), without the block in Redis;
- delivery statistics differing from the rows: per minute and per hour (from the run's first
  hour), channel and category, the rollups' counts (`notification_stats_minutes`, `_hours`)
  against the same counts taken from `notification_deliveries` by a GROUP BY written here.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import redis.asyncio as redis_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.analytics import AuthWindowRecord, EventsWindowRecord, OrdersWindowRecord
from schemas.auth import AuthEvent
from scripts.chaos_load import Acknowledged
from streams.kafka.wire import decode

FINAL_STATES = frozenset(
    {"delivered", "failed", "bounced", "spam", "suppressed", "cancelled", "expired"}
)


@dataclass(frozen=True, slots=True)
class Outputs:
    """Where the outputs of one run are."""

    bootstrap: str
    # Topic (base name) -> its partitions, for the topics read here.
    partitions: dict[str, int]
    topic_prefix: str
    database_dsn: str
    redis_url: str
    sandbox_url: str
    tumbling_s: int
    hopping_s: int
    hopping_step_s: int
    grace_s: int
    burst_failures: int
    burst_window_s: int


@dataclass
class Figures:
    acknowledged: int = 0
    orders: int = 0
    orders_lost: list[str] = field(default_factory=list)
    users: int = 0
    users_lost: list[str] = field(default_factory=list)
    notifications: int = 0
    sends: int = 0
    duplicate_sends: int = 0
    idempotent_replays: int = 0
    windows_checked: int = 0
    windows_differing: list[str] = field(default_factory=list)
    bursts: int = 0
    blocks_missed: list[str] = field(default_factory=list)
    blocks_lost_with_redis: int = 0
    statistics_checked: int = 0
    statistics_differing: list[str] = field(default_factory=list)
    # (acknowledged at, seconds from the acknowledgement to the paid view), per payment
    paid_latency: list[tuple[float, float]] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return len(self.orders_lost) + len(self.users_lost)

    @property
    def duplicates_per_10k(self) -> float:
        return 10_000 * self.duplicate_sends / self.notifications if self.notifications else 0.0

    @property
    def all_zero(self) -> bool:
        return (
            self.lost == 0
            and self.duplicate_sends == 0
            and not self.windows_differing
            and not self.blocks_missed
            and not self.statistics_differing
        )

    def lines(self) -> list[str]:
        latency = sorted(seconds for _at, seconds in self.paid_latency)

        def pct(q: float) -> str:
            return (
                f"{latency[min(len(latency) - 1, int(q * len(latency)))]:.1f} s" if latency else "-"
            )

        return [
            f"acknowledged inputs            {self.acknowledged}",
            f"acknowledged inputs lost       {self.lost}  (orders {len(self.orders_lost)} of "
            f"{self.orders}, welcome notifications {len(self.users_lost)} of {self.users})",
            f"duplicate provider sends       {self.duplicates_per_10k:.1f} per 10,000 "
            "notifications "
            f"({self.duplicate_sends} in {self.notifications} notifications, {self.sends} sends; "
            f"{self.idempotent_replays} repeats absorbed by idempotency keys)",
            f"windows differing from inputs  {len(self.windows_differing)} of "
            f"{self.windows_checked}",
            f"blocks missed                  {len(self.blocks_missed)} of {self.bursts} bursts "
            f"({self.blocks_lost_with_redis} blocks gone with the Redis restart, not counted)",
            f"statistics differing from rows {len(self.statistics_differing)} of "
            f"{self.statistics_checked} (minute and hour rollups)",
            f"order.paid ack -> view         p50 {pct(0.5)}  p95 {pct(0.95)}  max {pct(1.0)}",
        ]


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


Records = list[tuple[bytes | None, bytes | None]]


async def read_topic(outputs: Outputs, base: str) -> Records:
    """(key, value) of every record of the run's `base` topic, from its beginning to its end."""
    topic = f"{outputs.topic_prefix}{base}"
    tps = [TopicPartition(topic, p) for p in range(outputs.partitions[base])]
    consumer = AIOKafkaConsumer(bootstrap_servers=outputs.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: Records = []
        async with asyncio.timeout(60):
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                for batch in (await consumer.getmany(*tps, timeout_ms=500)).values():
                    found.extend((r.key, r.value) for r in batch)
        return found
    finally:
        await consumer.stop()


# --------------------------------------------------------------------- orders and welcome mails


def expected_orders(inputs: Iterable[Acknowledged]) -> dict[str, str]:
    """Order id -> the status it must end in: paid once a payment was acknowledged."""
    expected: dict[str, str] = {}
    for ack in inputs:
        if ack.family != "orders":
            continue
        status = "paid" if ack.event_type == "order.paid" else "pending"
        if expected.get(ack.key) != "paid":
            expected[ack.key] = status
    return expected


async def check_views(outputs: Outputs, inputs: Sequence[Acknowledged], figures: Figures) -> None:
    orders = expected_orders(inputs)
    users = [a.key for a in inputs if a.event_type == "user.created"]
    paid_acked = {a.key: a.acked_at_s for a in inputs if a.event_type == "order.paid"}
    figures.orders, figures.users = len(orders), len(users)
    conn = await asyncpg.connect(_pg_dsn(outputs.database_dsn))
    try:
        rows = await conn.fetch(
            "SELECT order_id, status, materialized_at FROM order_views WHERE order_id = ANY($1)",
            list(orders),
        )
        seen = {r["order_id"]: r for r in rows}
        figures.orders_lost = [
            f"{order_id}: {seen[order_id]['status'] if order_id in seen else 'no view'}, "
            f"expected {status}"
            for order_id, status in orders.items()
            if order_id not in seen or seen[order_id]["status"] != status
        ]
        figures.paid_latency = [
            (at, max(0.0, seen[o]["materialized_at"].timestamp() - at))
            for o, at in paid_acked.items()
            if o in seen and seen[o]["status"] == "paid"
        ]
        welcome = await conn.fetch(
            "SELECT user_id, state FROM notification_deliveries "
            "WHERE user_id = ANY($1) AND template = 'welcome'",
            users,
        )
        final = {r["user_id"] for r in welcome if r["state"] in FINAL_STATES}
        states = {r["user_id"]: r["state"] for r in welcome}
        figures.users_lost = [
            f"{user}: welcome {states.get(user, 'never tracked')}"
            for user in users
            if user not in final
        ]
        run_users = sorted({a.key for a in inputs if a.family == "users"})
        notification_ids = await conn.fetch(
            "SELECT notification_id FROM notification_deliveries WHERE user_id = ANY($1)",
            run_users,
        )
        figures.notifications = len(notification_ids)
    finally:
        await conn.close()


# --------------------------------------------------------------------- provider sends


async def check_sends(outputs: Outputs, figures: Figures) -> None:
    """The sandbox is this run's own: its counts are the run's sends."""
    url = f"{outputs.sandbox_url}/_sandbox/health"
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        health: dict[str, Any] = await answer.json()
    figures.sends = int(health["received"])
    figures.duplicate_sends = int(health["duplicates"])
    figures.idempotent_replays = int(health["idempotent_replays"])


# --------------------------------------------------------------------- windows


def _key_start(moment_ms: int) -> str:
    return datetime.fromtimestamp(moment_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_keys(outputs: Outputs, occurred_at: datetime, dimension: str) -> list[str]:
    """The keys of every window (tumbling, then each hopping one) an event time falls in."""
    t_ms = int(occurred_at.timestamp() * 1000)
    size_ms = outputs.tumbling_s * 1000
    keys = [f"tumbling:{outputs.tumbling_s}:{_key_start(t_ms - t_ms % size_ms)}:{dimension}"]
    hop_ms, step_ms = outputs.hopping_s * 1000, outputs.hopping_step_s * 1000
    start = t_ms - t_ms % step_ms
    while start > t_ms - hop_ms:
        keys.append(f"hopping:{outputs.hopping_s}:{_key_start(start)}:{dimension}")
        start -= step_ms
    return keys


def expected_windows(
    outputs: Outputs, inputs: Iterable[Acknowledged]
) -> dict[str, dict[str, Counter[str]]]:
    """Topic -> window key -> the counts the acknowledged inputs put in it."""
    counts: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for ack in inputs:
        if ack.family == "orders":
            field_name = "orders_created" if ack.event_type == "order.created" else "orders_paid"
            for key in window_keys(outputs, ack.occurred_at, "EUR"):
                counts["analytics.orders"][key][field_name] += 1
        elif ack.family == "auth":
            for key in window_keys(outputs, ack.occurred_at, "all"):
                counts["analytics.auth"][key]["login_failures"] += 1
        elif ack.family == "users":
            for key in window_keys(outputs, ack.occurred_at, "users"):
                counts["analytics.events"][key]["user.created"] += 1
    return counts


def published_counts(topic: str, value: bytes | None) -> tuple[str, Counter[str]]:
    if topic == "analytics.orders":
        orders = decode(value, OrdersWindowRecord).payload
        return orders.key, Counter(
            {"orders_created": orders.orders_created, "orders_paid": orders.orders_paid}
        )
    if topic == "analytics.auth":
        auth = decode(value, AuthWindowRecord).payload
        return auth.key, Counter({"login_failures": auth.login_failures})
    events = decode(value, EventsWindowRecord).payload
    return events.key, Counter({"user.created": events.by_type.get("user.created", 0)})


def window_end(key: str) -> datetime:
    """The end of the window a record key names (`kind:size:start:dimension`)."""
    _kind, size, rest = key.split(":", 2)
    start = datetime.strptime(rest.rsplit(":", 1)[0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return start + timedelta(seconds=int(size))


async def check_windows(
    outputs: Outputs, inputs: Sequence[Acknowledged], figures: Figures, closed_by: datetime
) -> set[str]:
    """Every window that ended by `closed_by` (the watermark the inputs themselves set), from
    the acknowledged inputs, against its published record(s). Returns the keys expected but not
    published yet (the caller may wait for them)."""
    expected = expected_windows(outputs, inputs)
    differing: list[str] = []
    unpublished: set[str] = set()
    checked = 0
    for topic, all_windows in expected.items():
        windows = {k: v for k, v in all_windows.items() if window_end(k) <= closed_by}
        published: dict[str, list[Counter[str]]] = defaultdict(list)
        for _key, value in await read_topic(outputs, topic):
            key, counts = published_counts(topic, value)
            if topic == "analytics.events" and not key.endswith(":users"):
                continue
            if window_end(key) <= closed_by:
                published[key].append(counts)
        for key, counts in windows.items():
            checked += 1
            versions = published.get(key)
            if not versions:
                unpublished.add(f"{topic} {key}")
                differing.append(f"{topic} {key}: not published, expected {dict(counts)}")
                continue
            wrong = [dict(v) for v in versions if +v != +counts]
            if wrong:
                differing.append(f"{topic} {key}: published {wrong}, expected {dict(counts)}")
        for key, versions in published.items():
            if key not in windows and any(+v for v in versions):
                checked += 1
                differing.append(f"{topic} {key}: published {dict(versions[0])}, no input in it")
    figures.windows_checked = checked
    figures.windows_differing = differing
    return unpublished


# --------------------------------------------------------------------- blocks


def burst_users(outputs: Outputs, inputs: Iterable[Acknowledged]) -> dict[str, datetime]:
    """User -> the event time at which their acknowledged failures made a burst."""
    failures: dict[str, list[datetime]] = defaultdict(list)
    for ack in inputs:
        if ack.event_type == "auth.login-failed":
            failures[ack.key].append(ack.occurred_at)
    bursts: dict[str, datetime] = {}
    span = timedelta(seconds=outputs.burst_window_s)
    n = outputs.burst_failures
    for user, times in failures.items():
        times.sort()
        for i in range(len(times) - n + 1):
            if times[i + n - 1] - times[i] < span:
                bursts[user] = times[i + n - 1]
                break
    return bursts


async def check_blocks(
    outputs: Outputs,
    inputs: Sequence[Acknowledged],
    figures: Figures,
    redis_back_at: datetime | None,
) -> None:
    bursts = burst_users(outputs, inputs)
    figures.bursts = len(bursts)
    alerted: set[str] = set()
    for _key, value in await read_topic(outputs, "auth.events"):
        event = decode(value, AuthEvent)
        if event.event_type == "auth.suspicious-login":
            payload: Any = event.payload
            if payload.reason == "brute-force-user":
                alerted.add(payload.user_id)
    client = redis_asyncio.from_url(outputs.redis_url)
    try:
        keys = [f"{outputs.topic_prefix}tributary:block:user:{user}" for user in bursts]
        present = [bool(n) for n in await client.mget(keys)] if keys else []
    finally:
        await client.aclose()
    missed: list[str] = []
    for (user, burst_at), blocked in zip(bursts.items(), present, strict=True):
        if user not in alerted:
            missed.append(f"{user}: no brute-force-user alert on auth.events")
        elif not blocked:
            if redis_back_at is not None and burst_at < redis_back_at:
                figures.blocks_lost_with_redis += 1
            else:
                missed.append(f"{user}: alerted, but no block in Redis")
    figures.blocks_missed = missed


def closed_by(outputs: Outputs, inputs: Sequence[Acknowledged]) -> datetime:
    """The windows that end by this time are closed by the inputs' own event times (the latest
    one minus the grace, less a margin): those the check holds to the inputs; later ones may
    rightly still be open."""
    latest = max(a.occurred_at for a in inputs)
    return latest - timedelta(seconds=outputs.grace_s + 2)


# Per period, channel and category: the counts the statistics' rollups must hold, from the rows.
_ROW_COUNTS = """
    SELECT date_trunc($2, created_at, 'UTC') AS period,
           coalesce(channel, '') AS channel, coalesce(category, '') AS category,
           count(*) AS notifications,
           count(*) FILTER (WHERE state = 'delivered') AS delivered,
           count(*) FILTER (WHERE state = 'failed') AS failed,
           count(*) FILTER (WHERE state = 'bounced') AS bounced,
           count(*) FILTER (WHERE state = 'spam') AS spam,
           count(delivered_at - caused_at) AS with_latency
      FROM notification_deliveries WHERE created_at >= $1 GROUP BY 1, 2, 3
"""
_ROLLUP_COUNTS = """
    SELECT period, channel, category, notifications, delivered, failed, bounced, spam,
           (SELECT coalesce(sum(b), 0) FROM unnest(latency_buckets) AS b) AS with_latency
      FROM {table} WHERE period >= $1
"""


async def check_statistics(outputs: Outputs, since: datetime, figures: Figures) -> None:
    """Every rollup row from the hour of `since` on against the rows' own counts (a rollup row
    every notification moved out of holds zeros, as a missing row of the rows' counts does)."""
    start = since.replace(minute=0, second=0, microsecond=0)
    conn = await asyncpg.connect(_pg_dsn(outputs.database_dsn))
    try:
        for unit, table in (
            ("minute", "notification_stats_minutes"),
            ("hour", "notification_stats_hours"),
        ):
            rows = await conn.fetch(_ROW_COUNTS, start, unit)
            rollups = await conn.fetch(_ROLLUP_COUNTS.format(table=table), start)
            expected = {tuple(r.values())[:3]: tuple(r.values())[3:] for r in rows}
            kept = {tuple(r.values())[:3]: tuple(r.values())[3:] for r in rollups}
            zeros = (0,) * 6
            for key in sorted(expected.keys() | kept.keys()):
                figures.statistics_checked += 1
                want, got = expected.get(key, zeros), kept.get(key, zeros)
                if want != got:
                    figures.statistics_differing.append(f"{table} {key}: {got}, rows say {want}")
    finally:
        await conn.close()


async def check(
    outputs: Outputs, inputs: Sequence[Acknowledged], redis_back_at: datetime | None = None
) -> Figures:
    figures = Figures(acknowledged=len(inputs))
    await check_views(outputs, inputs, figures)
    if inputs:
        since = datetime.fromtimestamp(min(a.acked_at_s for a in inputs), UTC)
        await check_statistics(outputs, since - timedelta(minutes=5), figures)
    await check_sends(outputs, figures)
    await check_windows(outputs, inputs, figures, closed_by(outputs, inputs))
    await check_blocks(outputs, inputs, figures, redis_back_at)
    return figures
