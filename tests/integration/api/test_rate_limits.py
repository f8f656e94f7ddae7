"""Rate limits through the API on the real Redis and Kafka: the block check the upstream auth
service asks, operator lifts, and the ingest limiter (429 and nothing produced)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient

from api.app import create_app
from schemas import examples
from streams.settings import OperatorSettings, RateLimitSettings, Settings, SourceRateLimit
from streams.stores.block_store import Block, BlockStore
from tests.integration.api.support import post_webhook, redis_unreachable, topic_records
from tests.integration.api_keys import bearer, create_key

TOKEN = "operator-token-for-tests"
# The auth source gets two requests at once and then one a minute; others are not in the way.
AUTH_LIMIT = SourceRateLimit(rate_per_s=1 / 60, burst=2)


def limited(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "operator": OperatorSettings(token=SecretStr(TOKEN)),
            "ratelimit": RateLimitSettings(sources={"auth": AUTH_LIMIT}),
        }
    )


@pytest.fixture
async def api(aiohttp_client: AiohttpClient, settings: Settings) -> TestClient[Any, Any]:
    """The upstream auth service's client: a key that may check, not lift (`operator`)."""
    key = await create_key(settings.database, ["ratelimits:check"])
    return await aiohttp_client(create_app(limited(settings)), headers=bearer(key))


@pytest.fixture
async def blocks(settings: Settings) -> AsyncIterator[BlockStore]:
    store = BlockStore.from_settings(settings.redis, settings.topic_prefix)
    yield store
    await store.close()


async def block(blocks: BlockStore, kind: str, id_: str, seconds: float = 120) -> Block:
    until = datetime.now(UTC) + timedelta(seconds=seconds)
    written = Block(kind, id_, until, "brute-force-ip", uuid.uuid4())  # type: ignore[arg-type]
    await blocks.write([written])
    return written


async def test_check_answers_blocked_with_retry_after(
    api: TestClient[Any, Any], blocks: BlockStore
) -> None:
    user, ip = f"u-{uuid.uuid4().hex[:8]}", "198.51.100.23"
    written = await block(blocks, "ip", ip)
    response = await api.get("/v1/rate-limits/check", params={"user_id": user, "ip": ip})
    assert response.status == 200
    body = await response.json()
    assert body["allowed"] is False
    assert 100 < body["retry_after_s"] <= 120
    assert response.headers["Retry-After"] == str(body["retry_after_s"])
    assert body["blocks"] == [
        {
            "kind": "ip",
            "id": ip,
            "retry_after_s": body["retry_after_s"],
            "reason": "brute-force-ip",
            "event_id": str(written.event_id),
        }
    ]


async def test_check_answers_allowed_without_retry_after(api: TestClient[Any, Any]) -> None:
    response = await api.get("/v1/rate-limits/check", params={"user_id": "nobody-blocked"})
    assert response.status == 200
    assert await response.json() == {"allowed": True, "retry_after_s": None, "blocks": []}
    assert "Retry-After" not in response.headers


async def test_an_ip_is_checked_in_its_normal_spelling(
    api: TestClient[Any, Any], blocks: BlockStore
) -> None:
    await block(blocks, "ip", "192.0.2.77")
    response = await api.get("/v1/rate-limits/check", params={"ip": "::ffff:192.0.2.77"})
    assert (await response.json())["allowed"] is False


@pytest.mark.parametrize(
    ("params", "field"),
    [({}, "user_id"), ({"ip": "999.1.1.1"}, "ip"), ({"user_id": "", "ip": "192.0.2.1"}, "user_id")],
)
async def test_a_bad_check_is_400_naming_the_field(
    api: TestClient[Any, Any], params: dict[str, str], field: str
) -> None:
    response = await api.get("/v1/rate-limits/check", params=params)
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    assert (await response.json())["field"] == field


async def test_an_operator_lifts_a_block(api: TestClient[Any, Any], blocks: BlockStore) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    await block(blocks, "user", user)
    path = f"/v1/rate-limits/blocks/user/{user}"
    # The checking key lacks `operator`: 403; no valid credentials: 401 with a challenge.
    assert (await api.delete(path)).status == 403
    wrong = await api.delete(path, headers={"Authorization": "Bearer wrong"})
    assert wrong.status == 401
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    assert not (await blocks.check(user, None)).allowed

    operator = {"Authorization": f"Bearer {TOKEN}"}
    assert (await api.delete(path, headers=operator)).status == 204
    assert (await blocks.check(user, None)).allowed
    again = await api.delete(path, headers=operator)
    assert again.status == 404
    assert again.content_type == "application/problem+json"
    assert (await api.delete("/v1/rate-limits/blocks/device/x", headers=operator)).status == 400


async def test_without_an_operator_token_only_operator_keys_lift(
    aiohttp_client: AiohttpClient, settings: Settings, api_headers: dict[str, str]
) -> None:
    # Explicitly none: `make test` exports a development token for the whole suite.
    no_token = settings.model_copy(update={"operator": OperatorSettings(token=None)})
    client = await aiohttp_client(create_app(no_token))
    path = "/v1/rate-limits/blocks/ip/192.0.2.1"
    assert (await client.delete(path)).status == 401
    assert (await client.delete(path, headers={"Authorization": f"Bearer {TOKEN}"})).status == 401
    assert (await client.delete(path, headers=api_headers)).status == 404


async def test_over_its_limit_a_source_gets_429_and_nothing_is_produced(
    api: TestClient[Any, Any], settings: Settings
) -> None:
    body = examples.webhook_body("auth.login-failed")
    accepted = [await post_webhook(api, settings, "auth", body) for _ in range(2)]
    assert [r.status for r in accepted] == [202, 202]
    assert [r.headers["RateLimit-Remaining"] for r in accepted] == ["1", "0"]
    assert accepted[0].headers["RateLimit-Limit"] == "2"

    refused = await post_webhook(api, settings, "auth", body)
    assert refused.status == 429
    assert refused.content_type == "application/problem+json"
    problem = json.loads(await refused.text())
    assert (problem["status"], problem["source"]) == (429, "auth")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Limit"] == "2"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert int(refused.headers["RateLimit-Reset"]) > 60
    assert len(await topic_records(settings, "auth.events")) == 2

    # Other sources have their own budget.
    other = await post_webhook(api, settings, "users", examples.webhook_body("user.created"))
    assert other.status == 202


async def test_redis_away_is_503_naming_redis(
    aiohttp_client: AiohttpClient, settings: Settings, api_headers: dict[str, str]
) -> None:
    client = await aiohttp_client(create_app(redis_unreachable(settings)), headers=api_headers)
    check = await client.get("/v1/rate-limits/check", params={"user_id": "u1"})
    assert check.status == 503
    assert (await check.json())["service"] == "redis"
    ingest = await post_webhook(client, settings, "orders", examples.webhook_body("order.created"))
    assert ingest.status == 503
    assert (await ingest.json())["service"] == "redis"
    assert await topic_records(settings, "orders.events") == []


async def test_reads_are_limited_per_client_once_a_reads_limit_is_configured(
    aiohttp_client: AiohttpClient, settings: Settings, api_headers: dict[str, str]
) -> None:
    reads = RateLimitSettings(sources={"reads": SourceRateLimit(rate_per_s=1 / 60, burst=2)})
    app = create_app(settings.model_copy(update={"ratelimit": reads}))
    client = await aiohttp_client(app, headers=api_headers)
    answers = [
        await client.get("/v1/rate-limits/check", params={"user_id": "u1"}) for _ in range(3)
    ]
    assert [r.status for r in answers] == [200, 200, 429]
    assert [r.headers["RateLimit-Remaining"] for r in answers] == ["1", "0", "0"]
    assert "Retry-After" in answers[2].headers
    assert (await answers[2].json())["source"] == "reads:127.0.0.1"
    # Health and writes are not reads of the API's data.
    assert (await client.get("/health/live")).status != 429
    body = examples.webhook_body("user.created")
    assert (await post_webhook(client, settings, "users", body)).status == 202


async def test_reads_are_not_limited_by_default(api: TestClient[Any, Any]) -> None:
    for _ in range(5):
        response = await api.get("/v1/rate-limits/check", params={"user_id": "u1"})
        assert response.status == 200
        assert "RateLimit-Limit" not in response.headers
