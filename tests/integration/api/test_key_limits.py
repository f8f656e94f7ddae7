"""Per-key limits on the real Redis: a key's own GCRA rate, a default rate for every key, and a
daily quota; 429 with Retry-After and RateLimit-* over them, other keys unaffected."""

from __future__ import annotations

from typing import Any

from pytest_aiohttp import AiohttpClient

from api.app import create_app
from streams.settings import RateLimitSettings, Settings, SourceRateLimit
from tests.integration.api_keys import bearer, create_key

PATH = "/v1/rate-limits/check?user_id=u-1"


async def _reads(client: Any, key: str, count: int) -> list[Any]:
    return [await client.get(PATH, headers=bearer(key)) for _ in range(count)]


async def test_a_key_with_its_own_rate_is_held_to_it_and_others_are_not(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    client: Any = await aiohttp_client(create_app(settings))
    slow = await create_key(settings.database, ["ratelimits:check"], rate_per_s=1 / 60, burst=2)
    answers = await _reads(client, slow, 3)
    assert [r.status for r in answers] == [200, 200, 429]
    assert [r.headers["RateLimit-Remaining"] for r in answers] == ["1", "0", "0"]
    assert answers[0].headers["RateLimit-Limit"] == "2"
    refused = answers[2]
    assert refused.content_type == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert (await refused.json())["source"].startswith("key:")

    unlimited = await create_key(settings.database, ["ratelimits:check"])
    others = await _reads(client, unlimited, 3)
    assert [r.status for r in others] == [200, 200, 200]
    assert "RateLimit-Limit" not in others[0].headers


async def test_a_default_rate_applies_to_every_key_without_its_own(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    limits = RateLimitSettings(sources={"keys": SourceRateLimit(rate_per_s=1 / 60, burst=1)})
    app = create_app(settings.model_copy(update={"ratelimit": limits}))
    client: Any = await aiohttp_client(app)
    first = await create_key(settings.database, ["ratelimits:check"])
    second = await create_key(settings.database, ["ratelimits:check"])
    assert [r.status for r in await _reads(client, first, 2)] == [200, 429]
    assert [r.status for r in await _reads(client, second, 1)] == [200]


async def test_a_daily_quota_refuses_until_the_next_utc_day(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    client: Any = await aiohttp_client(create_app(settings))
    key = await create_key(settings.database, ["ratelimits:check"], daily_quota=2)
    answers = await _reads(client, key, 3)
    assert [r.status for r in answers] == [200, 200, 429]
    assert [r.headers["RateLimit-Limit"] for r in answers] == ["2", "2", "2"]
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 86400
    assert "per day" in (await answers[2].json())["detail"]
