"""Figures for the security slice: rule throughput on one core, and the latency of the block
check (Redis, and through the API) and of the ingest limiter, against the configured Redis.

Usage: python scripts/bench_security.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from agents.security.signals import on_user_event
from api.app import create_app
from schemas.auth import AuthEvent
from streams.settings import Settings
from streams.stores.api_key_store import ApiKeyStore
from streams.stores.block_store import Block, BlockStore
from streams.stores.rate_limiter import RateLimiter
from streams.stores.redis_client import redis_client

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def failure(user_id: str, at_s: float) -> AuthEvent:
    return AuthEvent.model_validate(
        {
            "event_id": uuid.uuid4(),
            "event_type": "auth.login-failed",
            "occurred_at": NOW + timedelta(seconds=at_s),
            "ingested_at": NOW + timedelta(seconds=at_s),
            "source": "bench",
            "correlation_id": "bench",
            "payload": {"user_id": user_id, "ip": "203.0.113.7"},
        }
    )


def rule_rate(settings: Settings, events: int) -> float:
    """Failed logins per second through the per-user rule, over 1000 users."""
    batch = [failure(f"u{n % 1000}", n * 7.0) for n in range(events)]
    table: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    for event in batch:
        key = event.payload.user_id
        decisions = on_user_event(event, table.get(key), settings.security)
        if decisions.entry is not None:
            table[key] = decisions.entry
    return events / (time.perf_counter() - started)


async def latencies_ms(call: Callable[[], Awaitable[Any]], requests: int) -> list[float]:
    for _ in range(50):
        await call()  # warm up connections
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def summary(name: str, samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100)
    return f"{name:<32} p50 {cuts[49]:6.3f} ms  p99 {cuts[98]:6.3f} ms  (n={len(samples)})"


async def main(requests: int) -> None:
    base = Settings()
    settings = base.model_copy(update={"topic_prefix": f"bench-{uuid.uuid4().hex[:8]}-"})
    print(f"{'per-user rule (pure)':<32} {rule_rate(settings, 50_000):,.0f} failed logins/s")
    blocks = BlockStore.from_settings(settings.redis, settings.topic_prefix)
    limiter_client = redis_client(settings.redis)
    limiter = RateLimiter(limiter_client, settings.ratelimit, settings.topic_prefix)
    until = datetime.now(UTC) + timedelta(minutes=5)
    await blocks.write([Block("ip", "203.0.113.7", until, "bench", uuid.uuid4())])
    keys = ApiKeyStore.from_settings(settings.database)
    # The check needs a key (ratelimits:check); verified once, then from the API's cache.
    key, text = await keys.create("bench-security", ["ratelimits:check"])
    try:
        check = await latencies_ms(lambda: blocks.check("u1", "203.0.113.7"), requests)
        print(summary("BlockStore.check (user + ip)", check))
        acquire = await latencies_ms(lambda: limiter.acquire(f"bench-{uuid.uuid4()}"), requests)
        print(summary("RateLimiter.acquire (GCRA)", acquire))
        authorization = {"Authorization": f"Bearer {text}"}
        async with TestClient(TestServer(create_app(settings)), headers=authorization) as client:

            async def get() -> None:
                params = {"user_id": "u1", "ip": "203.0.113.7"}
                async with client.get("/v1/rate-limits/check", params=params) as response:
                    await response.read()

            print(summary("GET /v1/rate-limits/check", await latencies_ms(get, requests)))
    finally:
        await keys.revoke(key.id)
        await keys.close()
        await blocks.lift("ip", "203.0.113.7")
        await blocks.close()
        await limiter_client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    asyncio.run(main(parser.parse_args().requests))
