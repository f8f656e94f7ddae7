"""The GCRA Lua script on the real Redis: the same decisions as the Python reference, atomic
under concurrency, on Redis's own clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from streams.errors import ServiceUnavailableError
from streams.settings import RateLimitSettings, Settings, SourceRateLimit
from streams.stores.rate_limiter import RateLimiter, gcra
from streams.stores.redis_client import redis_client
from tests.integration.api.support import redis_unreachable

LIMIT = SourceRateLimit(rate_per_s=4.0, burst=3)


def limiter_of(client: Redis, settings: Settings, limit: SourceRateLimit = LIMIT) -> RateLimiter:
    limits = RateLimitSettings(rate_per_s=limit.rate_per_s, burst=limit.burst)
    return RateLimiter(client, limits, settings.topic_prefix)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Redis]:
    redis = redis_client(settings.redis)
    yield redis
    await redis.aclose()


async def test_the_script_decides_like_the_reference(settings: Settings, client: Redis) -> None:
    limiter = limiter_of(client, settings)
    source = f"src-{uuid.uuid4()}"
    base_ms = 1_800_000_000_000.0
    offsets_ms = [0, 0, 0, 0, 100, 250, 250, 251, 1000, 5000, 5000, 5000, 5000]
    tat: float | None = None
    for offset in offsets_ms:
        now = base_ms + offset
        expected = gcra(tat, now, LIMIT)
        if expected.tat_ms is not None:
            tat = expected.tat_ms
        got = await limiter.acquire(source, now_ms=now)
        assert got is not None
        want = expected.decision
        assert (got.allowed, got.remaining) == (want.allowed, want.remaining)
        assert got.retry_after_ms == pytest.approx(want.retry_after_ms)
        assert got.reset_ms == pytest.approx(want.reset_ms)


async def test_concurrent_requests_never_exceed_the_burst(
    settings: Settings, client: Redis
) -> None:
    slow = SourceRateLimit(rate_per_s=0.01, burst=5)
    limiter = limiter_of(client, settings, slow)
    source = f"src-{uuid.uuid4()}"
    decisions = await asyncio.gather(*(limiter.acquire(source) for _ in range(20)))
    assert sum(1 for d in decisions if d is not None and d.allowed) == 5


async def test_the_key_expires_once_the_burst_is_whole_again(
    settings: Settings, client: Redis
) -> None:
    limiter = limiter_of(client, settings)
    source = f"src-{uuid.uuid4()}"
    await limiter.acquire(source)
    ttl_ms = await client.pttl(limiter.key(source))
    assert 0 < ttl_ms <= 250


async def test_disabled_limits_take_nothing(settings: Settings, client: Redis) -> None:
    limiter = RateLimiter(client, RateLimitSettings(enabled=False), settings.topic_prefix)
    assert await limiter.acquire("orders") is None
    assert await client.exists(limiter.key("orders")) == 0


async def test_redis_away_is_service_unavailable_naming_redis(settings: Settings) -> None:
    redis = redis_client(redis_unreachable(settings).redis)
    try:
        with pytest.raises(ServiceUnavailableError) as caught:
            await RateLimiter(redis, settings.ratelimit, settings.topic_prefix).acquire("orders")
        assert caught.value.service == "redis"
    finally:
        await redis.aclose()


async def test_a_daily_quota_counts_per_utc_day_atomically(
    settings: Settings, client: Redis
) -> None:
    limiter = limiter_of(client, settings)
    source = f"key:{uuid.uuid4().hex[:12]}"
    noon_s = 1_800_000_000.0 - 1_800_000_000.0 % 86400 + 43200
    decisions = await asyncio.gather(*(limiter.take_daily(source, 3, noon_s) for _ in range(5)))
    assert sorted(d.remaining for d in decisions) == [0, 0, 0, 1, 2]
    assert sum(d.allowed for d in decisions) == 3
    refused = next(d for d in decisions if not d.allowed)
    assert refused.headers()["Retry-After"] == str(12 * 3600)
    assert refused.headers()["RateLimit-Limit"] == "3"
    next_day = await limiter.take_daily(source, 3, noon_s + 86400)
    assert (next_day.allowed, next_day.remaining) == (True, 2)
    ttl_s = await client.ttl(limiter.key(f"{source}:day:{int(noon_s // 86400)}"))
    assert 86400 < ttl_s <= 86400 + 3600


async def test_calls_after_redis_forgot_its_scripts_load_them_again(
    settings: Settings, client: Redis
) -> None:
    """A Redis restart empties its script cache; batched calls answer NOSCRIPT, then load."""
    slow = SourceRateLimit(rate_per_s=0.01, burst=2)
    limiter = limiter_of(client, settings, slow)
    source = f"src-{uuid.uuid4()}"
    assert (await limiter.acquire(source)) is not None
    await client.script_flush()
    decisions = await asyncio.gather(*(limiter.acquire(source) for _ in range(3)))
    assert [d.allowed for d in decisions if d is not None] == [True, False, False]
